//! Workload identity (OIDC federation): tokens that CI systems and Kubernetes mint for a
//! job or a pod, accepted in place of a password.
//!
//! Each `[[auth.oidc]]` names one trusted issuer. A token is routed to the issuer whose
//! `issuer` equals its (unverified) `iss`, then verified with that issuer's keys only
//! ([`verify`]); when the client named an issuer (Basic user `github`), the token must be
//! that issuer's. The principal is `NAME:SUB` and carries the token's string claims, which
//! `[[acl.rules]] oidc = {...}` match; OIDC principals match no other kind of rule.

pub mod keys;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use keys::{KeySource, KeyStore};
use verify::{claimed_issuer, Refusal};

/// The Basic user name that means "an OIDC token, from whichever issuer it names".
pub const ANY_ISSUER_USER: &str = "oidc";

/// `[[auth.oidc]]`, checked.
#[derive(Debug, Clone)]
pub struct OidcIssuerSettings {
    /// Used in rules, logs and principals.
    pub name: String,
    /// `iss`, exactly.
    pub issuer: String,
    /// Must be in `aud`.
    pub audience: String,
    pub source: KeySource,
    /// The keys of `jwks_file`.
    pub file_keys: Vec<crate::auth::token::TrustedKey>,
    pub algorithms: Vec<Algorithm>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: u64,
    /// Longest `exp - iat` accepted, in seconds.
    pub max_lifetime: u64,
    pub jwks_refresh: Duration,
    pub jwks_min_refresh: Duration,
}

/// Who an OIDC token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The `[[auth.oidc]] name`.
    pub issuer: String,
    pub subject: String,
    /// String claims, nested ones as `a.b` ([`verify::flatten`]).
    pub claims: BTreeMap<String, String>,
}

impl OidcIdentity {
    /// The user name in logs: `NAME:SUB`.
    pub fn user(&self) -> String {
        format!("{}:{}", self.issuer, self.subject)
    }
}

/// One trusted issuer and its keys.
pub struct Issuer {
    pub settings: OidcIssuerSettings,
    pub keys: Arc<KeyStore>,
}

/// All trusted issuers.
pub struct Oidc {
    pub issuers: Vec<Issuer>,
}

impl Oidc {
    /// The issuers of `settings`, keys not fetched yet (see [`Oidc::prefetch`]).
    pub fn new(settings: &[OidcIssuerSettings]) -> Oidc {
        let issuers = settings
            .iter()
            .map(|s| Issuer {
                settings: s.clone(),
                keys: Arc::new(KeyStore::new(
                    &s.name,
                    &s.issuer,
                    s.source.clone(),
                    s.file_keys.clone(),
                    s.jwks_refresh,
                    s.jwks_min_refresh,
                )),
            })
            .collect();
        Oidc { issuers }
    }

    /// Starts the first key fetch of every remote issuer, in the background.
    pub fn prefetch(&self) {
        for issuer in &self.issuers {
            issuer.keys.prefetch();
        }
    }

    /// Whether Basic user `user` presents an OIDC token: `oidc` or an issuer's name.
    pub fn is_oidc_user(&self, user: &str) -> bool {
        user == ANY_ISSUER_USER || self.issuers.iter().any(|i| i.settings.name == user)
    }

    /// Verifies `token`; `named` is the issuer the client named (a Basic user other than
    /// `oidc`), which the token must come from. The error is for the log.
    pub async fn verify(&self, token: &str, named: Option<&str>) -> Result<OidcIdentity, String> {
        let claimed = claimed_issuer(token).ok_or("not a JWT with an iss claim")?;
        let claimed = claimed.trim_end_matches('/');
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.settings.issuer.trim_end_matches('/') == claimed)
            .ok_or_else(|| format!("issuer {claimed:?} is not trusted"))?;
        if let Some(named) = named.filter(|n| *n != ANY_ISSUER_USER) {
            if named != issuer.settings.name {
                return Err(format!(
                    "a token of issuer {} presented as issuer {named}",
                    issuer.settings.name
                ));
            }
        }
        let store = &issuer.keys;
        if store.keys().is_empty() {
            store.refresh("no keys yet").await;
        } else if store.stale() {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.refresh("keys older than jwks_refresh").await });
        }
        let now = crate::auth::token::now();
        match verify::verify(token, &issuer.settings, &store.keys(), now) {
            Err(Refusal::UnknownKey) => {
                if store.refresh("a token names an unknown key id").await {
                    verify::verify(token, &issuer.settings, &store.keys(), now)
                } else {
                    Err(Refusal::UnknownKey)
                }
            }
            other => other,
        }
        .map_err(|e| format!("issuer {}: {e}", issuer.settings.name))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
