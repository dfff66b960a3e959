//! The validated `[tls.acme]` settings (built by `config/acme.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Let's Encrypt's production directory, the default `tls.acme.directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How the ACME server checks that this gateway answers for the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum ChallengeKind {
    /// RFC 8737: a TLS handshake with ALPN `acme-tls/1` on the TLS listener (port 443).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// RFC 8555 §8.3: `GET /.well-known/acme-challenge/TOKEN` on `http_listen` (port 80).
    #[serde(rename = "http-01")]
    Http01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
            ChallengeKind::Http01 => "http-01",
        }
    }
}

/// `[tls.acme]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSettings {
    /// The ACME server's directory URL (https).
    pub directory: String,
    /// The names of the one certificate, lower case, the first one its subject.
    pub domains: Vec<String>,
    /// `mailto:` URIs for the account; may be empty.
    pub contact: Vec<String>,
    /// Folder for the account key and the certificates; created owner-only.
    pub storage: PathBuf,
    pub challenge: ChallengeKind,
    /// The plain-HTTP listener: http-01 answers and redirects to https.
    pub http_listen: Option<SocketAddr>,
    /// Extra roots (DER) trusted for the ACME server's own HTTPS.
    pub ca: Vec<Vec<u8>>,
    /// Renew when this much of the certificate's life is left; `None`: a third of it.
    pub renew_before: Option<Duration>,
}
