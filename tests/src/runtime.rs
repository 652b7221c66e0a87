//! A local Lambda Runtime API for the benchmark: hands a function process one event at a time,
//! and notes when the process first asks for work and when each answer arrives.
//!
//! It speaks just enough HTTP/1.1 for `lambda_runtime`'s client (keep-alive, `Content-Length` or
//! chunked bodies): `GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response`,
//! `POST .../{id}/error` and `POST /2018-06-01/runtime/init/error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::faults::find;

/// What the function answered to one invocation.
#[derive(Debug)]
pub struct Answer {
    /// When the event was written to the function.
    pub delivered: Instant,
    /// When its answer arrived.
    pub answered: Instant,
    /// The response, or the error the function reported.
    pub result: Result<Value, Value>,
}

/// One event waiting for the function's next `GET /next`.
struct Pending {
    id: String,
    body: String,
    delivered: oneshot::Sender<Instant>,
}

/// When an answer arrived, and what it was.
type Answered = (Instant, Result<Value, Value>);

#[derive(Default)]
struct Shared {
    /// When the process first asked for work.
    first_next: Mutex<Option<Instant>>,
    /// What the process reported as an init error.
    init_error: Mutex<Option<Value>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Answered>>>,
    changed: Notify,
}

/// The runtime API on a free loopback port. Dropping it stops the server.
pub struct RuntimeApi {
    pub port: u16,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Pending>,
    server: tokio::task::JoinHandle<()>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared::default());
        let (queue, events) = mpsc::channel::<Pending>(16);
        let events = Arc::new(tokio::sync::Mutex::new(events));
        let server = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (shared, events) = (shared.clone(), events.clone());
                    tokio::spawn(async move {
                        let _ = serve(stream, &shared, &events).await;
                    });
                }
            })
        };
        RuntimeApi {
            port,
            shared,
            queue,
            server,
            next_id: Default::default(),
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until the process asks for its first event, and says when it did; an init error
    /// or `limit` passing is an error.
    pub async fn ready(&self, limit: Duration) -> Result<Instant, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(at) = *self.shared.first_next.lock().expect("lock") {
                return Ok(at);
            }
            if let Some(e) = self.shared.init_error.lock().expect("lock").clone() {
                return Err(format!("init error: {e}"));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!("no GET /next within {limit:?}"));
            }
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: &Value, limit: Duration) -> Result<Answer, String> {
        let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("bench-{}-{n}", self.port);
        let (answer_tx, answer_rx) = oneshot::channel();
        self.shared.answers.lock().expect("lock").insert(id.clone(), answer_tx);
        let (delivered_tx, delivered_rx) = oneshot::channel();
        self.queue
            .send(Pending {
                id,
                body: event.to_string(),
                delivered: delivered_tx,
            })
            .await
            .map_err(|_| "the runtime API stopped".to_string())?;
        let wait = async {
            let delivered = delivered_rx
                .await
                .map_err(|_| "the event was never delivered".to_string())?;
            let (answered, result) = answer_rx.await.map_err(|_| "no answer".to_string())?;
            Ok(Answer {
                delivered,
                answered,
                result,
            })
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| format!("no answer within {limit:?}"))?
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One request: method, path and body.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Serves the requests of one keep-alive connection.
async fn serve(
    mut stream: TcpStream,
    shared: &Shared,
    events: &tokio::sync::Mutex<mpsc::Receiver<Pending>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffer).await? {
        let arrived = Instant::now();
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                shared.first_next.lock().expect("lock").get_or_insert(arrived);
                shared.changed.notify_waiters();
                let Some(pending) = events.lock().await.recv().await else {
                    return Ok(());
                };
                let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                    pending.body.len(),
                    pending.id
                );
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(pending.body.as_bytes()).await?;
                stream.flush().await?;
                let _ = pending.delivered.send(Instant::now());
            }
            ("POST", "/2018-06-01/runtime/init/error") => {
                *shared.init_error.lock().expect("lock") = Some(json_or_text(&request.body));
                shared.changed.notify_waiters();
                accepted(&mut stream).await?;
            }
            ("POST", path) if path.starts_with("/2018-06-01/runtime/invocation/") => {
                let rest = &path["/2018-06-01/runtime/invocation/".len()..];
                let (id, verb) = rest.split_once('/').unwrap_or((rest, ""));
                let body = json_or_text(&request.body);
                let result = if verb == "response" { Ok(body) } else { Err(body) };
                if let Some(tx) = shared.answers.lock().expect("lock").remove(id) {
                    let _ = tx.send((arrived, result));
                }
                accepted(&mut stream).await?;
            }
            _ => {
                stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await?;
            }
        }
    }
    Ok(())
}

async fn accepted(stream: &mut TcpStream) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n")
        .await
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Reads the next request of the connection (`None` at its end); bytes of a following request
/// stay in `buffer`.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<Option<Request>> {
    let Some(head_end) = until(stream, buffer, b"\r\n\r\n").await? else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (
        first.next().unwrap_or_default().to_string(),
        first.next().unwrap_or_default().to_string(),
    );
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream, buffer).await?
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buffer.len() < length {
            if !fill(stream, buffer).await? {
                return Ok(None);
            }
        }
        buffer.drain(..length).collect()
    };
    Ok(Some(Request { method, path, body }))
}

async fn read_chunked(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = until(stream, buffer, b"\r\n").await? else {
            return Ok(body);
        };
        let size_text = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        buffer.drain(..line_end + 2);
        while buffer.len() < size + 2 {
            if !fill(stream, buffer).await? {
                return Ok(body);
            }
        }
        body.extend(buffer.drain(..size));
        buffer.drain(..2);
        if size == 0 {
            return Ok(body);
        }
    }
}

/// Reads until `buffer` holds `delimiter`, and gives its offset; `None` at the connection's end.
async fn until(stream: &mut TcpStream, buffer: &mut Vec<u8>, delimiter: &[u8]) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(end) = find(buffer, delimiter) {
            return Ok(Some(end));
        }
        if !fill(stream, buffer).await? {
            return Ok(None);
        }
    }
}

/// Reads more of the connection into `buffer`; false at its end.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}
