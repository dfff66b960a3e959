//! `[tls.acme]`: the server certificate obtained and renewed from an ACME server
//! (RFC 8555) by the gateway itself.
//!
//! [`Acme`] is what the listeners and the admin endpoint read: the certificate being
//! served, the answers to pending challenges, and counts. [`Acme::start`] loads a stored
//! certificate (served at once) and starts the renewal thread, which orders a new one when
//! there is none or when `renew_before` is reached; a new certificate replaces the served
//! one for new handshakes only, so no connection or transfer is cut. An ACME server that
//! cannot be reached never stops the current certificate from being served.

mod challenge;
mod client;
mod order;
mod renewal;
mod schedule;
mod settings;
mod storage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;

pub use settings::{AcmeSettings, ChallengeKind, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};

use super::certs::ServerIdentity;

/// The ALPN protocol of tls-alpn-01 validation handshakes (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The ACME manager's shared state.
#[derive(Debug)]
pub struct Acme {
    pub settings: AcmeSettings,
    current: ArcSwapOption<ServerIdentity>,
    /// tls-alpn-01 answers: the validation certificate for each name being validated.
    alpn_answers: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// http-01 answers: the key authorization for each token.
    http_answers: Mutex<HashMap<String, String>>,
    pub counts: AcmeCounts,
}

/// What `/metrics` reports about ACME.
#[derive(Debug, Default)]
pub struct AcmeCounts {
    /// Certificates obtained since start.
    pub issued: AtomicU64,
    /// Orders that failed since start (each retry counts).
    pub failed: AtomicU64,
    /// Unix time of the next order attempt; 0 while one runs.
    pub next_attempt: AtomicI64,
}

impl Acme {
    /// Prepares the storage folder, serves a stored certificate if there is a usable one,
    /// and starts the renewal thread. Errors (the storage folder cannot be made or read)
    /// stop the start-up.
    ///
    /// `listener` is where the ACME server's validation will connect (the TLS listener for
    /// tls-alpn-01, `http_listen` for http-01): no order is sent before it accepts.
    pub fn start(settings: AcmeSettings, listener: SocketAddr) -> Result<Arc<Acme>, String> {
        let store = storage::Store::open(&settings)?;
        let acme = Arc::new(Acme {
            settings,
            current: ArcSwapOption::empty(),
            alpn_answers: Mutex::default(),
            http_answers: Mutex::default(),
            counts: AcmeCounts::default(),
        });
        match store.load_certificate() {
            Ok(Some(identity)) => {
                tracing::info!(
                    subject = %identity.chain.first().map(|c| c.subject.as_str()).unwrap_or("-"),
                    expires = %identity.chain.first().map(|c| crate::clock::format_time(c.not_after)).unwrap_or_default(),
                    "tls.acme: serving the stored certificate"
                );
                acme.install(identity);
            }
            Ok(None) => tracing::info!(
                "tls.acme: no stored certificate yet; TLS handshakes fail until the first one is issued"
            ),
            Err(e) => tracing::warn!("tls.acme: the stored certificate is not used: {e}; ordering a new one"),
        }
        renewal::spawn(Arc::clone(&acme), store, listener)?;
        Ok(acme)
    }

    /// The certificate being served, if one has been obtained.
    pub fn current(&self) -> Option<Arc<ServerIdentity>> {
        self.current.load_full()
    }

    /// Serves `identity` to new handshakes from now on.
    fn install(&self, identity: ServerIdentity) {
        self.current.store(Some(Arc::new(identity)));
    }

    /// The certificate for a handshake: a tls-alpn-01 validation certificate when the
    /// client offers only for `acme-tls/1` validation (RFC 8737 §3), else the served one.
    /// `None` fails the handshake with an alert.
    pub fn resolve(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validation = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        if validation {
            let name = hello.server_name()?.to_ascii_lowercase();
            let answers = self.alpn_answers.lock().unwrap_or_else(|e| e.into_inner());
            return answers.get(&name).cloned();
        }
        self.current().map(|c| Arc::clone(&c.certified_key))
    }

    /// The http-01 answer for `token`, while its validation is pending.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        let answers = self.http_answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.get(token).cloned()
    }

    /// Whether validation handshakes come to the TLS listener (ALPN `acme-tls/1` offered).
    pub fn answers_on_tls(&self) -> bool {
        self.settings.challenge == ChallengeKind::TlsAlpn01
    }

    /// `portcullis_acme_*`: orders by outcome and when the next one is due.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        crate::stats::render_counter(
            out,
            "portcullis_acme_orders_total",
            "ACME orders since start, by outcome (every failed retry counts).",
            &[
                (
                    "outcome=\"issued\"".into(),
                    self.counts.issued.load(Relaxed),
                ),
                (
                    "outcome=\"failed\"".into(),
                    self.counts.failed.load(Relaxed),
                ),
            ],
        );
        let next = self.counts.next_attempt.load(Relaxed);
        let due = if next == 0 {
            0
        } else {
            (next - crate::clock::unix_now()).max(0)
        };
        let _ = writeln!(
            out,
            "# HELP portcullis_acme_next_order_seconds Seconds until the next ACME order (0: one is running or due).\n# TYPE portcullis_acme_next_order_seconds gauge\nportcullis_acme_next_order_seconds {due}"
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_acme_certificate Whether an ACME certificate is being served.\n# TYPE portcullis_acme_certificate gauge\nportcullis_acme_certificate {}",
            u8::from(self.current().is_some())
        );
    }
}
