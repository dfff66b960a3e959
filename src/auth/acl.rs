//! Authorization rules: who may do what to which repository (pure).
//!
//! Rules are evaluated in order; the **first rule that applies** to the subject, its
//! network and the resource decides: its `actions` allow or refuse. No rule applies:
//! refused. `read_only` refuses every push and delete before any rule is looked at.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use super::oidc::OidcIdentity;
use crate::registry::scope::{is_repository_name, Action, Resource, Scope};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// `None` for anonymous requests.
    pub user: Option<&'a str>,
    /// How the user name was established.
    pub kind: Kind<'a>,
    pub ip: Option<IpAddr>,
    /// The user's LDAP directory groups, which rules name as `ldap:NAME`.
    pub directory_groups: &'a [String],
}

/// How rules name a directory group: `groups = ["ldap:registry-admins"]`.
pub const DIRECTORY_GROUP_PREFIX: &str = "ldap:";

/// What kind of identity a subject is: which rules can be about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An htpasswd user, a token's subject, or nobody (anonymous): `users` and `groups`.
    User,
    /// A name from a client certificate: `users`, `groups` and `certificates`.
    Certificate,
    /// Robot account NAME (user `robot$NAME`): only `robots` rules.
    Robot(&'a str),
    /// The holder of an OIDC token: only `oidc` rules.
    Oidc(&'a OidcIdentity),
}

impl Subject<'_> {
    /// The OIDC claims, for `${claims.NAME}` in patterns.
    fn claims(&self) -> Option<&BTreeMap<String, String>> {
        match self.kind {
            Kind::Oidc(identity) => Some(&identity.claims),
            _ => None,
        }
    }
}

/// One piece of a repository pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: any run of characters, `/` included.
    Star,
    /// `${user}`: the subject's user name, literally.
    User,
    /// `${claims.NAME}`: an OIDC string claim, literally.
    Claim(String),
}

/// A repository glob such as `team-a/*` or `${user}/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses a pattern: repository-name characters, `*`, `${user}` and
    /// `${claims.NAME}`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let mut tokens = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("${user}") {
                tokens.push(Token::User);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${claims.") {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("\"{text}\": ${{claims. without a closing }}"))?;
                let name = &after[..end];
                if name.is_empty() || name.contains(['$', '{', '*']) {
                    return Err(format!("\"{text}\": \"{name}\" is not a claim name"));
                }
                tokens.push(Token::Claim(name.to_string()));
                rest = &after[end + 1..];
            } else if let Some(after) = rest.strip_prefix('*') {
                tokens.push(Token::Star);
                rest = after;
            } else {
                let end = rest.find(['*', '$']).unwrap_or(rest.len());
                let literal = &rest[..end.max(1)];
                if !literal
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
                {
                    return Err(format!("\"{text}\": only lowercase letters, digits, . _ - /, *, ${{user}} and ${{claims.NAME}} are allowed"));
                }
                tokens.push(Token::Literal(literal.to_string()));
                rest = &rest[literal.len()..];
            }
        }
        if tokens.is_empty() {
            return Err("an empty repository pattern matches nothing".into());
        }
        Ok(Pattern {
            text: text.to_string(),
            tokens,
        })
    }

    /// Whether `name` matches for `user`. `${user}` never matches for anonymous subjects or
    /// for user names that are not a single repository path component.
    pub fn matches(&self, name: &str, user: Option<&str>) -> bool {
        self.matches_with(name, user, None)
    }

    /// Like [`Pattern::matches`], with OIDC `claims` for `${claims.NAME}`: a claim that is
    /// missing, or not a valid repository name (upper case, `..`, ...), never matches.
    fn matches_with(
        &self,
        name: &str,
        user: Option<&str>,
        claims: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let user = user.filter(|u| is_repository_name(u) && !u.contains('/'));
        let mut expanded = Vec::with_capacity(self.tokens.len());
        for token in &self.tokens {
            let value = match token {
                Token::User => user,
                Token::Claim(claim) => claims
                    .and_then(|c| c.get(claim))
                    .map(String::as_str)
                    .filter(|v| is_repository_name(v)),
                other => {
                    expanded.push(other.clone());
                    continue;
                }
            };
            match value {
                Some(v) => expanded.push(Token::Literal(v.to_string())),
                None => return false,
            }
        }
        glob(&expanded, name)
    }

    /// Whether the pattern uses `${claims...}` (only `oidc` rules may).
    pub fn uses_claims(&self) -> bool {
        self.tokens.iter().any(|t| matches!(t, Token::Claim(_)))
    }
}

/// `*`-glob over literal tokens.
fn glob(tokens: &[Token], text: &str) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((Token::Literal(lit), rest)) => text
            .strip_prefix(lit.as_str())
            .is_some_and(|t| glob(rest, t)),
        Some((Token::Star, rest)) => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| glob(rest, &text[i..])),
        Some((Token::User | Token::Claim(_), _)) => false,
    }
}

/// Who a rule is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    /// User names; `"*"` is every authenticated user.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Names from client certificates (only certificate-authenticated subjects).
    pub certificates: Vec<String>,
    /// Robot-name globs (`ci-*`).
    pub robots: Vec<Pattern>,
    /// OIDC token holders: an issuer and claim globs.
    pub oidc: Option<OidcMatch>,
    pub anonymous: bool,
}

/// `oidc = { issuer = "github", claims = { repository_owner = "acme" } }`: tokens of that
/// issuer whose every listed claim is a string matching its glob (`*`: any run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcMatch {
    pub issuer: String,
    pub claims: Vec<(String, String)>,
}

impl OidcMatch {
    fn matches(&self, identity: &OidcIdentity) -> bool {
        identity.issuer == self.issuer
            && self.claims.iter().all(|(name, want)| {
                identity
                    .claims
                    .get(name)
                    .is_some_and(|have| text_glob(want, have))
            })
    }
}

/// `*`-glob over any text (claim values, tags): `refs/tags/v*`.
pub fn text_glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| text_glob(tail, &rest[i..]))
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based position, for `explain` and logs.
    pub number: usize,
    pub comment: Option<String>,
    pub who: Who,
    /// Client networks the rule is limited to; empty: any.
    pub networks: Vec<IpNet>,
    pub repositories: Vec<Pattern>,
    /// Whether the rule is about `registry:catalog`.
    pub catalog: bool,
    /// What it allows; `Action::All` allows every registry action.
    pub actions: Vec<Action>,
    /// Whether it lets its subjects move or delete immutable tags (action `overwrite`,
    /// never implied by `*`).
    pub overwrite: bool,
}

/// The outcome of one question, and the rule that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        rule: Option<usize>,
    },
    Deny {
        rule: Option<usize>,
        reason: String,
    },
    /// `read_only = true` and the action writes.
    ReadOnly,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// What decides when there are no rules to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// `[acl]` rules, default deny.
    #[default]
    Rules,
    /// No `[acl]`: every authenticated subject may do everything, anonymous ones nothing.
    Authenticated,
    /// No `[acl]` and `auth.allow_unauthenticated`: everyone may do everything.
    Everyone,
}

/// The rules and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub rules: Vec<Rule>,
    /// group → members
    pub groups: HashMap<String, Vec<String>>,
    pub read_only: bool,
    pub policy: Policy,
    /// `[[acl.immutable]]`: tags that never move once they exist.
    pub immutable: Vec<super::immutable::ImmutableRule>,
}

impl Acl {
    /// May `subject` do `action` on `resource`?
    pub fn decide(&self, subject: &Subject<'_>, resource: &Resource, action: Action) -> Decision {
        if self.read_only
            && matches!(action, Action::Push | Action::Delete | Action::All)
            && !matches!(resource, Resource::Catalog)
        {
            return Decision::ReadOnly;
        }
        let oidc = matches!(subject.kind, Kind::Oidc(_));
        match (self.policy, subject.user) {
            (Policy::Authenticated, Some(_)) if oidc => {
                return Decision::Deny {
                    rule: None,
                    reason: "OIDC identities need [acl] rules with oidc = {...}".into(),
                }
            }
            (Policy::Everyone, _) | (Policy::Authenticated, Some(_)) => {
                return Decision::Allow { rule: None }
            }
            (Policy::Authenticated, None) => {
                return Decision::Deny {
                    rule: None,
                    reason: "anonymous access is not configured".into(),
                }
            }
            (Policy::Rules, _) => {}
        }
        match self
            .rules
            .iter()
            .find(|r| self.applies(r, subject, resource))
        {
            Some(rule) if rule.actions.contains(&Action::All) || rule.actions.contains(&action) => {
                Decision::Allow {
                    rule: Some(rule.number),
                }
            }
            Some(rule) => Decision::Deny {
                rule: Some(rule.number),
                reason: format!("rule {} does not allow {}", rule.number, action.as_str()),
            },
            None => Decision::Deny {
                rule: None,
                reason: "no rule applies (default deny)".into(),
            },
        }
    }

    /// The actions of `scope` that `subject` may have: what a token grants.
    pub fn grant(&self, subject: &Subject<'_>, scope: &Scope) -> Vec<Action> {
        scope
            .actions
            .iter()
            .copied()
            .filter(|a| self.decide(subject, &scope.resource, *a).allowed())
            .collect()
    }

    pub(super) fn applies(&self, rule: &Rule, subject: &Subject<'_>, resource: &Resource) -> bool {
        self.is_about(&rule.who, subject)
            && (rule.networks.is_empty()
                || subject
                    .ip
                    .is_some_and(|ip| rule.networks.iter().any(|n| n.contains(&ip.to_canonical()))))
            && match resource {
                Resource::Catalog => rule.catalog,
                Resource::Repository(name) => rule
                    .repositories
                    .iter()
                    .any(|p| p.matches_with(name, subject.user, subject.claims())),
            }
    }

    pub(super) fn is_about(&self, who: &Who, subject: &Subject<'_>) -> bool {
        let Some(user) = subject.user else {
            return who.anonymous;
        };
        match subject.kind {
            Kind::Robot(name) => return who.robots.iter().any(|p| p.matches(name, None)),
            Kind::Oidc(identity) => return who.oidc.as_ref().is_some_and(|m| m.matches(identity)),
            Kind::User | Kind::Certificate => {}
        }
        who.users.iter().any(|u| u == "*" || u == user)
            || who
                .groups
                .iter()
                .any(|g| match g.strip_prefix(DIRECTORY_GROUP_PREFIX) {
                    Some(name) => subject
                        .directory_groups
                        .iter()
                        .any(|have| have.eq_ignore_ascii_case(name)),
                    None => self
                        .groups
                        .get(g)
                        .is_some_and(|members| members.iter().any(|m| m == user)),
                })
            || (subject.kind == Kind::Certificate && who.certificates.iter().any(|c| c == user))
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
