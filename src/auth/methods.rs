//! The checks of each Basic-auth method, all throttled the same way: robot secrets, OIDC
//! tokens, htpasswd passwords and directory (LDAP) passwords.

use std::hash::BuildHasher;
use std::net::IpAddr;

use super::ldap::{Directory, LdapFailure};
use super::passwords::Verdict;
use super::robots::{RobotVerdict, RobotsDb};
use super::throttle::{Guess, Reservation};
use super::watched::WatchedFile;
use super::{
    basic, clock_now, oidc, show, AuthMethod, Authenticator, BasicAuth, Failure, Principal,
};

impl Authenticator {
    /// Robot `name`'s secret, throttled like a password (a check is cheap, but guessing
    /// must stay slow). An expired robot is refused like a wrong secret; the log says why.
    pub(super) async fn check_robot(
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
        self.count_failure(ip, Some((reservation, guess))).await;
        Err(Failure::BadCredentials)
    }

    /// An OIDC token, throttled like a password; `named` is the Basic user (`oidc` or an
    /// issuer's name).
    pub(super) async fn check_oidc(
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
                self.count_failure(ip, Some((reservation, guess))).await;
                Err(Failure::BadCredentials)
            }
        }
    }

    pub(super) async fn check_password(
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
                self.count_failure(ip, reservation.map(|r| (r, guess)))
                    .await;
                Err(Failure::BadCredentials)
            }
            Verdict::Busy => Err(Failure::Busy),
        }
    }

    /// The throttle's leave to check `guess` from `ip`, or the refusal: the address is
    /// blocked, or these very credentials failed in its window already.
    pub(super) async fn admit(
        &self,
        ip: Option<IpAddr>,
        guess: Guess,
        user: &str,
    ) -> Result<Reservation<'_>, Failure> {
        if let Some(retry_after) = ip.and_then(|ip| self.throttle.blocked_for(ip)) {
            return Err(Failure::Throttled { retry_after });
        }
        if let Some(retry_after) = self.shared_block(ip).await {
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

    /// A directory password: from the cache with its groups, else asked of the directory,
    /// throttled like an htpasswd password. A directory that cannot answer is not a failed
    /// guess: the client gets 503 and the throttle counts nothing.
    pub(super) async fn check_ldap(
        &self,
        directory: &Directory,
        creds: &basic::Credentials,
        ip: Option<IpAddr>,
    ) -> Result<Principal, Failure> {
        if let Some(found) = directory.cached(&creds.user, &creds.password) {
            return Ok(Principal::ldap(&found));
        }
        let guess = Guess(
            self.guess_key
                .hash_one(("ldap", &creds.user, &creds.password)),
        );
        let reservation = self.admit(ip, guess, &creds.user).await?;
        match directory.login(&creds.user, &creds.password).await {
            Ok(found) => {
                reservation.succeeded();
                Ok(Principal::ldap(&found))
            }
            Err(LdapFailure::Refused(reason)) => {
                tracing::info!(client = %show(ip), user = %creds.user, reason = %reason, "authentication failed");
                self.count_failure(ip, Some((reservation, guess))).await;
                Err(Failure::DirectoryRefused)
            }
            Err(LdapFailure::Unavailable(reason)) => {
                tracing::warn!(client = %show(ip), user = %creds.user, reason = %reason, "authentication impossible: the LDAP directory is unavailable");
                drop(reservation);
                Err(Failure::DirectoryUnavailable)
            }
        }
    }

    /// Directory user `user` as the directory knows them now (a refresh token's re-check):
    /// `Ok(None)` when there is no directory or no such user.
    pub async fn directory_user(&self, user: &str) -> Result<Option<Principal>, Failure> {
        let Some(directory) = &self.ldap else {
            return Ok(None);
        };
        match directory.lookup(user).await {
            Ok(found) => Ok(found.map(|found| Principal::ldap(&found))),
            Err(LdapFailure::Refused(_)) => Ok(None),
            Err(LdapFailure::Unavailable(reason)) => {
                tracing::warn!(user = %user, reason = %reason, "cannot re-check a directory user: the LDAP directory is unavailable");
                Err(Failure::DirectoryUnavailable)
            }
        }
    }

    /// With shared state (Redis): whether the failures of `ip` counted by every replica
    /// reached `max_failures`; then the seconds until their window ends.
    async fn shared_block(&self, ip: Option<IpAddr>) -> Option<u64> {
        let (max, _) = self.throttle.limits();
        let ip = ip.filter(|_| max > 0 && self.store.is_shared())?;
        let count = self.store.peek(&failure_key(ip)).await;
        (count.value >= u64::from(max)).then(|| count.reset_in.as_secs().max(1))
    }

    /// Counts a failed login of `ip`: in this replica's throttle (as the `Guess` its
    /// reservation was for, when a check held one), and with shared state for every replica.
    pub(super) async fn count_failure(
        &self,
        ip: Option<IpAddr>,
        reserved: Option<(Reservation<'_>, Guess)>,
    ) {
        match (reserved, ip) {
            (Some((reservation, guess)), _) => reservation.failed(guess),
            (None, Some(ip)) => self.throttle.record_failure(ip),
            (None, None) => {}
        }
        let (max, window) = self.throttle.limits();
        if let Some(ip) = ip.filter(|_| max > 0 && self.store.is_shared()) {
            self.store.hit(&failure_key(ip), window).await;
        }
    }
}

/// The shared counter of an address's failed logins.
fn failure_key(ip: IpAddr) -> String {
    format!("fail:{}", super::limits::address_key(ip))
}
