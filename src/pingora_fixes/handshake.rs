//! TLS handshakes of the public listeners, run here instead of in pingora's listener.
//!
//! pingora 0.9.1 (`listeners/tls/rustls/mod.rs`, `TlsSettings::set_alpn`) takes the ALPN
//! list from one `ALPN` value (http/1.1, h2 + http/1.1, or a single custom protocol), so
//! the list tls-alpn-01 needs (h2, http/1.1 and `acme-tls/1`) cannot be given; and it
//! reports a failed handshake only as a log line. So the listeners are plain TCP and each
//! new connection is handshaken here by pingora's own acceptor (with its client-certificate
//! callback) holding our rustls configuration ([`crate::tls::server_config`]). A fix
//! upstream: `TlsSettings::set_alpn_protocols(Vec<Vec<u8>>)` and a handshake-failure hook.

use std::sync::Arc;
use std::time::Duration;

use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{Ssl, Stream, ALPN};

use crate::tls::client_auth::PeerMap;
use crate::tls::LiveTls;

/// What pingora allows a handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The acceptor of one service's listeners.
pub struct Handshake {
    acceptor: Acceptor,
    /// With client certificates: where the verifier finds the client's address.
    peers: Option<Arc<PeerMap>>,
}

impl Handshake {
    pub fn new(live: &LiveTls) -> Result<Self, String> {
        Ok(Self {
            acceptor: crate::tls::acceptor(live).map_err(|e| format!("tls: {e}"))?,
            peers: live.client.as_ref().map(|_| Arc::clone(&live.peers)),
        })
    }

    /// The TLS stream over a new TCP connection; `None` when the handshake failed (logged
    /// and counted) or was an ACME validation, which ends with the handshake.
    pub async fn accept(&self, stream: Stream) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        let client = crate::clock::or_dash(peer);
        let Ok(tcp) = stream.into_any().downcast::<L4Stream>() else {
            tracing::error!("a listener handed over a connection that is not TCP; closed");
            return None;
        };
        if let (Some(peers), Some(addr)) = (&self.peers, peer) {
            peers.insert(addr);
        }
        let outcome =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.tls_handshake(*tcp)).await;
        if let Some(peers) = &self.peers {
            peers.remove_current();
        }
        let failure = match outcome {
            Ok(Ok(tls)) => {
                if matches!(tls.selected_alpn_proto(), Some(ALPN::Custom(_))) {
                    tracing::info!(client = %client, "tls.acme: validation handshake answered");
                    return None;
                }
                return Some(Box::new(tls));
            }
            Ok(Err(e)) => {
                let text = e.to_string();
                tracing::info!("TLS handshake error from {client}: {text}");
                failure_reason(&text)
            }
            Err(_) => {
                tracing::info!("TLS handshake timeout from {client}");
                "timeout"
            }
        };
        if let Some(metrics) = crate::telemetry::metrics::global() {
            metrics.handshake_failure(failure);
        }
        None
    }
}

/// The `reason` label of a failed handshake, from its error text.
pub fn failure_reason(error: &str) -> &'static str {
    const REASONS: [(&str, &str); 11] = [
        ("peer sent no certificates", "no_client_certificate"),
        ("expired", "expired"),
        ("NotValidYet", "not_yet_valid"),
        ("not valid before", "not_yet_valid"),
        ("UnknownIssuer", "unknown_issuer"),
        ("Revoked", "revoked"),
        ("BadSignature", "bad_signature"),
        ("ProtocolVersion", "protocol_version"),
        ("NoCipherSuitesInCommon", "no_shared_cipher"),
        ("NoApplicationProtocol", "no_shared_alpn"),
        ("handshake eof", "eof"),
    ];
    REASONS
        .iter()
        .find(|(needle, _)| error.contains(needle))
        .map_or("other", |(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::failure_reason as reason;

    #[test]
    fn classifies_handshake_errors() {
        let line =
            |rest: &str| format!(" TLSHandshakeFailure context: TLS accept() failed: {rest}");
        assert_eq!(
            reason(&line("peer sent no certificates")),
            "no_client_certificate"
        );
        assert_eq!(
            reason(&line(
                "invalid peer certificate: certificate expired: verification time 1"
            )),
            "expired"
        );
        assert_eq!(
            reason(&line("invalid peer certificate: UnknownIssuer")),
            "unknown_issuer"
        );
        assert_eq!(
            reason(&line("invalid peer certificate: Revoked")),
            "revoked"
        );
        assert_eq!(reason(&line("tls handshake eof")), "eof");
        assert_eq!(
            reason(&line("received corrupt message of type InvalidContentType")),
            "other"
        );
    }
}
