//! Authentication: who is making this request.
//!
//! Methods: htpasswd Basic auth ([`passwords`]) and client certificates
//! ([`crate::tls::client_auth`]). With both configured, `auth.require` says whether a
//! request must pass both (`all`, the default) or either (`any`).

pub mod acl;
pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod jwt_crypto;
pub mod passwords;
pub mod settings;
pub mod throttle;
pub mod token;
pub mod token_endpoint;

use std::net::IpAddr;

use crate::tls::client_auth::ClientIdentity;
use basic::parse_basic;
use passwords::{PasswordChecker, Verdict};
use throttle::{Guess, Reservation, Throttle};

/// `auth.require`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    #[default]
    All,
    Any,
}

/// How the request's user was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication is configured (`auth.allow_unauthenticated`).
    None,
    /// Methods are configured but the request brought no credentials.
    Anonymous,
    Basic,
    Certificate,
    /// A Bearer token; what it allows is in its grant, not in the ACL.
    Token,
}

impl AuthMethod {
    /// Its name in metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Basic => "basic",
            AuthMethod::Certificate => "certificate",
            AuthMethod::Token => "token",
        }
    }
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name for logs and authorization; empty for [`AuthMethod::None`] and
    /// [`AuthMethod::Anonymous`].
    pub user: String,
    pub method: AuthMethod,
}

impl Principal {
    /// Nobody in particular.
    pub fn anonymous() -> Self {
        Principal {
            user: String::new(),
            method: AuthMethod::Anonymous,
        }
    }

    /// The ACL's view of this principal.
    pub fn subject(&self, ip: Option<IpAddr>) -> acl::Subject<'_> {
        acl::Subject {
            user: Some(self.user.as_str()).filter(|u| !u.is_empty()),
            via_certificate: self.method == AuthMethod::Certificate,
            ip,
        }
    }
}

/// Why authentication failed; the caller turns it into the right challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Wrong, unknown or malformed credentials.
    BadCredentials,
    /// Too many failures from this address.
    Throttled { retry_after: u64 },
    /// A verified client certificate without the configured name field.
    NamelessCertificate,
    /// The password checker is overloaded.
    Busy,
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
    /// The methods `auth` asks for (client certificates when `certificates`), with fresh
    /// cache and throttle state.
    pub fn new(auth: &settings::AuthConfig, certificates: bool) -> Self {
        let basic = auth.htpasswd.as_ref().map(|h| BasicAuth {
            checker: PasswordChecker::new(
                h.path.clone(),
                h.db.clone(),
                cache::CredentialCache::new(auth.cache_ttl, auth.cache_capacity),
                h.workers,
            ),
        });
        Self {
            basic,
            certificates,
            require: auth.require,
            throttle: Throttle::new(auth.throttle_max_failures, auth.throttle_window),
        }
    }

    /// Decides who the request is from, or the answer that refuses it.
    pub async fn authenticate(&self, attempt: Attempt<'_>) -> Result<Principal, Failure> {
        let cert_user = if self.certificates {
            attempt.certificate.and_then(|c| c.user.clone())
        } else {
            None
        };
        match (&self.basic, self.certificates) {
            (None, false) => Ok(Principal {
                user: String::new(),
                method: AuthMethod::None,
            }),
            (None, true) => cert_principal(cert_user),
            (Some(basic), false) => self.basic(basic, attempt).await,
            (Some(basic), true) => match (self.require, cert_user) {
                (Require::Any, Some(user)) => Ok(Principal {
                    user,
                    method: AuthMethod::Certificate,
                }),
                (Require::Any, None) => self.basic(basic, attempt).await,
                (Require::All, None) => cert_principal(None),
                (Require::All, Some(_)) => self.basic(basic, attempt).await,
            },
        }
    }

    /// Basic auth: parse, throttle, cache, bcrypt.
    /// Basic auth from the `Authorization` header; no header is an anonymous principal.
    async fn basic(&self, basic: &BasicAuth, attempt: Attempt<'_>) -> Result<Principal, Failure> {
        let Some(header) = attempt.authorization else {
            return Ok(Principal::anonymous());
        };
        let creds = match parse_basic(header) {
            Ok(creds) => creds,
            Err(basic::BasicError::Anonymous) => return Ok(Principal::anonymous()),
            Err(why) => {
                tracing::info!(client = %show(attempt.client_ip), reason = %why, "authentication failed");
                self.failed(attempt.client_ip);
                return Err(Failure::BadCredentials);
            }
        };
        self.check_password(basic, &creds, attempt.client_ip).await
    }

    /// Checks a user name and password (from a Basic header or the token endpoint's
    /// password grant), with throttling. `None` when Basic auth is not configured.
    pub async fn password(
        &self,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Option<Result<Principal, Failure>> {
        let basic = self.basic.as_ref()?;
        Some(self.check_password(basic, creds, ip).await)
    }

    /// Whether `user` is (still) in the htpasswd file.
    pub fn knows_user(&self, user: &str) -> bool {
        self.basic
            .as_ref()
            .is_some_and(|b| b.checker.has_user(user))
    }

    async fn check_password(
        &self,
        basic: &BasicAuth,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Result<Principal, Failure> {
        let cached = basic.checker.is_cached(creds);
        let guess = basic.checker.guess(creds);
        let reservation = match cached {
            true => None,
            false => Some(self.admit(ip, guess, &creds.user).await?),
        };
        match basic.checker.verify(creds).await {
            Verdict::Valid => {
                if let Some(reservation) = reservation {
                    reservation.succeeded();
                }
                Ok(Principal {
                    user: creds.user.clone(),
                    method: AuthMethod::Basic,
                })
            }
            Verdict::Invalid => {
                tracing::info!(client = %show(ip), user = %creds.user, reason = "wrong user name or password", "authentication failed");
                match reservation {
                    Some(reservation) => reservation.failed(guess),
                    None => self.failed(ip),
                }
                Err(Failure::BadCredentials)
            }
            Verdict::Busy => Err(Failure::Busy),
        }
    }

    /// The throttle's leave to check `guess` from `ip`, or the refusal: the address is
    /// blocked, or these very credentials failed in its window already.
    async fn admit(
        &self,
        ip: Option<IpAddr>,
        guess: Guess,
        user: &str,
    ) -> Result<Reservation<'_>, Failure> {
        if let Some(retry_after) = ip.and_then(|ip| self.throttle.blocked_for(ip)) {
            return Err(Failure::Throttled { retry_after });
        }
        if self.throttle.already_refused(ip, guess) {
            tracing::info!(client = %show(ip), user = %user, reason = "refused credentials sent again (not counted)", "authentication failed");
            return Err(Failure::BadCredentials);
        }
        self.throttle
            .reserve(ip)
            .await
            .map_err(|retry_after| Failure::Throttled { retry_after })
    }

    fn failed(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.throttle.record_failure(ip);
        }
    }
}

/// A certificate user, or the refusal for a certificate without the configured name field.
fn cert_principal(user: Option<String>) -> Result<Principal, Failure> {
    match user {
        Some(user) => Ok(Principal {
            user,
            method: AuthMethod::Certificate,
        }),
        None => Err(Failure::NamelessCertificate),
    }
}

/// A client address for log lines, `-` when unknown.
pub(crate) fn show(ip: Option<IpAddr>) -> String {
    crate::clock::or_dash(ip)
}

#[cfg(test)]
mod tests;
