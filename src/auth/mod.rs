//! Authentication: who is making this request.
//!
//! Methods: Basic auth with htpasswd passwords ([`passwords`]), directory passwords
//! ([`ldap`], for names not in the htpasswd file), robot secrets ([`robots`], user
//! `robot$NAME`) or OIDC workload tokens as the password ([`oidc`], user `oidc` or an
//! issuer's name), and client certificates ([`crate::tls::client_auth`]). The checks
//! themselves are in [`methods`].
//! With Basic auth and certificates both configured, `auth.require` says whether a request
//! must pass both (`all`, the default) or either (`any`).

pub mod acl;
pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod immutable;
pub mod jwt_crypto;
pub mod ldap;
pub mod limits;
mod methods;
pub mod oidc;
pub mod passwords;
pub mod robots;
pub mod settings;
pub mod throttle;
pub mod token;
pub mod token_endpoint;
pub mod watched;

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::sync::Arc;

use crate::tls::client_auth::ClientIdentity;
use basic::parse_basic;
use passwords::PasswordChecker;
use robots::{robot_of_user, RobotsDb};
use throttle::Throttle;
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
    /// A password checked by the LDAP directory.
    Ldap,
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
            AuthMethod::Ldap => "ldap",
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
    /// For [`AuthMethod::Ldap`]: the user's directory groups (`ldap:NAME` in rules).
    pub groups: Arc<[String]>,
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
            groups: Arc::new([]),
        }
    }

    /// A directory user, by the directory's spelling of their name.
    pub fn ldap(found: &ldap::LdapUser) -> Self {
        Principal {
            groups: found.groups.clone().into(),
            ..Principal::new(found.name.clone(), AuthMethod::Ldap)
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
            groups: Arc::new([]),
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
            directory_groups: &self.groups,
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
    /// The directory refused the credentials (counted as method `ldap`).
    DirectoryRefused,
    /// The directory could not be asked; not the client's fault (503).
    DirectoryUnavailable,
}

impl Failure {
    /// The method label of a refusal, when a particular method refused it.
    pub fn method(self) -> Option<&'static str> {
        match self {
            Failure::DirectoryRefused | Failure::DirectoryUnavailable => Some("ldap"),
            _ => None,
        }
    }
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
    /// The LDAP directory, for users not in the htpasswd file.
    pub ldap: Option<ldap::Directory>,
    /// The per-process key of robot [`Guess`] fingerprints.
    guess_key: RandomState,
    /// Whether client certificates identify users.
    pub certificates: bool,
    pub require: Require,
    pub throttle: Throttle,
    /// Counters shared by replicas (failed logins; limits and revocations use it too).
    pub store: Arc<crate::store::Store>,
}

impl Authenticator {
    /// The methods `auth` asks for (client certificates when `certificates`), with fresh
    /// cache and throttle state.
    pub fn new(
        auth: &settings::AuthConfig,
        certificates: bool,
        store: Arc<crate::store::Store>,
    ) -> Self {
        let revoke = |store: &Arc<crate::store::Store>| {
            let store = Arc::clone(store);
            move |user: &str| revoke_refresh_tokens(&store, user)
        };
        let basic = auth.htpasswd.as_ref().map(|h| BasicAuth {
            checker: PasswordChecker::new(
                h.path.clone(),
                h.db.clone(),
                cache::CredentialCache::new(auth.cache_ttl, auth.cache_capacity),
                h.workers,
            )
            .on_removed(revoke(&store)),
        });
        let robots = auth.robots.as_ref().map(|r| {
            let parse = |text: &str| RobotsDb::parse(text).map_err(|e| e.join("; "));
            let gone = revoke(&store);
            WatchedFile::new(r.path.clone(), "robots file", r.db.clone(), parse).on_change(
                move |old: &RobotsDb, new: &RobotsDb| {
                    old.robots()
                        .filter(|r| new.get(&r.name).is_none())
                        .for_each(|r| gone(&format!("{}{}", robots::USER_PREFIX, r.name)))
                },
            )
        });
        let oidc = (!auth.oidc.is_empty()).then(|| oidc::Oidc::new(&auth.oidc));
        let ldap = auth.ldap.as_ref().map(|settings| {
            let cache = cache::CredentialCache::new(auth.cache_ttl, auth.cache_capacity);
            ldap::Directory::start(settings.clone(), cache)
        });
        Self {
            basic,
            robots,
            oidc,
            ldap,
            guess_key: RandomState::new(),
            certificates,
            require: auth.require,
            throttle: Throttle::new(auth.throttle_max_failures, auth.throttle_window),
            store,
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

    /// Whether Basic credentials are checked at all (htpasswd or directory users, robots,
    /// OIDC tokens).
    pub fn accepts_basic(&self) -> bool {
        self.basic.is_some() || self.robots.is_some() || self.oidc.is_some() || self.ldap.is_some()
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
                self.count_failure(attempt.client_ip, None).await;
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

    /// A robot's secret for `robot$NAME`, an OIDC token for an issuer's user, else an
    /// htpasswd password, else (a name not in the htpasswd file) a directory password.
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
        match (&self.basic, &self.ldap) {
            (Some(basic), None) => self.check_password(basic, creds, ip).await,
            (Some(basic), Some(_)) if basic.checker.has_user(&creds.user) => {
                self.check_password(basic, creds, ip).await
            }
            (_, Some(directory)) => self.check_ldap(directory, creds, ip).await,
            (None, None) => {
                tracing::info!(client = %show(ip), user = %creds.user, reason = "not a robot, and no htpasswd or directory users are configured", "authentication failed");
                self.count_failure(ip, None).await;
                Err(Failure::BadCredentials)
            }
        }
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

    /// Whether `user`'s refresh tokens issued at `issued` (Unix seconds) were revoked (the
    /// user or robot was removed, on any replica sharing the state).
    pub async fn is_revoked(&self, user: &str, issued: u64) -> bool {
        let revoked = self.store.get(&revocation_key(user)).await;
        revoked.is_some_and(|at| issued as i64 <= at)
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
}

/// How long a revocation is kept: longer than any refresh token lives.
const REVOCATION_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

fn revocation_key(user: &str) -> String {
    format!("revoked:{user}")
}

/// Revokes the refresh tokens `user` holds now, here and for every replica sharing state.
fn revoke_refresh_tokens(store: &crate::store::Store, user: &str) {
    tracing::info!(user, "removed: revoking their refresh tokens");
    store.set_detached(&revocation_key(user), clock_now(), REVOCATION_TTL);
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
