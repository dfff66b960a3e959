//! TLS termination: the rustls pieces handed to pingora's listener.

pub mod certs;
pub mod client_auth;

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{TlsConfig, TlsVersion};

/// The process-wide rustls provider: ring (the one pingora's rustls build uses), restricted
/// to TLS 1.3 cipher suites when `tls.min_version = "1.3"`.
///
/// pingora builds its `ServerConfig` with TLS 1.2 and 1.3 enabled and no way to change that;
/// it does use the process default provider, so a provider without TLS 1.2 suites is what
/// makes a TLS 1.2 handshake fail.
pub fn crypto_provider(min_version: TlsVersion) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if min_version == TlsVersion::Tls13 {
        provider
            .cipher_suites
            .retain(|suite| suite.version() == &rustls::version::TLS13);
    }
    provider
}

/// Installs [`crypto_provider`] as the process default. Must run before any listener is built.
pub fn install_crypto_provider(min_version: TlsVersion) -> Result<(), String> {
    crypto_provider(min_version)
        .install_default()
        .map_err(|_| "a TLS crypto provider was already installed in this process".to_string())
}

/// Serves one certificate chain to every client, whatever name it asks for.
#[derive(Debug)]
pub struct FixedCertResolver(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// pingora listener settings for the configured identity: our own resolver (so no file is
/// loaded, or panicked over, by pingora) and ALPN h2 + http/1.1 or http/1.1 alone.
///
/// With `[tls.client_auth]`, the listener also verifies client certificates and attaches
/// each verified certificate's [`client_auth::ClientIdentity`] to its connection.
pub fn listener_settings(tls: &TlsConfig) -> pingora::Result<TlsSettings> {
    let mut settings = match &tls.client_auth {
        Some(client_auth) => {
            let callback = client_auth::IdentityCallback {
                user_from: client_auth.user_from,
                peers: Arc::clone(&client_auth.peers),
            };
            let mut settings = TlsSettings::with_callbacks(Box::new(callback))?;
            settings.set_client_cert_verifier(Arc::clone(&client_auth.verifier));
            settings
        }
        None => TlsSettings::intermediate("", "")?,
    };
    settings.set_cert_resolver(Arc::new(FixedCertResolver(Arc::clone(
        &tls.identity.certified_key,
    ))));
    if tls.http2 {
        settings.enable_h2();
    } else {
        settings.set_alpn(ALPN::H1);
    }
    Ok(settings)
}
