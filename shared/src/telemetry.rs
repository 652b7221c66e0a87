//! Logging: JSON lines in Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text elsewhere, always
//! to stderr so a CLI's stdout stays clean for its output.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing. The level comes from `RUST_LOG`,
/// else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map(|l| l.to_lowercase()))
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.compact().with_ansi(false).try_init()
    };
}
