//! Logging: the subscriber set-up and the one access-log line per request.
//!
//! Only the method, the path without its query, status, sizes and timing are logged: never a
//! header value, so `Authorization` and `Cookie` cannot leak.

use std::net::IpAddr;
use std::time::Instant;

use pingora::proxy::Session;
use pingora::Error;
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Target of access-log lines, so they can be filtered (`portcullis::gateway::decide=off`).
pub const ACCESS_TARGET: &str = "portcullis::gateway::decide";

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
        LogFormat::Text => builder
            .with_ansi(false)
            .fmt_fields(debug_fn(write_escaped_field).delimited(" "))
            .finish()
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).finish().try_init(),
    };
    if let Err(e) = result {
        eprintln!("portcullis: logging was already set up: {e}");
    }
}

/// Writes one field of a text log line with every control character escaped, so that a
/// client-supplied value (a user name with a newline, a reason quoting a header) cannot
/// start a forged line or move a terminal's cursor. JSON lines are escaped by serde.
fn write_escaped_field(
    writer: &mut Writer<'_>,
    field: &Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    use std::fmt::Write;
    match field.name() {
        "message" => write!(EscapeControls(writer), "{value:?}"),
        // Metadata of records bridged from the `log` crate, shown in the line's prefix.
        name if name.starts_with("log.") => Ok(()),
        name => {
            write!(writer, "{name}=")?;
            write!(EscapeControls(writer), "{value:?}")
        }
    }
}

/// A writer that passes text through with control characters (CR, LF, NUL, ESC, DEL, C1,
/// ...) written as escapes; runs without them are written as they are, without copying.
struct EscapeControls<W>(W);

impl<W: std::fmt::Write> std::fmt::Write for EscapeControls<W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
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
    let client = crate::clock::or_dash(client_ip);
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

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        use std::fmt::Write;
        let escape_controls = |text: &str| {
            let mut out = String::new();
            write!(super::EscapeControls(&mut out), "{text}").unwrap();
            out
        };
        assert_eq!(escape_controls("alice"), "alice");
        assert_eq!(
            escape_controls("a\r\nb\0c\x1b[2Jd\u{7f}\u{85}"),
            "a\\r\\nb\\u{0}c\\u{1b}[2Jd\\u{7f}\\u{85}"
        );
    }
}
