//! TLS termination: the rustls pieces handed to pingora's listener.

pub mod certs;
pub mod client_auth;
pub mod http_client;
pub mod settings;

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use client_auth::{ClientAuthMode, LiveVerifier, PeerMap, UserFrom};
use settings::{TlsConfig, TlsVersion};

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

/// Where listeners read the TLS settings being served from, on every handshake: the
/// gateway's live state, which a reload replaces whole.
pub trait TlsSource: Send + Sync + std::fmt::Debug {
    fn tls(&self) -> Arc<TlsConfig>;
}

/// Serves the served settings' certificate chain to every client, whatever name it asks
/// for; after a reload, new handshakes get the new one.
#[derive(Debug)]
pub struct LiveCert(Arc<dyn TlsSource>);

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.tls().identity.certified_key))
    }
}

/// What the listeners are built with. The shape (client certificates on or off, their mode
/// and name field, ALPN) is fixed at start-up; the certificate, CAs and CRLs come from the
/// [`TlsSource`] at each handshake.
pub struct LiveTls {
    pub cert: Arc<LiveCert>,
    /// Present with `[tls.client_auth]`.
    pub client: Option<Arc<LiveVerifier>>,
    pub user_from: Option<UserFrom>,
    pub peers: Arc<PeerMap>,
    pub http2: bool,
}

impl LiveTls {
    /// Listeners shaped by `tls` (the start-up settings) that serve what `source` holds.
    pub fn new(tls: &TlsConfig, source: Arc<dyn TlsSource>) -> Self {
        let peers = Arc::new(PeerMap::default());
        let client = tls.client_auth.as_ref().map(|c| {
            Arc::new(LiveVerifier::new(
                Arc::clone(&source),
                c.mode == ClientAuthMode::Require,
                Arc::clone(&peers),
            ))
        });
        LiveTls {
            cert: Arc::new(LiveCert(source)),
            client,
            user_from: tls.client_auth.as_ref().map(|c| c.user_from),
            peers,
            http2: tls.http2,
        }
    }
}

/// pingora listener settings: our own resolver (so no file is loaded, or panicked over, by
/// pingora) and ALPN h2 + http/1.1 or http/1.1 alone. With client certificates, the
/// listener also verifies them and attaches each one's [`client_auth::ClientIdentity`] to
/// its connection.
pub fn listener_settings(live: &LiveTls) -> pingora::Result<TlsSettings> {
    let mut settings = match (&live.client, live.user_from) {
        (Some(verifier), Some(user_from)) => {
            let callback = client_auth::IdentityCallback {
                user_from,
                peers: Arc::clone(&live.peers),
            };
            let mut settings = TlsSettings::with_callbacks(Box::new(callback))?;
            let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = verifier.clone();
            settings.set_client_cert_verifier(verifier);
            settings
        }
        _ => TlsSettings::intermediate("", "")?,
    };
    let resolver: Arc<dyn ResolvesServerCert> = live.cert.clone();
    settings.set_cert_resolver(resolver);
    if live.http2 {
        settings.enable_h2();
    } else {
        settings.set_alpn(ALPN::H1);
    }
    Ok(settings)
}
