//! The validated `[tls]` settings (built by `config/`, used by the listener and reload).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;

use super::certs::ServerIdentity;
use super::client_auth::{ClientAuthMode, UserFrom};

/// Lowest accepted TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[tls]`, checked: the identity is loaded and matches.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub min_version: TlsVersion,
    pub http2: bool,
    pub identity: ServerIdentity,
    pub client_auth: Option<ClientAuthConfig>,
}

/// `[tls.client_auth]`, checked: CA files and CRLs loaded into a verifier.
#[derive(Debug, Clone)]
pub struct ClientAuthConfig {
    pub mode: ClientAuthMode,
    pub user_from: UserFrom,
    pub cas: Vec<PathBuf>,
    pub crls: Vec<PathBuf>,
    /// The WebPki verifier for `cas` and `crls` (the listener wraps it to log refusals).
    pub verifier: Arc<dyn ClientCertVerifier>,
}
