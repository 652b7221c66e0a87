//! A function's real binary under the Lambda Runtime API that `cargo lambda watch` emulates,
//! invoked with `cargo lambda invoke`, as a deployed function would be.
//!
//! The watcher runs with `--only-lambda-apis`, and the test starts the binary Cargo built for it
//! (`CARGO_BIN_EXE_<name>`): the same build as the tests, so no second build of the SDK.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulator::workspace;

/// `cargo-lambda` from the venv (`make venv` installs it from PyPI).
pub fn cargo_lambda() -> PathBuf {
    workspace().join(".venv/bin/cargo-lambda")
}

/// The name `cargo lambda watch --only-lambda-apis` gives the function it serves.
const SERVED_NAME: &str = "_";

/// A function binary serving `cargo lambda watch`'s runtime API. Dropping it stops both.
pub struct WatchedFunction {
    watcher: Child,
    function: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl WatchedFunction {
    /// Starts the runtime API on a free port and `binary` against it, with `env` as its
    /// environment (plus the Lambda variables the runtime API needs).
    pub fn start(binary: &str, env: &[(String, String)]) -> WatchedFunction {
        let tool = cargo_lambda();
        assert!(tool.exists(), "{} is missing: run `make venv`", tool.display());
        let port = free_port();
        let name = std::path::Path::new(binary)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = std::env::temp_dir().join(format!("guardrail-lambda-{name}-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("function log");
        let path = format!(
            "{}:{}",
            workspace().join(".venv/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let watcher = Command::new(&tool)
            .args(["lambda", "watch", "--only-lambda-apis", "--quiet"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            .current_dir(workspace())
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file.try_clone().expect("log")))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tool.display()));
        wait_for_port(port, Duration::from_secs(60), &log);
        let function = Command::new(binary)
            .env_clear()
            .env("PATH", &path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", SERVED_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("log")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        WatchedFunction {
            watcher,
            function,
            port,
            log,
        }
    }

    /// Invokes the function with the event (through a file, as `cargo lambda invoke
    /// --data-file` does) and returns its response, or the error it reported.
    pub fn invoke(&self, event: &Value) -> Result<Value, String> {
        let file = std::env::temp_dir().join(format!(
            "guardrail-event-{}-{}.json",
            self.port,
            crate::emulator::unique()
        ));
        std::fs::write(&file, event.to_string()).expect("write event");
        let out = Command::new(cargo_lambda())
            .args(["lambda", "invoke", SERVED_NAME, "--data-file"])
            .arg(&file)
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &self.port.to_string()])
            .current_dir(workspace())
            .output()
            .expect("cargo lambda invoke");
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{}{}\n(function log: {})",
                stdout,
                String::from_utf8_lossy(&out.stderr),
                self.log.display()
            ));
        }
        serde_json::from_str(stdout.trim()).map_err(|e| format!("response {stdout:?}: {e}"))
    }

    /// Sends the function a dry-run sweep of one account, as the schedule sends a sweep, and
    /// returns the sweep's summary (it fails unless the sweep finished in one invocation).
    pub fn dry_run_sweep(&self, account: &str) -> String {
        let request = serde_json::json!({ guardrail::sweep::INPUT_KEY: {
            "name": "e2e", "time": chrono::Utc::now().to_rfc3339(), "accounts": [account], "dry_run": true
        }});
        let swept = self.invoke(&request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(swept[0]["outcome"], "swept", "{swept}");
        swept[0]["summary"].as_str().unwrap_or_default().to_string()
    }

    /// Starts an invocation without waiting for it (the test kills the function meanwhile).
    pub fn invoke_detached(&self, event: &Value) -> Child {
        let file = std::env::temp_dir().join(format!(
            "guardrail-event-{}-{}.json",
            self.port,
            crate::emulator::unique()
        ));
        std::fs::write(&file, event.to_string()).expect("write event");
        Command::new(cargo_lambda())
            .args(["lambda", "invoke", SERVED_NAME, "--data-file"])
            .arg(&file)
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &self.port.to_string()])
            .current_dir(workspace())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda invoke")
    }

    /// What the watcher and the function have logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WatchedFunction {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        let group = format!("-{}", self.watcher.id());
        let quiet = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        quiet("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watcher.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        quiet("-KILL");
        let _ = self.watcher.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn wait_for_port(port: u16, limit: Duration, log: &std::path::Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "cargo lambda watch did not listen within {limit:?}; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Checks that a function binary refuses to start without its configuration, and that each
/// complaint names what to fix: the variable, or the policy file's line.
pub fn assert_init_fails_loudly(binary: &str) {
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(binary);
        c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
        assert!(!out.status.success(), "{binary} started with {env:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let topic = (
        "GUARDRAIL_TOPIC_ARN",
        "arn:aws:sns:us-east-1:123456789012:guardrail-alerts",
    );
    let table = ("GUARDRAIL_TABLE", "guardrail");
    let ledger = ("GUARDRAIL_LEDGER_TABLE", "guardrail-ledger");
    let err = run(&[topic]);
    assert!(err.contains("GUARDRAIL_TABLE is not set"), "{err}");
    let err = run(&[table, topic]);
    assert!(err.contains("GUARDRAIL_LEDGER_TABLE is not set"), "{err}");
    let err = run(&[table, ledger]);
    assert!(err.contains("GUARDRAIL_TOPIC_ARN is not set"), "{err}");
    let err = run(&[table, ledger, ("GUARDRAIL_TOPIC_ARN", "guardrail-alerts")]);
    assert!(
        err.contains("GUARDRAIL_TOPIC_ARN=\"guardrail-alerts\" is not an SNS topic ARN"),
        "{err}"
    );
    let bad = std::env::temp_dir().join(format!(
        "guardrail-bad-policy-{}-{}.toml",
        std::process::id(),
        crate::emulator::unique()
    ));
    std::fs::write(
        &bad,
        "version = 1\n[environments.prod.modes]\nquarantine = \"isolate\"\n",
    )
    .expect("write policy");
    let err = run(&[table, ledger, topic, ("GUARDRAIL_POLICY", bad.to_str().expect("path"))]);
    let _ = std::fs::remove_file(&bad);
    assert!(
        err.contains("line 3: environments.prod.modes.quarantine: unknown mode"),
        "{err}"
    );
}
