//! The TOML file as written by the operator: a serde mirror with documented defaults.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo never silently falls back to a
//! default. Nothing here is checked beyond its type; [`super::Config::from_file`] validates.

use serde::Deserialize;

/// The whole file. See `conf/portcullis.toml` for a commented example.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Addresses to accept TLS connections on. Default `["0.0.0.0:5443"]`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// The plain-HTTP registry, `http://HOST:PORT`. Required.
    pub upstream: Option<String>,
    /// CIDRs of proxies in front of Portcullis whose `X-Forwarded-*` headers are believed.
    /// Default: none, so every client-sent forwarding header is dropped.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Worker threads. Default: the number of CPUs.
    pub threads: Option<usize>,
    /// TLS termination. Required.
    pub tls: Option<FileTls>,
    #[serde(default)]
    pub timeouts: FileTimeouts,
    #[serde(default)]
    pub shutdown: FileShutdown,
    #[serde(default)]
    pub log: FileLog,
}

/// `[tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    /// PEM file: the server certificate first, then its intermediates (registry:2's
    /// `http.tls.certificate`). Required.
    pub certificate: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for that certificate. Required.
    pub key: Option<String>,
    /// Lowest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: FileTlsVersion,
    /// Offer HTTP/2 by ALPN besides HTTP/1.1. Default `true`.
    #[serde(default = "default_true")]
    pub http2: bool,
}

/// `tls.min_version`
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub enum FileTlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[timeouts]`, all in seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    /// Longest silence while a request or response is in progress, on either side, before
    /// the transfer is cut. An idle timeout, not a total one: a slow multi-GB layer that keeps
    /// moving is never cut. Default 900 (the nginx recipe's `proxy_read_timeout`).
    #[serde(default = "default_idle")]
    pub idle: u64,
    /// Time allowed to open a TCP connection to the backend. Default 10.
    #[serde(default = "default_connect")]
    pub connect: u64,
    /// How long an idle client keep-alive connection is kept open. Default 75.
    #[serde(default = "default_keepalive")]
    pub keepalive: u64,
}

/// `[shutdown]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShutdown {
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT; the process exits
    /// as soon as none are left. Default 30.
    #[serde(default = "default_grace")]
    pub grace_period: u64,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    /// `"text"` (default) or `"json"`, for the access log and every other line.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `"info"` (default) or `"portcullis=debug,info"`.
    /// `RUST_LOG`, when set, wins.
    #[serde(default = "default_level")]
    pub level: String,
    /// One line per request. Default `true`.
    #[serde(default = "default_true")]
    pub access: bool,
}

/// `log.format`
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_listen() -> Vec<String> {
    vec!["0.0.0.0:5443".to_string()]
}
fn default_true() -> bool {
    true
}
fn default_idle() -> u64 {
    900
}
fn default_connect() -> u64 {
    10
}
fn default_keepalive() -> u64 {
    75
}
fn default_grace() -> u64 {
    30
}
fn default_level() -> String {
    "info".to_string()
}

impl Default for FileTimeouts {
    fn default() -> Self {
        Self {
            idle: default_idle(),
            connect: default_connect(),
            keepalive: default_keepalive(),
        }
    }
}

impl Default for FileShutdown {
    fn default() -> Self {
        Self {
            grace_period: default_grace(),
        }
    }
}

impl Default for FileLog {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_level(),
            access: true,
        }
    }
}
