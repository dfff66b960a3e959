//! Authentication: who is making this request.
//!
//! Methods: htpasswd Basic auth ([`passwords`]) and client certificates
//! ([`crate::tls::client_auth`]). With both configured, `auth.require` says whether a
//! request must pass both (`all`, the default) or either (`any`).

pub mod acl;
pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod passwords;
pub mod scope;
pub mod throttle;
pub mod token;

use std::net::IpAddr;

use crate::errors::GatewayError;
use crate::tls::client_auth::ClientIdentity;
use basic::parse_basic;
use passwords::{PasswordChecker, Verdict};
use throttle::Throttle;

/// `auth.require`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    All,
    Any,
}

/// How the request's user was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// No authentication is configured (`auth.allow_unauthenticated`).
    None,
    Basic,
    Certificate,
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name for logs and, later, authorization; empty for [`Method::None`].
    pub user: String,
    pub method: Method,
}

/// What a request brings to authentication.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub client_ip: Option<IpAddr>,
    pub authorization: Option<&'a [u8]>,
    /// Present when the connection has a verified client certificate.
    pub certificate: Option<&'a ClientIdentity>,
}

/// Basic auth as configured.
pub struct BasicAuth {
    pub realm: String,
    pub checker: PasswordChecker,
}

/// All configured methods.
pub struct Authenticator {
    pub basic: Option<BasicAuth>,
    /// Whether client certificates identify users.
    pub certificates: bool,
    pub require: Require,
    pub throttle: Throttle,
}

impl Authenticator {
    /// The methods `config` asks for, with fresh cache and throttle state.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let auth = &config.auth;
        let basic = auth.htpasswd.as_ref().map(|h| BasicAuth {
            realm: h.realm.clone(),
            checker: PasswordChecker::new(
                h.path.clone(),
                h.db.clone(),
                cache::CredentialCache::new(auth.cache_ttl, auth.cache_capacity),
                h.workers,
            ),
        });
        Self {
            basic,
            certificates: config.tls.client_auth.is_some(),
            require: auth.require,
            throttle: Throttle::new(auth.throttle_max_failures, auth.throttle_window),
        }
    }

    /// Decides who the request is from, or the answer that refuses it.
    pub async fn authenticate(&self, attempt: Attempt<'_>) -> Result<Principal, GatewayError> {
        let cert_user = if self.certificates {
            attempt.certificate.and_then(|c| c.user.clone())
        } else {
            None
        };
        match (&self.basic, self.certificates) {
            (None, false) => Ok(Principal {
                user: String::new(),
                method: Method::None,
            }),
            (None, true) => cert_principal(cert_user),
            (Some(basic), false) => self.basic(basic, attempt).await,
            (Some(basic), true) => match (self.require, cert_user) {
                (Require::Any, Some(user)) => Ok(Principal {
                    user,
                    method: Method::Certificate,
                }),
                (Require::Any, None) => self.basic(basic, attempt).await,
                (Require::All, None) => cert_principal(None),
                (Require::All, Some(_)) => self.basic(basic, attempt).await,
            },
        }
    }

    /// Basic auth: parse, throttle, cache, bcrypt.
    async fn basic(
        &self,
        basic: &BasicAuth,
        attempt: Attempt<'_>,
    ) -> Result<Principal, GatewayError> {
        let challenge = || GatewayError::Unauthorized {
            realm: basic.realm.clone(),
        };
        let Some(header) = attempt.authorization else {
            return Err(challenge());
        };
        let creds = match parse_basic(header) {
            Ok(creds) => creds,
            Err(why) => {
                tracing::info!(client = %show(attempt.client_ip), reason = %why, "authentication failed");
                self.failed(attempt.client_ip);
                return Err(challenge());
            }
        };
        if !basic.checker.is_cached(&creds) {
            if let Some(retry_after) = attempt
                .client_ip
                .and_then(|ip| self.throttle.blocked_for(ip))
            {
                return Err(GatewayError::TooManyRequests { retry_after });
            }
        }
        match basic.checker.verify(&creds).await {
            Verdict::Valid => {
                if let Some(ip) = attempt.client_ip {
                    self.throttle.record_success(ip);
                }
                Ok(Principal {
                    user: creds.user,
                    method: Method::Basic,
                })
            }
            Verdict::Invalid => {
                tracing::info!(client = %show(attempt.client_ip), user = %creds.user, reason = "wrong user name or password", "authentication failed");
                self.failed(attempt.client_ip);
                Err(challenge())
            }
            Verdict::Busy => Err(GatewayError::Unavailable),
        }
    }

    fn failed(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.throttle.record_failure(ip);
        }
    }
}

/// A certificate user, or the refusal for a certificate without the configured name field.
fn cert_principal(user: Option<String>) -> Result<Principal, GatewayError> {
    match user {
        Some(user) => Ok(Principal {
            user,
            method: Method::Certificate,
        }),
        None => Err(GatewayError::Denied(
            "a client certificate naming the user is required",
        )),
    }
}

fn show(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests;
