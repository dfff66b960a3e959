//! The TOML file as written by the operator: a serde mirror with documented defaults.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo never silently falls back to a
//! default. Nothing here is checked beyond its type; [`super::Config::from_file`] validates.

use serde::Deserialize;

pub use super::file_auth::*;
use crate::tls::client_auth::{ClientAuthMode, UserFrom};
use crate::tls::settings::TlsVersion;

/// The whole file. See `conf/portcullis.toml` for a commented example.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Addresses to accept TLS connections on. Default `["0.0.0.0:5443"]`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// The plain-HTTP registry, `http://HOST:PORT`, or a list of replicas over shared
    /// storage (one `http.secret`). Required.
    pub upstream: Option<OneOrMany>,
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
    #[serde(default)]
    pub auth: FileAuth,
    /// The admin listener: `/metrics`, `/healthz`, `/readyz`.
    #[serde(default)]
    pub admin: FileAdmin,
    /// The audit log. Default: none.
    pub audit: Option<FileAudit>,
    /// Webhooks for other systems.
    #[serde(default)]
    pub events: FileEvents,
    /// Where counters shared by replicas live.
    #[serde(default)]
    pub state: FileState,
    /// Rate limits.
    #[serde(default)]
    pub limits: FileLimits,
    /// Reload when the config file or a file it names changes (SIGHUP always reloads).
    /// Default `false`.
    #[serde(default)]
    pub watch: bool,
    /// Allow only pulls (and the catalog): for maintenance and garbage collection.
    /// Default `false`.
    #[serde(default)]
    pub read_only: bool,
    /// Authorization rules. Without `[acl]` every authenticated user may do everything.
    pub acl: Option<FileAcl>,
}

/// `[tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    /// PEM file: the server certificate first, then its intermediates (registry:2's
    /// `http.tls.certificate`). Required unless `[tls.acme]` obtains the certificate.
    pub certificate: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for that certificate. Required with
    /// `certificate`.
    pub key: Option<String>,
    /// Obtain and renew the certificate from an ACME server instead of the two files.
    pub acme: Option<FileAcme>,
    /// Lowest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Offer HTTP/2 by ALPN besides HTTP/1.1. Default `true`.
    #[serde(default = "default_true")]
    pub http2: bool,
    /// Client certificates. Default: not asked for.
    pub client_auth: Option<FileClientAuth>,
}

/// `[tls.acme]`: the certificate from an ACME server (Let's Encrypt by default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAcme {
    /// The ACME directory URL. Default Let's Encrypt production.
    pub directory: Option<String>,
    /// The names of the one certificate. Required.
    #[serde(default)]
    pub domains: Vec<String>,
    /// E-mail address for the account (expiry and policy notices). Default none.
    pub contact: Option<String>,
    /// Folder for the account key and certificates, created owner-only. Required.
    pub storage: Option<String>,
    /// `"tls-alpn-01"` (default; answered on the TLS listener) or `"http-01"` (needs
    /// `http_listen`).
    #[serde(default = "default_challenge")]
    pub challenge: crate::tls::acme::ChallengeKind,
    /// Plain-HTTP address (usually `0.0.0.0:80`) answering http-01 and redirecting the rest
    /// to https. Default: none.
    pub http_listen: Option<String>,
    /// PEM root(s) of a private ACME server's HTTPS. Default: the system's CAs.
    pub ca: Option<String>,
    /// Seconds before expiry to renew. Default: when a third of the lifetime is left.
    pub renew_before: Option<u64>,
}

fn default_challenge() -> crate::tls::acme::ChallengeKind {
    crate::tls::acme::ChallengeKind::TlsAlpn01
}

/// `[tls.client_auth]`, like registry:2's `http.tls.clientcas`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClientAuth {
    /// PEM files of the CAs that issue client certificates; each may hold several.
    #[serde(default)]
    pub cas: Vec<String>,
    /// `"require"` (default): no valid certificate, no connection. `"optional"`: a presented
    /// certificate must be valid; without one, Basic auth decides.
    #[serde(default)]
    pub mode: ClientAuthMode,
    /// PEM CRL files; a revoked certificate fails the handshake. Default none.
    #[serde(default)]
    pub crls: Vec<String>,
    /// Which field names the user: `"cn"` (default), `"san-dns"`, `"san-email"`, `"san-uri"`.
    #[serde(default)]
    pub user_from: UserFrom,
}

/// `[acl]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileAcl {
    /// Another TOML file with `[groups]` and `[[rules]]`; its rules come after these.
    pub include: Option<String>,
    #[serde(default)]
    pub groups: std::collections::HashMap<String, Vec<String>>,
    #[serde(default)]
    pub rules: Vec<FileRule>,
    /// Tags that never move once they exist.
    #[serde(default)]
    pub immutable: Vec<FileImmutable>,
}

/// `[state]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    /// `"memory"` (default: this process only) or `"redis"`.
    #[serde(default = "default_state_backend")]
    pub backend: String,
    /// `redis://HOST[:PORT][/DB]` or `rediss://` (TLS). Required for `"redis"`.
    pub url: Option<String>,
    /// Its password (or `password_file`, or `PORTCULLIS_STATE_PASSWORD`).
    pub password: Option<String>,
    pub password_file: Option<String>,
    /// Prefix of every key. Default `"portcullis:"`.
    #[serde(default = "default_state_prefix")]
    pub prefix: String,
    /// Milliseconds a Redis call may take before the replica counts locally. Default 200.
    #[serde(default = "default_state_timeout")]
    pub timeout_ms: u64,
    /// PEM CA certificates for `rediss://`, instead of the system's.
    pub ca: Option<String>,
}

fn default_state_backend() -> String {
    "memory".into()
}
fn default_state_prefix() -> String {
    "portcullis:".into()
}
fn default_state_timeout() -> u64 {
    200
}

impl Default for FileState {
    fn default() -> Self {
        FileState {
            backend: default_state_backend(),
            url: None,
            password: None,
            password_file: None,
            prefix: default_state_prefix(),
            timeout_ms: default_state_timeout(),
            ca: None,
        }
    }
}

/// `[limits]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// Upload requests one user may have in progress at once. Default: no limit.
    pub max_concurrent_uploads: Option<u32>,
    /// TLS connections one client address may hold at once. Default: no limit.
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub pulls: Vec<FilePullLimit>,
}

/// `[[limits.pulls]]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FilePullLimit {
    pub comment: Option<String>,
    /// Who it counts, as in `[[acl.rules]]`: users, groups, certificates, robots, oidc,
    /// anonymous. Required.
    pub who: Option<FileWho>,
    /// `"address"` (default) or `"user"`.
    #[serde(default = "default_per")]
    pub per: String,
    /// Manifest GETs allowed per window. Required.
    pub count: Option<u64>,
    /// `6h`, `30m`, `1d`, `90s`. Required.
    pub window: Option<String>,
}

fn default_per() -> String {
    "address".into()
}

/// `who = {...}` of a limit.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileWho {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub robots: Vec<String>,
    pub oidc: Option<FileOidcMatch>,
    #[serde(default)]
    pub anonymous: bool,
}

/// `[events]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileEvents {
    #[serde(default)]
    pub webhook: Vec<FileWebhook>,
}

/// `[[events.webhook]]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileWebhook {
    /// In metrics and logs. Default `webhook-N`.
    pub name: Option<String>,
    /// Where events are POSTed (`https://`, or `http://` on a trusted network). Required.
    pub url: Option<String>,
    /// Which: `push`, `delete`, `pull`, `denied`, `tag-overwrite`. Default: all.
    pub events: Option<Vec<String>>,
    /// `cloudevents` (default) or `distribution`.
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// HMAC-SHA256 key of the `X-Portcullis-Signature` header (or `secret_file`).
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    /// Seconds per attempt. Default 5.
    #[serde(default = "default_webhook_timeout")]
    pub timeout: u64,
    /// Attempts after the first. Default 5.
    #[serde(default = "default_webhook_retries")]
    pub max_retries: u32,
    /// Events waiting at most; beyond, the oldest is dropped. Default 1000.
    #[serde(default = "default_webhook_queue")]
    pub queue: usize,
    /// PEM CA certificates trusted for an `https://` receiver, besides the system's.
    pub ca: Option<String>,
}

fn default_webhook_format() -> String {
    "cloudevents".into()
}
fn default_webhook_timeout() -> u64 {
    5
}
fn default_webhook_retries() -> u32 {
    5
}
fn default_webhook_queue() -> usize {
    1000
}

/// `[[acl.immutable]]`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileImmutable {
    pub comment: Option<String>,
    /// Repository globs (`prod/*`). Required.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Tag globs (`v*`, `release-*`). Required.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The file `acl.include` names.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileAclInclude {
    #[serde(default)]
    pub groups: std::collections::HashMap<String, Vec<String>>,
    #[serde(default)]
    pub rules: Vec<FileRule>,
}

/// `[[acl.rules]]`
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    pub comment: Option<String>,
    /// User names; `"*"` is every authenticated user.
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Client-certificate identities (only certificate-authenticated requests).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Robot-account name globs, e.g. `["ci-*"]` (robots match no other kind of rule).
    #[serde(default)]
    pub robots: Vec<String>,
    /// OIDC token holders of an issuer, by claims (they match no other kind of rule).
    pub oidc: Option<FileOidcMatch>,
    /// Requests without credentials.
    #[serde(default)]
    pub anonymous: bool,
    /// Client CIDRs the rule is limited to. Default: any.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Repository globs: `*` matches anything (also `/`), `${user}` the user's name.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// The rule is about the catalog (`GET /v2/_catalog`).
    #[serde(default)]
    pub catalog: bool,
    /// `"pull"`, `"push"`, `"delete"`, `"*"`, and `"overwrite"` (move or delete immutable
    /// tags; never implied by `"*"`).
    #[serde(default)]
    pub actions: Vec<String>,
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

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    /// Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Plain HTTP, so keep it on loopback or a management network. Default `127.0.0.1:9444`.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

impl Default for FileAdmin {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9444".to_string()
}

/// `[audit]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAudit {
    /// A file to append JSON lines to, or `"-"` for standard output. Required.
    pub path: Option<String>,
    /// Also one line per manifest fetched (`GET` by tag or digest). Default `false`.
    #[serde(default)]
    pub pulls: bool,
}

/// A single value or a list (`upstream`).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}
