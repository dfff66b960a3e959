//! Client certificates (`[tls.client_auth]`, like registry:2's `http.tls.clientcas`).
//!
//! rustls' WebPki verifier decides; a thin wrapper logs every refusal with the client address
//! and certificate subject, and a handshake callback turns the verified certificate into a
//! [`ClientIdentity`] that requests read from the connection's TLS digest.
//!
//! pingora offers no hook on handshake failure and the verifier does not see the client's
//! address, so a pre-TLS callback records the address under the connection's task id, which
//! the verifier (running in that same task) looks up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::TlsSource;
use crate::problem::Problem;

/// `tls.client_auth.mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    /// No valid certificate, no TLS connection.
    #[default]
    Require,
    /// A presented certificate must be valid; without one, other methods decide.
    Optional,
}

/// `tls.client_auth.user_from`: which part of the certificate names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserFrom {
    #[default]
    Cn,
    SanDns,
    SanEmail,
    SanUri,
}

/// Who a verified client certificate says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate's subject, for logs.
    pub subject: String,
    /// The user name per `user_from`, when the certificate has that field.
    pub user: Option<String>,
}

/// Reads the identity from a leaf certificate (pure).
pub fn identity_from_der(der: &[u8], user_from: UserFrom) -> Option<ClientIdentity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let user = match user_from {
        UserFrom::Cn => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        UserFrom::SanDns => first_san(&cert, |n| matches!(n, GeneralName::DNSName(_))),
        UserFrom::SanEmail => first_san(&cert, |n| matches!(n, GeneralName::RFC822Name(_))),
        UserFrom::SanUri => first_san(&cert, |n| matches!(n, GeneralName::URI(_))),
    };
    let user = user.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
    Some(ClientIdentity {
        subject: cert.subject().to_string(),
        user,
    })
}

fn first_san(
    cert: &X509Certificate<'_>,
    wanted: impl Fn(&GeneralName<'_>) -> bool,
) -> Option<String> {
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value
        .general_names
        .iter()
        .find(|n| wanted(n))
        .map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                s.to_string()
            }
            _ => String::new(),
        })
}

/// The subject of a DER certificate, or a placeholder, for log lines.
fn subject_of(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "(unparsable certificate)".into())
}

/// Builds the verifier for `cas` (each file may hold several CA certificates) and `crls`.
pub fn build_verifier(
    cas: &[PathBuf],
    crls: &[PathBuf],
    mode: ClientAuthMode,
) -> Result<Arc<dyn ClientCertVerifier>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut roots = RootCertStore::empty();
    if cas.is_empty() {
        problems.push(Problem::new(
            "tls.client_auth.cas",
            "is empty; list the PEM files of the CAs that issue client certificates",
        ));
    }
    for path in cas {
        match crate::tls::certs::read_certificates(path) {
            Ok(certs) => {
                for cert in certs {
                    if let Err(e) = roots.add(cert) {
                        problems.push(Problem::new(
                            "tls.client_auth.cas",
                            format!(
                                "{}: a certificate cannot be used as a CA: {e}",
                                path.display()
                            ),
                        ));
                    }
                }
            }
            Err(message) => problems.push(Problem::new("tls.client_auth.cas", message)),
        }
    }
    let mut revocations = Vec::new();
    for path in crls {
        match read_crls(path) {
            Ok(mut list) => revocations.append(&mut list),
            Err(message) => problems.push(Problem::new("tls.client_auth.crls", message)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let provider = Arc::new(crate::tls::crypto_provider(
        super::settings::TlsVersion::Tls12,
    ));
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(revocations);
    if mode == ClientAuthMode::Optional {
        builder = builder.allow_unauthenticated();
    }
    let inner = builder.build().map_err(|e| {
        vec![Problem::new(
            "tls.client_auth",
            format!("cannot build the client certificate verifier: {e}"),
        )]
    })?;
    Ok(inner)
}

fn read_crls(path: &std::path::Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    crate::tls::certs::read_pem_items(path, "X509 CRL")
}

/// Client addresses of connections in their TLS handshake, by tokio task id.
#[derive(Debug, Default)]
pub struct PeerMap(Mutex<HashMap<tokio::task::Id, (SocketAddr, Instant)>>);

/// Entries older than this are dropped (a handshake takes at most pingora's 60 s).
const PEER_TTL: Duration = Duration::from_secs(61);
/// Handshakes in progress remembered at most. Connections that close before their
/// handshake ends leave their entry behind; past this many, expired entries go first, then
/// the oldest half. A lost entry costs only the address in a refusal's log line.
const MAX_PEERS: usize = 8192;

impl PeerMap {
    /// Remembers `addr` as the client of the current task's handshake.
    pub fn insert(&self, addr: SocketAddr) {
        let Some(id) = tokio::task::try_id() else {
            return;
        };
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_PEERS {
            map.retain(|_, (_, at)| at.elapsed() < PEER_TTL);
        }
        if map.len() >= MAX_PEERS {
            let mut ages: Vec<Instant> = map.values().map(|(_, at)| *at).collect();
            let (_, middle, _) = ages.select_nth_unstable(MAX_PEERS / 2);
            let cut = *middle;
            map.retain(|_, (_, at)| *at > cut);
        }
        map.insert(id, (addr, Instant::now()));
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address recorded for the current task.
    fn current(&self) -> Option<SocketAddr> {
        let id = tokio::task::try_id()?;
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|(a, _)| *a)
    }

    /// Forgets the current task's entry (its handshake is over).
    pub fn remove_current(&self) {
        if let Some(id) = tokio::task::try_id() {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
    }
}

/// After a handshake: the client certificate's identity, attached to the connection.
pub struct IdentityCallback {
    pub user_from: UserFrom,
    pub peers: Arc<PeerMap>,
}

#[async_trait]
impl TlsAccept for IdentityCallback {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.peers.remove_current();
        let identity = identity_from_der(tls.peer_certificate_der()?, self.user_from)?;
        Some(Arc::new(identity))
    }
}

/// The listener's verifier: the WebPki verifier of the TLS settings being served (new CAs
/// and CRLs after a reload), with each refusal logged at info level.
///
/// It sends no CA names in its certificate request (`root_hint_subjects` is empty): they
/// would have to outlive a reload. Clients then offer their one configured certificate,
/// which is what docker, containerd and containers/image do anyway.
#[derive(Debug)]
pub struct LiveVerifier {
    source: Arc<dyn TlsSource>,
    /// Fixed for the listener's life: a reload that changes the mode is not served.
    mandatory: bool,
    peers: Arc<PeerMap>,
}

impl LiveVerifier {
    pub fn new(source: Arc<dyn TlsSource>, mandatory: bool, peers: Arc<PeerMap>) -> Self {
        Self {
            source,
            mandatory,
            peers,
        }
    }

    /// The verifier of the served settings. They always have `[tls.client_auth]` while a
    /// listener with this verifier runs; an error (refusing the handshake) if not.
    fn current(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        self.source
            .tls()
            .client_auth
            .as_ref()
            .map(|c| Arc::clone(&c.verifier))
            .ok_or_else(|| rustls::Error::General("client certificates are not configured".into()))
    }
}

impl ClientCertVerifier for LiveVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self
            .current()
            .and_then(|v| v.verify_client_cert(end_entity, intermediates, now));
        if let Err(e) = &result {
            let client = self
                .peers
                .current()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into());
            tracing::info!(client = %client, subject = %subject_of(end_entity), reason = %e, "client certificate refused");
            self.peers.remove_current();
        }
        result
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()?.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()?.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current()
            .map(|v| v.supported_verify_schemes())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::devcerts::{issue, Kind, Spec};
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn identity_fields() {
        let spec = Spec::new("alice", &["alice.example", "10.0.0.1"], Kind::Client, 30);
        let cert = issue(&spec, None).unwrap();
        let der = CertificateDer::from_pem_slice(cert.cert_pem().as_bytes()).unwrap();
        let cn = identity_from_der(&der, UserFrom::Cn).unwrap();
        assert_eq!(cn.user.as_deref(), Some("alice"));
        assert!(cn.subject.contains("CN=alice"));
        assert_eq!(
            identity_from_der(&der, UserFrom::SanDns)
                .unwrap()
                .user
                .as_deref(),
            Some("alice.example")
        );
        assert_eq!(
            identity_from_der(&der, UserFrom::SanUri).unwrap().user,
            None
        );
        assert!(identity_from_der(b"garbage", UserFrom::Cn).is_none());
    }

    /// Connections that never finish their handshake each leave an entry: a flood of them
    /// must not grow the map past its bound, and the newest entries stay.
    #[test]
    fn aborted_handshakes_cannot_grow_the_peer_map_without_bound() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let peers = Arc::new(PeerMap::default());
        runtime.block_on(async {
            for n in 0..(MAX_PEERS * 3) {
                let peers = Arc::clone(&peers);
                let addr = SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 1000));
                tokio::spawn(async move { peers.insert(addr) })
                    .await
                    .unwrap();
            }
            let last = SocketAddr::from(([192, 0, 2, 1], 443));
            let peers_now = Arc::clone(&peers);
            let seen = tokio::spawn(async move {
                peers_now.insert(last);
                peers_now.current()
            })
            .await
            .unwrap();
            assert_eq!(seen, Some(last), "the newest handshake is still known");
        });
        assert!(peers.len() <= MAX_PEERS, "{} entries", peers.len());
        assert!(!peers.is_empty());
    }
}
