//! A private moto server per test: started on a free loopback port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use guardrail::aws::{Tuning, tuned};

/// The account moto gives the default test credentials: the organization's management account,
/// and the central security account in these tests.
pub const MANAGEMENT_ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The venv's Python (`make venv` creates it), or `GUARDRAIL_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var_os("GUARDRAIL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"))
}

/// A running moto server. Dropping it stops the server.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Emulator {
    /// Starts moto on 127.0.0.1 with a free port and waits until it listens.
    pub fn start() -> Emulator {
        let python = python();
        assert!(
            python.exists(),
            "{} is missing: run `make venv` (or `make test`) to install the emulator",
            python.display()
        );
        let log = std::env::temp_dir().join(format!("guardrail-moto-{}-{}.log", std::process::id(), unique()));
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(&python)
            .arg(workspace().join("tests/emulator/server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("moto did not start within 60 s; see {}", log.display()));
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("moto said {line:?}; see {}", log.display()));
        Emulator {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Configuration for the management account (moto's default credentials), with instant
    /// retries so failure tests do not sleep.
    pub async fn config(&self) -> SdkConfig {
        self.config_with(Credentials::new("testing", "testing", None, None, "emulator"))
            .await
    }

    pub async fn config_with(&self, credentials: Credentials) -> SdkConfig {
        let tuning = Tuning {
            initial_backoff: Duration::from_millis(1),
            ..Tuning::default()
        };
        tuned(aws_config::defaults(BehaviorVersion::latest()), &tuning)
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Configuration acting in `account` through its `OrganizationAccountAccessRole`.
    pub async fn config_as(&self, account: &str) -> SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.config().await);
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
            .role_session_name("test-harness")
            .send()
            .await
            .expect("AssumeRole into the member account");
        let c = out.credentials().expect("credentials");
        self.config_with(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "emulator-member",
        ))
        .await
    }

    /// Environment variables that point an AWS SDK process (a function binary) at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Every AWS call the server has answered so far, as `service.Action` (`ec2.CreateTags`),
    /// in order.
    pub fn calls(&self) -> Vec<String> {
        self.call_lines()
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// Every call so far as the server logged it: `service.Action status caller`.
    pub fn call_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("CALL "))
            .map(str::to_string)
            .collect()
    }

    /// Makes the emulator fail matching calls (see `tests/emulator/server.py` for the fields).
    pub fn inject_fault(&self, fault: serde_json::Value) {
        self.control("POST", &fault.to_string());
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.control("DELETE", "");
    }

    fn control(&self, method: &str, body: &str) {
        let answer = self.raw(method, "/_guardrail/faults", "application/json", "", body);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "the emulator refused the fault: {answer}"
        );
    }

    /// The asynchronous Lambda invocations made since the last time they were taken, oldest
    /// first: `{"function": NAME, "payload": JSON, "caller": ARN}` each.
    pub fn take_invocations(&self) -> Vec<serde_json::Value> {
        let answer = self.raw("GET", "/_guardrail/invocations", "application/json", "", "");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("the emulator's invocations: {e}: {answer}"))
    }

    /// A call to a query-protocol service (`monitoring`, ...) as the holder of `access_key`
    /// (moto tells accounts apart by the key and does not check signatures). Returns the raw
    /// HTTP answer.
    pub fn query(&self, service: &str, access_key: &str, params: &[(String, String)]) -> String {
        let body = params
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let date = chrono::Utc::now().format("%Y%m%d");
        let auth = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={access_key}/{date}/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n"
        );
        self.raw("POST", "/", "application/x-www-form-urlencoded", &auth, &body)
    }

    fn raw(&self, method: &str, path: &str, content_type: &str, headers: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect to the emulator");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// The calls since `mark` (a length of [`Emulator::call_lines`]) made by callers in
    /// `account`, role assumption left out.
    pub fn calls_in(&self, mark: usize, account: &str) -> Vec<String> {
        let lines = self.call_lines();
        lines[mark.min(lines.len())..]
            .iter()
            .filter(|l| l.contains(&format!(":{account}:")))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "sts.AssumeRole")
            .map(str::to_string)
            .collect()
    }

    /// Those of [`Emulator::calls_in`] that change something.
    pub fn writes_in(&self, mark: usize, account: &str) -> Vec<String> {
        self.calls_in(mark, account)
            .into_iter()
            .filter(|c| !is_read(c))
            .collect()
    }

    /// The calls answered since `mark` (a length of [`Emulator::calls`]).
    pub fn calls_since(&self, mark: usize) -> Vec<String> {
        self.calls().split_off(mark.min(self.calls().len()))
    }
}

/// A directory that collects the calls of every emulator of a run (`make test` sets it), for
/// the check that each call is granted by the IAM policy of the role that made it.
pub const CALL_LOG_DIR: &str = "GUARDRAIL_CALL_LOG_DIR";

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(dir) = std::env::var_os(CALL_LOG_DIR) {
            let lines = self.call_lines();
            let file = Path::new(&dir).join(format!("calls-{}-{}.log", std::process::id(), unique()));
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, lines.join("\n") + "\n"))
            {
                eprintln!("cannot keep the emulator's calls in {}: {e}", file.display());
            }
        }
        drop(self.child.stdin.take()); // end of input: the server stops by itself
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `application/x-www-form-urlencoded` escaping.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls that only read (`ec2.DescribeVpcs`, `iam.GetAccountPasswordPolicy`, REST `GET`s).
pub fn is_read(call: &str) -> bool {
    [".Get", ".List", ".Describe", ".GET:"].iter().any(|r| call.contains(r))
}

/// A number unique within this process.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
