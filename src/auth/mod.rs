//! Authentication: who is making this request.
//!
//! Methods: Basic auth with htpasswd passwords ([`passwords`]), robot secrets ([`robots`],
//! user `robot$NAME`) or OIDC workload tokens as the password ([`oidc`], user `oidc` or an
//! issuer's name), and client certificates ([`crate::tls::client_auth`]).
//! With Basic auth and certificates both configured, `auth.require` says whether a request
//! must pass both (`all`, the default) or either (`any`).

pub mod acl;
pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod jwt_crypto;
pub mod oidc;
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
use std::sync::Arc;

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
    /// A workload identity token from a trusted OIDC issuer.
    Oidc,
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
            AuthMethod::Oidc => "oidc",
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
    /// For [`AuthMethod::Oidc`]: the issuer, subject and claims.
    pub oidc: Option<Arc<oidc::OidcIdentity>>,
}

impl Principal {
    /// Nobody in particular.
    pub fn anonymous() -> Self {
        Principal::new(String::new(), AuthMethod::Anonymous)
    }

    /// `user`, authenticated by `method` (not OIDC).
    pub fn new(user: String, method: AuthMethod) -> Self {
        Principal {
            user,
            method,
            oidc: None,
        }
    }

    /// Robot `name`.
    pub fn robot(name: &str) -> Self {
        Principal::new(format!("{}{name}", robots::USER_PREFIX), AuthMethod::Robot)
    }

    /// The holder of a verified OIDC token.
    pub fn oidc(identity: oidc::OidcIdentity) -> Self {
        Principal {
            user: identity.user(),
            method: AuthMethod::Oidc,
            oidc: Some(Arc::new(identity)),
        }
    }

    /// The ACL's view of this principal.
    pub fn subject(&self, ip: Option<IpAddr>) -> acl::Subject<'_> {
        let kind = match (self.method, &self.oidc) {
            (AuthMethod::Certificate, _) => acl::Kind::Certificate,
            (AuthMethod::Robot, _) => {
                acl::Kind::Robot(robot_of_user(&self.user).unwrap_or_default())
            }
            (AuthMethod::Oidc, Some(identity)) => acl::Kind::Oidc(identity),
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
    /// Trusted OIDC issuers.
    pub oidc: Option<oidc::Oidc>,
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
        let oidc = (!auth.oidc.is_empty()).then(|| oidc::Oidc::new(&auth.oidc));
        Self {
            basic,
            robots,
            oidc,
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
            (false, false) => Ok(Principal::new(String::new(), AuthMethod::None)),
            (false, true) => cert_principal(cert_user),
            (true, false) => self.basic(attempt).await,
            (true, true) => match (self.require, cert_user) {
                (Require::Any, Some(user)) => Ok(Principal::new(user, AuthMethod::Certificate)),
                (Require::Any, None) => self.basic(attempt).await,
                (Require::All, None) => cert_principal(None),
                (Require::All, Some(_)) => self.basic(attempt).await,
            },
        }
    }

    /// Whether Basic credentials are checked at all (htpasswd users, robots, OIDC tokens).
    pub fn accepts_basic(&self) -> bool {
        self.basic.is_some() || self.robots.is_some() || self.oidc.is_some()
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
        if let Some(oidc) = self.oidc.as_ref().filter(|o| o.is_oidc_user(&creds.user)) {
            return self
                .check_oidc(oidc, &creds.password, Some(&creds.user), ip)
                .await;
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

    /// An OIDC token presented as a Bearer at the token endpoint. `None` when no issuer is
    /// configured.
    pub async fn oidc_bearer(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Option<Result<Principal, Failure>> {
        let oidc = self.oidc.as_ref()?;
        Some(self.check_oidc(oidc, token, None, ip).await)
    }

    /// An OIDC token, throttled like a password; `named` is the Basic user (`oidc` or an
    /// issuer's name).
    async fn check_oidc(
        &self,
        oidc: &oidc::Oidc,
        token: &str,
        named: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Principal, Failure> {
        let guess = Guess(self.guess_key.hash_one(("oidc", token)));
        let user = named.unwrap_or(oidc::ANY_ISSUER_USER);
        let reservation = self.admit(ip, guess, user).await?;
        match oidc.verify(token, named).await {
            Ok(identity) => {
                reservation.succeeded();
                Ok(Principal::oidc(identity))
            }
            Err(reason) => {
                tracing::info!(client = %show(ip), user = %user, reason = %reason, "authentication failed");
                reservation.failed(guess);
                Err(Failure::BadCredentials)
            }
        }
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
                Ok(Principal::new(creds.user.clone(), AuthMethod::Basic))
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
        Some(user) => Ok(Principal::new(user, AuthMethod::Certificate)),
        None => Err(Failure::NamelessCertificate),
    }
}

/// A client address for log lines, `-` when unknown.
pub(crate) fn show(ip: Option<IpAddr>) -> String {
    crate::clock::or_dash(ip)
}

#[cfg(test)]
mod tests;
