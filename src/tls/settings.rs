//! The validated `[tls]` settings (built by `config/`, used by the listener and reload).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;

use super::acme::AcmeSettings;
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

/// Where the server certificate comes from.
#[derive(Debug, Clone)]
pub enum ServerCert {
    /// `tls.certificate` and `tls.key`, loaded and checked (a reload reads them again).
    Files {
        certificate: PathBuf,
        key: PathBuf,
        identity: ServerIdentity,
    },
    /// `[tls.acme]`: obtained and renewed by the gateway itself.
    Acme(AcmeSettings),
}

/// `[tls]`, checked: the identity is loaded and matches, or ACME is set up.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub server: ServerCert,
    pub min_version: TlsVersion,
    pub http2: bool,
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

impl TlsConfig {
    /// The certificate files' identity; `None` with `[tls.acme]`.
    pub fn identity(&self) -> Option<&ServerIdentity> {
        match &self.server {
            ServerCert::Files { identity, .. } => Some(identity),
            ServerCert::Acme(_) => None,
        }
    }

    pub fn acme(&self) -> Option<&AcmeSettings> {
        match &self.server {
            ServerCert::Acme(acme) => Some(acme),
            ServerCert::Files { .. } => None,
        }
    }
}
