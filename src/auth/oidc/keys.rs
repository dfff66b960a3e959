//! One issuer's signing keys (its JWKS), fetched over HTTPS, cached and refreshed.
//!
//! When: at start-up in the background (a failure does not stop the gateway), when the
//! keys are older than `jwks_refresh` (in the background: requests go on with the keys in
//! hand), and when a token names an unknown `kid` (the request waits for that one fetch).
//! Fetches are at least `jwks_min_refresh` apart whatever triggers them, so tokens with
//! made-up `kid`s cannot make the gateway hammer the issuer. A failed fetch keeps the last
//! good keys, is logged, and is counted (`portcullis_oidc_jwks_fetches{outcome="error"}`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::auth::token::{trusted_keys_from_jwks, TrustedKey};

/// Largest discovery or JWKS document read.
const MAX_DOCUMENT: u64 = 1024 * 1024;
/// Longest a fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `jwks_file`: read once at start-up.
    File,
    /// `jwks_url`, or the `jwks_uri` of the issuer's discovery document when `None`.
    Remote {
        jwks_url: Option<String>,
        /// Extra CA certificates (DER) trusted for these fetches, besides the system's.
        extra_roots: Vec<Vec<u8>>,
    },
}

/// Fetch counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct FetchCounts {
    pub ok: AtomicU64,
    pub error: AtomicU64,
}

/// The keys of one issuer.
pub struct KeyStore {
    issuer: String,
    name: String,
    source: KeySource,
    refresh_every: Duration,
    min_gap: Duration,
    keys: RwLock<Arc<Vec<TrustedKey>>>,
    /// When the last fetch started (successful or not), and when one last succeeded.
    last_attempt: Mutex<Option<Instant>>,
    last_success: Mutex<Option<Instant>>,
    /// One fetch at a time; waiters re-check after it.
    fetching: tokio::sync::Mutex<()>,
    /// The HTTPS client; `Err` says why there is none (then every fetch fails with it).
    agent: Option<Result<ureq::Agent, String>>,
    pub counts: FetchCounts,
}

impl KeyStore {
    /// A store for issuer `name` (`issuer` URL), starting with `initial` keys (those of a
    /// `jwks_file`; none for a remote source until the first fetch).
    pub fn new(
        name: &str,
        issuer: &str,
        source: KeySource,
        initial: Vec<TrustedKey>,
        refresh_every: Duration,
        min_gap: Duration,
    ) -> KeyStore {
        let agent = match &source {
            KeySource::File => None,
            KeySource::Remote { extra_roots, .. } => Some(agent(extra_roots)),
        };
        KeyStore {
            issuer: issuer.trim_end_matches('/').to_string(),
            name: name.to_string(),
            source,
            refresh_every,
            min_gap,
            keys: RwLock::new(Arc::new(initial)),
            last_attempt: Mutex::new(None),
            last_success: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            agent,
            counts: FetchCounts::default(),
        }
    }

    /// The keys in hand.
    pub fn keys(&self) -> Arc<Vec<TrustedKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the keys are older than `jwks_refresh` (or were never fetched).
    pub fn stale(&self) -> bool {
        self.agent.is_some()
            && lock(&self.last_success).is_none_or(|at| at.elapsed() >= self.refresh_every)
    }

    /// Fetches the keys now unless a fetch started less than `jwks_min_refresh` ago;
    /// whether the keys in hand are new. `why` is for the log.
    pub async fn refresh(self: &Arc<Self>, why: &'static str) -> bool {
        if self.agent.is_none() || !self.gap_passed() {
            return false;
        }
        let _one = self.fetching.lock().await;
        if !self.gap_passed() {
            return false;
        }
        *lock(&self.last_attempt) = Some(Instant::now());
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.fetch_and_install(why))
            .await
            .unwrap_or(false)
    }

    /// A first fetch on a thread of its own, so start-up neither waits nor fails.
    pub fn prefetch(self: &Arc<Self>) {
        if self.agent.is_none() {
            return;
        }
        *lock(&self.last_attempt) = Some(Instant::now());
        let store = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("oidc-keys".into())
            .spawn(move || store.fetch_and_install("start-up"));
        if let Err(e) = spawned {
            tracing::warn!(issuer = %self.name, "cannot start the key fetch: {e}");
        }
    }

    fn gap_passed(&self) -> bool {
        lock(&self.last_attempt).is_none_or(|at| at.elapsed() >= self.min_gap)
    }

    /// Blocking: fetches, and installs the keys when the document is good.
    fn fetch_and_install(&self, why: &'static str) -> bool {
        match self.fetch() {
            Ok(keys) => {
                tracing::info!(issuer = %self.name, keys = keys.len(), reason = why, "OIDC signing keys fetched");
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                *lock(&self.last_success) = Some(Instant::now());
                self.counts.ok.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(issuer = %self.name, reason = why, "OIDC signing keys not fetched; keeping the {} in hand: {e}", self.keys().len());
                self.counts.error.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn fetch(&self) -> Result<Vec<TrustedKey>, String> {
        let (Some(agent), KeySource::Remote { jwks_url, .. }) = (&self.agent, &self.source) else {
            return Err("keys come from a file".into());
        };
        let agent = agent.as_ref().map_err(Clone::clone)?;
        let url = match jwks_url {
            Some(url) => url.clone(),
            None => self.discover(agent)?,
        };
        let text = get(agent, &url)?;
        usable_keys(&self.issuer, &text).map_err(|e| format!("{url}: {e}"))
    }

    /// The `jwks_uri` of the discovery document, whose `issuer` must be the configured one.
    fn discover(&self, agent: &ureq::Agent) -> Result<String, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let document: serde_json::Value = serde_json::from_str(&get(agent, &url)?)
            .map_err(|e| format!("{url}: not JSON: {e}"))?;
        let issuer = document.get("issuer").and_then(|v| v.as_str());
        if issuer.map(|i| i.trim_end_matches('/')) != Some(self.issuer.as_str()) {
            return Err(format!(
                "{url}: names issuer {issuer:?}, not {}",
                self.issuer
            ));
        }
        document
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{url}: no jwks_uri"))
    }

    /// The issuer name, for labels.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// GET `url` over HTTPS; the body, at most [`MAX_DOCUMENT`] bytes.
fn get(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    let mut response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}

/// An HTTPS-only client trusting the system's CAs and `extra_roots`.
fn agent(extra_roots: &[Vec<u8>]) -> Result<ureq::Agent, String> {
    crate::tls::http_client::agent(extra_roots, FETCH_TIMEOUT, true, true)
}

/// The signing keys of a JWKS document that Portcullis can use (RSA, and EC on P-256, for
/// RS256 and ES256); others (encryption keys, other curves and algorithms) are skipped.
/// An error when it is not a JWKS document or holds no usable key.
pub fn usable_keys(issuer: &str, text: &str) -> Result<Vec<TrustedKey>, String> {
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let entries = document
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("not a JWKS document (no \"keys\" array)")?;
    let usable = entries.iter().filter(|k| {
        let field = |name: &str| k.get(name).and_then(|v| v.as_str());
        let signing = field("use").is_none_or(|u| u == "sig");
        let algorithm = matches!(
            (field("kty"), field("alg"), field("crv")),
            (Some("RSA"), None | Some("RS256"), _)
                | (Some("EC"), None | Some("ES256"), Some("P-256"))
        );
        signing && algorithm
    });
    let keys: Vec<TrustedKey> = usable
        .filter_map(|k| {
            let set = serde_json::json!({ "keys": [k] }).to_string();
            trusted_keys_from_jwks(issuer, &set).ok()
        })
        .flatten()
        .collect();
    if keys.is_empty() {
        return Err("no RS256 or ES256 (P-256) signing key in the key set".into());
    }
    Ok(keys)
}
