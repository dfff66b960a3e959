//! The steps of one login on one pooled connection: find the user, find their groups,
//! bind as them; and the same without the bind for a look-up.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ldap3::{Ldap, Scope, SearchEntry, SearchOptions};

use super::filter::{group_name_of_dn, Template};
use super::pool::{Conn, Pool};
use super::{GroupLookup, LdapFailure, LdapSettings, LdapStats, LdapUser};

/// invalidCredentials (RFC 4511 appendix A).
const INVALID_CREDENTIALS: u32 = 49;
/// sizeLimitExceeded: the user filter matched more than one entry.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// busy, unavailable, unwillingToPerform-by-load: the server cannot answer now.
const SERVER_CANNOT_ANSWER: [u32; 3] = [51, 52, 80];

/// Everything a login needs, moved onto the client's thread.
pub struct Job {
    pub settings: Arc<LdapSettings>,
    pub pool: Arc<Pool>,
    pub stats: Arc<LdapStats>,
}

/// A user entry found by the user filter.
struct Found {
    dn: String,
    user: LdapUser,
}

impl Job {
    /// Search, groups, then a bind as the user with `password`.
    pub async fn login(&self, user: &str, password: &str) -> Result<LdapUser, LdapFailure> {
        let mut conn = self.connection().await?;
        let found = match self.find(&mut conn.ldap, user).await? {
            Some(found) => found,
            None => {
                self.pool.put(conn);
                return Err(LdapFailure::Refused("no such user in the directory".into()));
            }
        };
        self.stats.user_binds.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let bind = conn
            .ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(&found.dn, password)
            .await;
        self.stats.latency.observe(started.elapsed());
        let verdict = match bind {
            Ok(r) if r.rc == 0 => Ok(found.user),
            Ok(r) if SERVER_CANNOT_ANSWER.contains(&r.rc) => {
                Err(unavailable(format!("bind: result {} {}", r.rc, r.text)))
            }
            Ok(r) if r.rc == INVALID_CREDENTIALS => {
                Err(LdapFailure::Refused("wrong password".into()))
            }
            Ok(r) => Err(LdapFailure::Refused(format!(
                "the directory refused the bind (result {} {})",
                r.rc, r.text
            ))),
            Err(e) => return Err(unavailable(format!("bind: {e}"))),
        };
        self.give_back(conn);
        verdict
    }

    /// The user's groups without their password; `None` when there is no such user.
    pub async fn lookup(&self, user: &str) -> Result<Option<LdapUser>, LdapFailure> {
        let mut conn = self.connection().await?;
        let found = self.find(&mut conn.ldap, user).await?;
        self.pool.put(conn);
        Ok(found.map(|f| f.user))
    }

    async fn connection(&self) -> Result<Conn, LdapFailure> {
        self.pool
            .get()
            .await
            .map_err(|(_, why)| LdapFailure::Unavailable(why))
    }

    /// Binds the service account again in the background and returns the connection to the
    /// pool; a connection that cannot is dropped.
    fn give_back(&self, mut conn: Conn) {
        let pool = Arc::clone(&self.pool);
        tokio::spawn(async move {
            if pool.bind_service(&mut conn.ldap).await.is_ok() {
                pool.put(conn);
            }
        });
    }

    /// The one entry `user_filter` finds for `user`, with its groups.
    async fn find(&self, ldap: &mut Ldap, user: &str) -> Result<Option<Found>, LdapFailure> {
        let s = &self.settings;
        let filter = s.user_filter.render(&[("user", user)]);
        let mut wanted = vec![s.user_attribute.as_str()];
        if let GroupLookup::MemberOf { attribute } = &s.groups {
            wanted.push(attribute.as_str());
        }
        let entries = self.search(ldap, &s.base_dn, &filter, &wanted, 2).await?;
        let entry = match entries.as_slice() {
            [] => return Ok(None),
            [one] => one,
            _ => {
                tracing::warn!(filter = %filter, "auth.ldap.user_filter matches more than one entry; refusing the login (make the filter match one person)");
                return Ok(None);
            }
        };
        let Some(name) = own_name(&values(entry, &s.user_attribute), user) else {
            tracing::warn!(dn = %entry.dn, "the entry has no {}; refusing the login (check auth.ldap.user_attribute)", s.user_attribute);
            return Ok(None);
        };
        let groups = match &s.groups {
            GroupLookup::None => Vec::new(),
            GroupLookup::MemberOf { attribute } => values(entry, attribute)
                .iter()
                .filter_map(|dn| group_name_of_dn(dn, &s.group_attribute))
                .collect(),
            GroupLookup::Search { base_dn, filter } => {
                self.groups(ldap, base_dn, filter, &entry.dn, &name).await?
            }
        };
        Ok(Some(Found {
            dn: entry.dn.clone(),
            user: LdapUser { name, groups },
        }))
    }

    /// The `group_attribute` values of the groups `filter` finds for the user.
    async fn groups(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &Template,
        dn: &str,
        user: &str,
    ) -> Result<Vec<String>, LdapFailure> {
        let filter = filter.render(&[("dn", dn), ("user", user)]);
        let attribute = self.settings.group_attribute.as_str();
        let entries = self.search(ldap, base, &filter, &[attribute], 0).await?;
        let mut names: Vec<String> = entries.iter().flat_map(|e| values(e, attribute)).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A subtree search; referrals are skipped. `limit` 0: no size limit.
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attributes: &[&str],
        limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapFailure> {
        let started = Instant::now();
        let result = ldap
            .with_timeout(self.settings.timeout)
            .with_search_options(SearchOptions::new().sizelimit(limit))
            .search(base, Scope::Subtree, filter, attributes.to_vec())
            .await;
        self.stats.latency.observe(started.elapsed());
        let result = result.map_err(|e| unavailable(format!("search: {e}")))?;
        match result.1.rc {
            0 | SIZE_LIMIT_EXCEEDED => Ok(result
                .0
                .into_iter()
                .filter(|e| !e.is_ref() && !e.is_intermediate())
                .map(SearchEntry::construct)
                .collect()),
            rc => Err(unavailable(format!("search under \"{base}\": result {rc} {} (check auth.ldap base_dn and the service account's rights)", result.1.text))),
        }
    }
}

fn unavailable(why: String) -> LdapFailure {
    LdapFailure::Unavailable(why)
}

/// The user's name as the directory spells it: of the entry's `values` of
/// `user_attribute`, the one the login name matches ignoring case and outer spaces (as
/// the directory did), else the first.
fn own_name(values: &[String], typed: &str) -> Option<String> {
    values
        .iter()
        .find(|v| v.trim().eq_ignore_ascii_case(typed.trim()))
        .or(values.first())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The values of `attribute` (names are case-insensitive).
fn values(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}
