//! Authentication: who is making this request.
//!
//! Methods: Basic auth with htpasswd passwords ([`passwords`]) or robot secrets
//! ([`robots`], user `robot$NAME`), and client certificates ([`crate::tls::client_auth`]).
//! With Basic auth and certificates both configured, `auth.require` says whether a request
//! must pass both (`all`, the default) or either (`any`).

pub mod acl;
pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod jwt_crypto;
pub mod passwords;
pub mod robots;
pub mod settings;
pub mod throttle;
pub mod token;
pub mod token_endpoint;
pub mod watched;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::tls::client_auth::ClientIdentity;
use basic::parse_basic;
use passwords::{PasswordChecker, Verdict};
use robots::{robot_of_user, RobotVerdict, RobotsDb};
use throttle::{Guess, Reservation, Throttle};
use watched::WatchedFile;

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
    /// A robot account's secret (Basic auth as `robot$NAME`).
    Robot,
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
            AuthMethod::Robot => "robot",
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

    /// Robot `name`.
    pub fn robot(name: &str) -> Self {
        Principal {
            user: format!("{}{name}", robots::USER_PREFIX),
            method: AuthMethod::Robot,
        }
    }

    /// The ACL's view of this principal.
    pub fn subject(&self, ip: Option<IpAddr>) -> acl::Subject<'_> {
        let kind = match self.method {
            AuthMethod::Certificate => acl::Kind::Certificate,
            AuthMethod::Robot => acl::Kind::Robot(robot_of_user(&self.user).unwrap_or_default()),
            _ => acl::Kind::User,
        };
        acl::Subject {
            user: Some(self.user.as_str()).filter(|u| !u.is_empty()),
            kind,
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
    /// htpasswd users.
    pub basic: Option<BasicAuth>,
    /// Robot accounts.
    pub robots: Option<WatchedFile<RobotsDb>>,
    /// The per-process key of robot [`Guess`] fingerprints.
    guess_key: RandomState,
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
        let robots = auth.robots.as_ref().map(|r| {
            let parse = |text: &str| RobotsDb::parse(text).map_err(|e| e.join("; "));
            WatchedFile::new(r.path.clone(), "robots file", r.db.clone(), parse)
        });
        Self {
            basic,
            robots,
            guess_key: RandomState::new(),
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
        match (self.accepts_basic(), self.certificates) {
            (false, false) => Ok(Principal {
                user: String::new(),
                method: AuthMethod::None,
            }),
            (false, true) => cert_principal(cert_user),
            (true, false) => self.basic(attempt).await,
            (true, true) => match (self.require, cert_user) {
                (Require::Any, Some(user)) => Ok(Principal {
                    user,
                    method: AuthMethod::Certificate,
                }),
                (Require::Any, None) => self.basic(attempt).await,
                (Require::All, None) => cert_principal(None),
                (Require::All, Some(_)) => self.basic(attempt).await,
            },
        }
    }

    /// Whether Basic credentials are checked at all (htpasswd users or robots).
    pub fn accepts_basic(&self) -> bool {
        self.basic.is_some() || self.robots.is_some()
    }

    /// Basic auth from the `Authorization` header; no header is an anonymous principal.
    async fn basic(&self, attempt: Attempt<'_>) -> Result<Principal, Failure> {
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
        self.check_credentials(&creds, attempt.client_ip).await
    }

    /// Checks a user name and password (from a Basic header or the token endpoint's
    /// password grant), with throttling. `None` when Basic auth is not configured.
    pub async fn password(
        &self,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Option<Result<Principal, Failure>> {
        match self.accepts_basic() {
            true => Some(self.check_credentials(creds, ip).await),
            false => None,
        }
    }

    /// A robot's secret for `robot$NAME`, else an htpasswd password.
    async fn check_credentials(
        &self,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Result<Principal, Failure> {
        if let (Some(robots), Some(name)) = (&self.robots, robot_of_user(&creds.user)) {
            return self.check_robot(robots, name, creds, ip).await;
        }
        match &self.basic {
            Some(basic) => self.check_password(basic, creds, ip).await,
            None => {
                tracing::info!(client = %show(ip), user = %creds.user, reason = "not a robot, and no htpasswd users are configured", "authentication failed");
                self.failed(ip);
                Err(Failure::BadCredentials)
            }
        }
    }

    /// Robot `name`'s secret, throttled like a password (a check is cheap, but guessing
    /// must stay slow). An expired robot is refused like a wrong secret; the log says why.
    async fn check_robot(
        &self,
        robots: &WatchedFile<RobotsDb>,
        name: &str,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Result<Principal, Failure> {
        let guess = Guess(self.guess_key.hash_one((&creds.user, &creds.password)));
        let reservation = self.admit(ip, guess, &creds.user).await?;
        let reason = match robots.current().verify(name, &creds.password, clock_now()) {
            RobotVerdict::Valid => {
                reservation.succeeded();
                return Ok(Principal::robot(name));
            }
            RobotVerdict::Invalid => "unknown robot or wrong secret".to_string(),
            RobotVerdict::Expired(at) => {
                format!("robot expired at {}", crate::clock::format_time(at))
            }
        };
        tracing::info!(client = %show(ip), user = %creds.user, reason = %reason, "authentication failed");
        reservation.failed(guess);
        Err(Failure::BadCredentials)
    }

    /// Whether robot `name` exists and has not expired (a refresh token's re-check).
    pub fn robot_is_active(&self, name: &str) -> bool {
        self.robots
            .as_ref()
            .is_some_and(|r| r.current().is_active(name, clock_now()))
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

fn clock_now() -> i64 {
    crate::clock::unix_now()
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
