//! Rate limits (`[limits]`): pulls per identity or address in a window, uploads in progress
//! per user, connections per address (pure; the counting is in [`crate::store`]).

use std::net::IpAddr;
use std::time::Duration;

use super::acl::{Acl, Subject, Who};

/// Whom a pull limit counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Each client address (IPv6 by /64).
    Address,
    /// Each user (anonymous requests by address).
    User,
}

/// One `[[limits.pulls]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullLimit {
    /// 1-based position: the first rule that applies decides.
    pub number: usize,
    pub comment: Option<String>,
    pub who: Who,
    pub per: Per,
    pub count: u64,
    pub window: Duration,
}

impl PullLimit {
    /// The counter `subject` pulls against: one per rule and address or user.
    pub fn key(&self, subject: &Subject<'_>) -> String {
        match (self.per, subject.user) {
            (Per::User, Some(user)) => format!("pull:{}:u:{user}", self.number),
            _ => format!(
                "pull:{}:a:{}",
                self.number,
                subject.ip.map_or("-".into(), address_key)
            ),
        }
    }

    /// `100;w=21600`: the value of `RateLimit-Limit` (Docker Hub's spelling).
    pub fn limit_header(&self) -> String {
        format!("{};w={}", self.count, self.window.as_secs())
    }

    /// `N;w=21600`: the value of `RateLimit-Remaining` after `used` pulls.
    pub fn remaining_header(&self, used: u64) -> String {
        format!(
            "{};w={}",
            self.count.saturating_sub(used),
            self.window.as_secs()
        )
    }

    /// `rule 1 (anonymous pulls): 100 per 6h per address`.
    pub fn describe(&self) -> String {
        let per = match self.per {
            Per::Address => "address",
            Per::User => "user",
        };
        let comment = self
            .comment
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        format!(
            "pull limit {}{comment}: {} per {}s per {per}",
            self.number,
            self.count,
            self.window.as_secs()
        )
    }
}

/// `[limits]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub pulls: Vec<PullLimit>,
    /// Upload requests one user may have in progress at once.
    pub max_concurrent_uploads: Option<u32>,
    /// TLS connections one client address may hold at once.
    pub max_connections: Option<u32>,
}

impl Limits {
    /// The pull limit that applies to `subject`: the first whose `who` is about it.
    pub fn pull_limit<'a>(&'a self, acl: &Acl, subject: &Subject<'_>) -> Option<&'a PullLimit> {
        self.pulls.iter().find(|l| acl.is_about(&l.who, subject))
    }
}

/// An address as counters know it: IPv4, or the /64 of IPv6.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::Kind;

    #[test]
    fn the_first_limit_about_the_subject_decides_and_keys_separate_them() {
        let limit = |number, who: Who, per| PullLimit {
            number,
            comment: None,
            who,
            per,
            count: 5,
            window: Duration::from_secs(3600),
        };
        let limits = Limits {
            pulls: vec![
                limit(
                    1,
                    Who {
                        anonymous: true,
                        ..Who::default()
                    },
                    Per::Address,
                ),
                limit(
                    2,
                    Who {
                        users: vec!["*".into()],
                        ..Who::default()
                    },
                    Per::User,
                ),
            ],
            ..Limits::default()
        };
        let acl = Acl::default();
        let ip = Some("2001:db8::1".parse().unwrap());
        let anonymous = Subject {
            user: None,
            kind: Kind::User,
            ip,
            directory_groups: &[],
        };
        let alice = Subject {
            user: Some("alice"),
            ..anonymous
        };
        assert_eq!(limits.pull_limit(&acl, &anonymous).unwrap().number, 1);
        assert_eq!(limits.pull_limit(&acl, &alice).unwrap().number, 2);
        assert_eq!(limits.pulls[0].key(&anonymous), "pull:1:a:2001:db8::/64");
        assert_eq!(limits.pulls[1].key(&alice), "pull:2:u:alice");
        assert_eq!(limits.pulls[1].limit_header(), "5;w=3600");
        assert_eq!(limits.pulls[1].remaining_header(7), "0;w=3600");
        assert_eq!(address_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
