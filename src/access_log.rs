//! Logging: the subscriber set-up and the one access-log line per request.
//!
//! Only the method, the path without its query, status, sizes and timing are logged: never a
//! header value, so `Authorization` and `Cookie` cannot leak.

use std::net::IpAddr;
use std::time::Instant;

use pingora::proxy::Session;
use pingora::Error;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Target of access-log lines, so they can be filtered (`portcullis::access=off`).
pub const ACCESS_TARGET: &str = "portcullis::access";

/// Libraries whose debug and trace output includes request headers (pingora prints whole
/// request heads, `Authorization` included): held at `info` whatever the configured level.
const HEADER_LOGGING_TARGETS: [&str; 6] = [
    "pingora_proxy",
    "pingora_core",
    "pingora_http",
    "pingora_pool",
    "h2",
    "hyper",
];

/// The filter for `level`, with [`HEADER_LOGGING_TARGETS`] capped at `info`.
pub fn filter(level: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in HEADER_LOGGING_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber: `RUST_LOG` if set, else `log.level`; text or JSON to stdout.
pub fn init(log: &LogConfig) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| log.level.clone());
    let filter = filter(&level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match log.format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("portcullis: logging was already set up: {e}");
    }
}

/// Logs one finished request.
pub fn log_request(
    session: &Session,
    error: Option<&Error>,
    client_ip: Option<IpAddr>,
    user: Option<&str>,
    started: Instant,
) {
    let req = session.req_header();
    let status = session.response_written().map_or(0, |r| r.status.as_u16());
    let client = client_ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "-".to_string());
    let http = if session.is_http2() { "h2" } else { "http/1.1" };
    tracing::info!(
        target: ACCESS_TARGET,
        client = %client,
        method = %req.method,
        path = %req.uri.path(),
        status,
        bytes_in = session.body_bytes_read(),
        bytes_out = session.body_bytes_sent(),
        duration_ms = started.elapsed().as_millis() as u64,
        http,
        user = user.unwrap_or("-"),
        error = error.map(|e| e.etype().as_str()).unwrap_or("-"),
        "request"
    );
}
