//! TLS termination: the rustls pieces handed to pingora's listener.

pub mod acme;
pub mod certs;
pub mod client_auth;
pub mod http_client;
pub mod settings;

use std::sync::Arc;

use pingora::listeners::tls::{Acceptor, TlsSettings};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;

use client_auth::{ClientAuthMode, LiveVerifier, PeerMap, UserFrom};
use settings::{TlsConfig, TlsVersion};

/// The process-wide rustls provider: aws-lc-rs, restricted to TLS 1.3 cipher suites when
/// `tls.min_version = "1.3"`, AES-128-GCM suites first.
///
/// aws-lc-rs rather than the ring that pingora would install: its AVX-512 AES-GCM costs about
/// a third less than ring's on this hot path, 2-4 % less gateway CPU per GiB served and
/// about 5 % less per handshake (bench/README.md). Clients that take the process default use
/// it too (pingora's connections to an `https://` upstream, Redis over TLS); those that name
/// ring ([`http_client`], the LDAP client), JWTs, ACME and certificate keys stay on ring.
///
/// pingora builds its `ServerConfig` with TLS 1.2 and 1.3 enabled and no way to change that;
/// it does use the process default provider, so a provider without TLS 1.2 suites is what
/// makes a TLS 1.2 handshake fail.
///
/// The listeners choose by this order ([`server_config`]): AES-128-GCM has 10 rounds to
/// AES-256's 14 and, at the same 128-bit security margin TLS 1.3 requires, costs about 4 %
/// less gateway CPU per GiB served (see bench/README.md); Go's TLS (Caddy) prefers it too.
pub fn crypto_provider(min_version: TlsVersion) -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if min_version == TlsVersion::Tls13 {
        provider
            .cipher_suites
            .retain(|suite| suite.version() == &rustls::version::TLS13);
    }
    provider
        .cipher_suites
        .sort_by_key(|suite| match suite.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            _ => 1,
        });
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
/// for; after a reload, new handshakes get the new one. With `[tls.acme]`, serves what the
/// ACME manager holds instead, and its tls-alpn-01 answers.
#[derive(Debug)]
pub struct LiveCert {
    source: Arc<dyn TlsSource>,
    acme: Option<Arc<acme::Acme>>,
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match &self.acme {
            Some(acme) => acme.resolve(&hello),
            None => self
                .source
                .tls()
                .identity()
                .map(|i| Arc::clone(&i.certified_key)),
        }
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
    /// With `[tls.acme]`.
    pub acme: Option<Arc<acme::Acme>>,
}

impl LiveTls {
    /// Listeners shaped by `tls` (the start-up settings) that serve what `source` holds.
    pub fn new(tls: &TlsConfig, source: Arc<dyn TlsSource>, acme: Option<Arc<acme::Acme>>) -> Self {
        let peers = Arc::new(PeerMap::default());
        let client = tls.client_auth.as_ref().map(|c| {
            Arc::new(LiveVerifier::new(
                Arc::clone(&source),
                c.mode == ClientAuthMode::Require,
                Arc::clone(&peers),
            ))
        });
        LiveTls {
            cert: Arc::new(LiveCert {
                source,
                acme: acme.clone(),
            }),
            client,
            user_from: tls.client_auth.as_ref().map(|c| c.user_from),
            peers,
            http2: tls.http2,
            acme,
        }
    }
}

/// The TLS acceptor of the listeners: pingora's, with its client-certificate callback,
/// handshaking with [`server_config`].
pub fn acceptor(live: &LiveTls) -> pingora::Result<Acceptor> {
    let mut acceptor = listener_settings(live)?.build();
    acceptor.acceptor = pingora::tls::TlsAcceptor::from(Arc::new(server_config(live)));
    Ok(acceptor)
}

/// pingora listener settings: our own resolver (so no file is loaded, or panicked over, by
/// pingora). With client certificates, the listener also verifies them and attaches each
/// one's [`client_auth::ClientIdentity`] to its connection.
fn listener_settings(live: &LiveTls) -> pingora::Result<TlsSettings> {
    let mut settings = match (&live.client, live.user_from) {
        (Some(_), Some(user_from)) => {
            let callback = client_auth::IdentityCallback {
                user_from,
                peers: Arc::clone(&live.peers),
            };
            TlsSettings::with_callbacks(Box::new(callback))?
        }
        _ => TlsSettings::intermediate("", "")?,
    };
    let resolver: Arc<dyn ResolvesServerCert> = live.cert.clone();
    settings.set_cert_resolver(resolver);
    Ok(settings)
}

/// The rustls configuration pingora would build (TLS 1.2 and 1.3 with the process
/// provider, our resolver and verifier), with the ALPN list pingora cannot express: h2
/// (when enabled) and http/1.1, plus `acme-tls/1` for tls-alpn-01 validation handshakes.
pub fn server_config(live: &LiveTls) -> ServerConfig {
    let builder = ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS12,
        &rustls::version::TLS13,
    ]);
    let builder = match &live.client {
        Some(verifier) => {
            let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = verifier.clone();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let resolver: Arc<dyn ResolvesServerCert> = live.cert.clone();
    let mut config = builder.with_cert_resolver(resolver);
    // The provider's order (AES-128-GCM first), not the client's (see `crypto_provider`).
    config.ignore_client_order = true;
    config.alpn_protocols = if live.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    if live.acme.as_ref().is_some_and(|a| a.answers_on_tls()) {
        config.alpn_protocols.push(acme::ACME_TLS_ALPN.to_vec());
    }
    config
}
