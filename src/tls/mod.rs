//! TLS termination: the rustls pieces handed to pingora's listener.

pub mod certs;
pub mod client_auth;
pub mod settings;

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use arc_swap::ArcSwap;
use rustls::server::danger::ClientCertVerifier as _;

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

/// Serves one certificate chain to every client, whatever name it asks for; the chain is
/// swapped on reload, and new handshakes get the new one.
#[derive(Debug)]
pub struct LiveCert(ArcSwap<CertifiedKey>);

impl LiveCert {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self(ArcSwap::new(key))
    }

    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.0.store(key);
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The TLS state listeners use, replaceable while running.
pub struct LiveTls {
    pub cert: Arc<LiveCert>,
    /// Present with `[tls.client_auth]`.
    pub client: Option<Arc<LiveVerifier>>,
    pub user_from: Option<UserFrom>,
    pub peers: Arc<PeerMap>,
    pub http2: bool,
}

impl LiveTls {
    pub fn new(tls: &TlsConfig) -> Self {
        let peers = Arc::new(PeerMap::default());
        let client = tls.client_auth.as_ref().map(|c| {
            Arc::new(LiveVerifier::new(
                Arc::clone(&c.verifier),
                Arc::clone(&peers),
            ))
        });
        LiveTls {
            cert: Arc::new(LiveCert::new(Arc::clone(&tls.identity.certified_key))),
            client,
            user_from: tls.client_auth.as_ref().map(|c| c.user_from),
            peers,
            http2: tls.http2,
        }
    }

    /// Takes the certificate, CAs and CRLs of `tls`. What needs new listeners (client
    /// certificates turned on or off, another mode or `user_from`, ALPN) is returned as
    /// `Err` and nothing is changed.
    pub fn update(&self, tls: &TlsConfig) -> Result<(), String> {
        let same_shape = match (&self.client, &tls.client_auth) {
            (None, None) => true,
            (Some(live), Some(new)) => {
                live.client_auth_mandatory() == (new.mode == ClientAuthMode::Require)
                    && self.user_from == Some(new.user_from)
            }
            _ => false,
        };
        if !same_shape || self.http2 != tls.http2 {
            return Err("tls.client_auth (on/off, mode, user_from) and tls.http2 take effect after a restart".into());
        }
        self.cert.replace(Arc::clone(&tls.identity.certified_key));
        if let (Some(live), Some(new)) = (&self.client, &tls.client_auth) {
            live.replace(Arc::clone(&new.verifier));
        }
        Ok(())
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
