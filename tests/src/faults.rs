//! A fault-injecting HTTP proxy between the functions and the emulator: on a set fraction of
//! requests it answers with throttling, a 500 or a 503 in the service's own error shape, answers
//! slowly, or drops the connection (before the request reaches the emulator, or after, so that
//! the call happened but its answer is lost). One request per connection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy did to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Throttle,
    Status500,
    Status503,
    /// Forwarded after a pause.
    Slow,
    /// Closed before forwarding: the call never happened.
    DropBefore,
    /// Forwarded, then closed without the answer: the call happened.
    DropAfter,
}

const FAULTS: [Fault; 6] = [
    Fault::Throttle,
    Fault::Status500,
    Fault::Status503,
    Fault::Slow,
    Fault::DropBefore,
    Fault::DropAfter,
];

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: usize,
    pub faults: BTreeMap<String, usize>,
}

struct State {
    /// xorshift64 state: the same seed makes the same faults.
    rng: u64,
    tally: Tally,
    /// Requests naming this action are never answered nor forwarded.
    hold: Option<String>,
    held: usize,
}

/// A running proxy; dropping it stops accepting connections.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`) faulting `rate` of the requests.
    pub async fn start(upstream: &str, rate: f64, seed: u64) -> FaultProxy {
        Self::spawn(upstream, rate, seed, None).await
    }

    /// A proxy that forwards everything except requests for `action`, which it holds without
    /// answer: the caller waits there, to be killed mid-event.
    pub async fn holding(upstream: &str, action: &str) -> FaultProxy {
        Self::spawn(upstream, 0.0, 1, Some(action.to_string())).await
    }

    /// How many requests are being held.
    pub fn held(&self) -> usize {
        self.state.lock().map(|s| s.held).unwrap_or(0)
    }

    async fn spawn(upstream: &str, rate: f64, seed: u64, hold: Option<String>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State {
            rng: seed.max(1),
            tally: Tally::default(),
            hold,
            held: 0,
        }));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = shared.lock().map(|mut s| s.decide(rate)).unwrap_or(None);
                let (upstream, shared) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, fault, &shared).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
            accept,
        }
    }

    /// What the proxy has done so far.
    pub fn tally(&self) -> Tally {
        self.state
            .lock()
            .map(|s| Tally {
                requests: s.tally.requests,
                faults: s.tally.faults.clone(),
            })
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl State {
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn decide(&mut self, rate: f64) -> Option<Fault> {
        self.tally.requests += 1;
        let roll = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        if roll >= rate {
            return None;
        }
        let fault = FAULTS[(self.next() % FAULTS.len() as u64) as usize];
        *self.tally.faults.entry(format!("{fault:?}")).or_default() += 1;
        Some(fault)
    }
}

/// Reads one HTTP request (head and `Content-Length` body).
async fn read_request(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Ok(buf);
            }
        }
    }
}

/// Where `needle` first occurs in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The request with `Connection: close`, so the upstream answer ends at end of file.
fn closing(request: &[u8]) -> Vec<u8> {
    let Some(end) = find(request, b"\r\n\r\n") else {
        return request.to_vec();
    };
    let head = String::from_utf8_lossy(&request[..end]);
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&request[end + 4..]);
    out
}

async fn forward(request: &[u8], upstream: &str) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&closing(request)).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    Ok(answer)
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    fault: Option<Fault>,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let request = read_request(&mut client).await?;
    let text = String::from_utf8_lossy(&request);
    let held = state
        .lock()
        .map(|mut s| {
            let hit = s
                .hold
                .as_ref()
                .is_some_and(|a| text.contains(&format!("Action={a}&")) || text.contains(&format!(".{a}\r\n")));
            if hit {
                s.held += 1;
            }
            hit
        })
        .unwrap_or(false);
    if held {
        // Never answered: the connection stays open until the caller gives up or dies.
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        return Ok(());
    }
    let answer = match fault {
        None => forward(&request, upstream).await?,
        Some(Fault::Slow) => {
            tokio::time::sleep(Duration::from_millis(800)).await;
            forward(&request, upstream).await?
        }
        Some(Fault::DropBefore) => return Ok(()),
        Some(Fault::DropAfter) => {
            forward(&request, upstream).await?;
            return Ok(());
        }
        Some(f) => error_answer(&request, f),
    };
    client.write_all(&answer).await?;
    client.shutdown().await
}

/// An error in the shape the request's protocol expects: JSON (`x-amz-json`, REST-JSON), EC2's
/// XML, or the query protocol's XML.
fn error_answer(request: &[u8], fault: Fault) -> Vec<u8> {
    let head =
        String::from_utf8_lossy(&request[..find(request, b"\r\n\r\n").unwrap_or(request.len())]).to_ascii_lowercase();
    let service = head
        .split("credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_string();
    let (status, reason, code) = match fault {
        Fault::Throttle if service == "ec2" => (503, "Service Unavailable", "RequestLimitExceeded"),
        Fault::Throttle if service == "dynamodb" => (400, "Bad Request", "ThrottlingException"),
        Fault::Throttle => (400, "Bad Request", "Throttling"),
        Fault::Status503 => (503, "Service Unavailable", "ServiceUnavailable"),
        _ => (500, "Internal Server Error", "InternalFailure"),
    };
    let json = head.contains("content-type: application/x-amz-json") || head.contains("content-type: application/json");
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            format!(r#"{{"__type":"{code}","message":"injected by the fault proxy"}}"#),
        )
    } else if service == "ec2" {
        (
            "text/xml",
            format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error></Errors><RequestID>fault</RequestID></Response>"
            ),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the fault proxy</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        )
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
