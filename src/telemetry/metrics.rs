//! Counters for `/metrics` (Prometheus text format), kept in memory with atomics and small
//! maps: requests, authentication outcomes, bytes, upstream latency, refused client
//! certificates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The process's metrics, for the log layer that counts handshake failures (pingora reports
/// them only as log lines).
static GLOBAL: std::sync::OnceLock<std::sync::Arc<Metrics>> = std::sync::OnceLock::new();

/// Makes `metrics` the process's metrics; later calls are ignored.
pub fn install_global(metrics: std::sync::Arc<Metrics>) {
    let _ = GLOBAL.set(metrics);
}

/// The process's metrics, once installed.
pub fn global() -> Option<&'static Metrics> {
    GLOBAL.get().map(|m| m.as_ref())
}

/// All counters of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16, &'static str), u64>>,
    auth: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    handshake_failures: Mutex<BTreeMap<&'static str, u64>>,
    limited: Mutex<BTreeMap<String, u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    upstream_latency: crate::stats::Histogram,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(0) += 1;
}

impl Metrics {
    /// One finished request.
    pub fn request(
        &self,
        method: &str,
        status: u16,
        route: &'static str,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method.to_string(),
            _ => "other".to_string(),
        };
        bump(&self.requests, (method, status, route));
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }

    /// One authentication outcome: method (basic, certificate, token, anonymous, none) and
    /// outcome (ok, denied, throttled, bad_request).
    pub fn auth(&self, method: &'static str, outcome: &'static str) {
        bump(&self.auth, (method, outcome));
    }

    /// A request (or connection) refused by a rate limit: `pulls:N`, `uploads`,
    /// `connections`.
    pub fn limited(&self, limit: String) {
        bump(&self.limited, limit);
    }

    /// A failed TLS handshake, by reason.
    pub fn handshake_failure(&self, reason: &'static str) {
        bump(&self.handshake_failures, reason);
    }

    /// Time from sending a request to the registry until its response header arrived.
    pub fn upstream_latency(&self, elapsed: Duration) {
        self.upstream_latency.observe(elapsed);
    }

    /// The Prometheus text exposition, with `gauges` (name, help, labels, value) appended.
    pub fn render(&self, gauges: &[(&str, &str, String, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP portcullis_requests_total Requests answered, by method, status and route class.\n# TYPE portcullis_requests_total counter\n");
        for ((method, status, route), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "portcullis_requests_total{{method=\"{method}\",status=\"{status}\",route=\"{route}\"}} {n}");
        }
        out.push_str("# HELP portcullis_auth_total Authentication outcomes by method.\n# TYPE portcullis_auth_total counter\n");
        for ((method, outcome), n) in self.auth.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "portcullis_auth_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP portcullis_limited_total Requests and connections refused by a rate limit, by limit.\n# TYPE portcullis_limited_total counter\n");
        for (limit, n) in self
            .limited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "portcullis_limited_total{{limit=\"{limit}\"}} {n}");
        }
        out.push_str("# HELP portcullis_tls_handshake_failures_total Failed TLS handshakes, by reason.\n# TYPE portcullis_tls_handshake_failures_total counter\n");
        for (reason, n) in self
            .handshake_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "portcullis_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP portcullis_body_bytes_total Request and response body bytes.\n# TYPE portcullis_body_bytes_total counter");
        let _ = writeln!(
            out,
            "portcullis_body_bytes_total{{direction=\"in\"}} {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "portcullis_body_bytes_total{{direction=\"out\"}} {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        self.upstream_latency.render(
            &mut out,
            "portcullis_upstream_latency_seconds",
            "Time until the registry's response header.",
        );
        let mut seen = std::collections::HashSet::new();
        for (name, help, labels, value) in gauges {
            if seen.insert(*name) {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            }
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out
    }
}

/// Escapes a Prometheus label value.
pub use crate::stats::escape_label as label;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.request("GET", 200, "blob", 0, 10);
        m.request("GET", 200, "blob", 0, 5);
        m.request("BREW", 418, "other", 3, 0);
        m.auth("basic", "ok");
        m.upstream_latency(Duration::from_millis(3));
        let text = m.render(&[(
            "portcullis_build_info",
            "Build.",
            "{version=\"1\"}".into(),
            1.0,
        )]);
        assert!(
            text.contains(
                "portcullis_requests_total{method=\"GET\",status=\"200\",route=\"blob\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "portcullis_requests_total{method=\"other\",status=\"418\",route=\"other\"} 1"
        ));
        assert!(text.contains("portcullis_auth_total{method=\"basic\",outcome=\"ok\"} 1"));
        assert!(text.contains("portcullis_body_bytes_total{direction=\"out\"} 15"));
        assert!(text.contains("portcullis_upstream_latency_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("portcullis_upstream_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("portcullis_upstream_latency_seconds_count 1"));
        assert!(text.contains("portcullis_build_info{version=\"1\"} 1"));
        assert_eq!(label("a\"b"), "a\\\"b");
    }
}
