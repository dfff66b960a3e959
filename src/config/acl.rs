//! Validating `[acl]` and `read_only`: the rules, their includes and patterns.

use std::collections::HashMap;
use std::path::Path;

use super::file::{FileAcl, FileAclInclude, FileImmutable, FileRule};
use super::{resolve_path, Problem};
use crate::auth::acl::{Acl, OidcMatch, Pattern, Policy, Rule, Who, DIRECTORY_GROUP_PREFIX};
use crate::auth::immutable::ImmutableRule;
use crate::registry::scope::Action;

/// Builds the ACL. `has_acl` false gives the policy without rules.
/// `oidc_issuers` are the `[[auth.oidc]]` names rules may match; `directory`: whether
/// `[auth.ldap]` is configured, so rules may name `ldap:` groups.
pub fn parse_acl(
    file: Option<&FileAcl>,
    read_only: bool,
    allow_unauthenticated: bool,
    directory: bool,
    base: &Path,
    oidc_issuers: &[&str],
) -> Result<Acl, Vec<Problem>> {
    let Some(file) = file else {
        let policy = if allow_unauthenticated {
            Policy::Everyone
        } else {
            Policy::Authenticated
        };
        return Ok(Acl {
            read_only,
            policy,
            ..Acl::default()
        });
    };
    let mut problems = Vec::new();
    let mut groups = file.groups.clone();
    let mut file_rules: Vec<(String, FileRule)> = file
        .rules
        .iter()
        .cloned()
        .map(|r| ("acl.rules".to_string(), r))
        .collect();
    if let Some(include) = &file.include {
        let path = resolve_path(base, include);
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<FileAclInclude>(&t).map_err(|e| e.message().to_string()))
        {
            Ok(included) => {
                for (name, members) in included.groups {
                    if groups.insert(name.clone(), members).is_some() {
                        problems.push(Problem::new(
                            "acl.include",
                            format!(
                                "{}: group \"{name}\" is also defined in [acl.groups]",
                                path.display()
                            ),
                        ));
                    }
                }
                let key = format!("{} rules", path.display());
                file_rules.extend(included.rules.into_iter().map(|r| (key.clone(), r)));
            }
            Err(e) => problems.push(Problem::new(
                "acl.include",
                format!("{}: {e}", path.display()),
            )),
        }
    }
    let rules: Vec<Rule> = file_rules
        .iter()
        .enumerate()
        .filter_map(|(i, (key, rule))| {
            parse_rule(i + 1, key, rule, &groups, oidc_issuers, directory)
                .map_err(|mut p| problems.append(&mut p))
                .ok()
        })
        .collect();
    let immutable = parse_immutable(&file.immutable, &mut problems);
    if problems.is_empty() {
        Ok(Acl {
            rules,
            groups,
            read_only,
            policy: Policy::Rules,
            immutable,
        })
    } else {
        Err(problems)
    }
}

/// The action that lets a rule's subjects move or delete immutable tags.
const OVERWRITE: &str = "overwrite";

/// `[[acl.immutable]]`: each needs repositories and tags.
fn parse_immutable(files: &[FileImmutable], problems: &mut Vec<Problem>) -> Vec<ImmutableRule> {
    let mut rules = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let key = format!("acl.immutable[{}]", index + 1);
        let before = problems.len();
        let mut problem = |m: String| problems.push(Problem::new(key.clone(), m));
        if file.repositories.is_empty() {
            problem("covers no repository: give repositories, e.g. [\"prod/*\"]".into());
        }
        if file.tags.is_empty() {
            problem("covers no tag: give tags, e.g. [\"v*\"]".into());
        }
        let repositories: Vec<Pattern> = file
            .repositories
            .iter()
            .filter_map(|r| match r.contains("${") {
                true => {
                    problem(format!(
                        "repositories: \"{r}\": ${{...}} has no meaning here"
                    ));
                    None
                }
                false => Pattern::parse(r).map_err(&mut problem).ok(),
            })
            .collect();
        for tag in file.tags.iter().filter(|t| t.is_empty() || t.len() > 128) {
            problem(format!("tags: \"{tag}\" is not a tag glob"));
        }
        if problems.len() == before {
            rules.push(ImmutableRule {
                number: index + 1,
                comment: file.comment.clone(),
                repositories,
                tags: file.tags.clone(),
            });
        }
    }
    rules
}

pub(super) fn parse_rule(
    number: usize,
    key: &str,
    rule: &FileRule,
    groups: &HashMap<String, Vec<String>>,
    oidc_issuers: &[&str],
    directory: bool,
) -> Result<Rule, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |m: String| problems.push(Problem::new(format!("{key}[{number}]"), m));
    if rule.users.is_empty()
        && rule.groups.is_empty()
        && rule.certificates.is_empty()
        && rule.robots.is_empty()
        && rule.oidc.is_none()
        && !rule.anonymous
    {
        problem(
            "says nobody: give users, groups, certificates, robots, oidc or anonymous = true"
                .into(),
        );
    }
    let oidc = rule.oidc.as_ref().and_then(|m| {
        let issuer = m.issuer.as_deref().unwrap_or_default();
        if !oidc_issuers.contains(&issuer) {
            problem(format!(
                "oidc.issuer \"{issuer}\" is not an [[auth.oidc]] name (those are: {})",
                oidc_issuers.join(", ")
            ));
            return None;
        }
        Some(OidcMatch {
            issuer: issuer.to_string(),
            claims: m.claims.clone().into_iter().collect(),
        })
    });
    let robots: Vec<Pattern> = rule
        .robots
        .iter()
        .filter_map(|r| match r.contains("${") {
            true => {
                problem(format!(
                    "robots: \"{r}\": a robot-name glob cannot use ${{...}}"
                ));
                None
            }
            false => Pattern::parse(r)
                .map_err(|e| problem(format!("robots: {e}")))
                .ok(),
        })
        .collect();
    for group in rule.groups.iter().filter(|g| !groups.contains_key(*g)) {
        match group.strip_prefix(DIRECTORY_GROUP_PREFIX) {
            Some("") => problem(format!("group \"{group}\" names no directory group; write ldap:NAME")),
            Some(_) if directory => {}
            Some(_) => problem(format!("group \"{group}\" is a directory group, but [auth.ldap] is not configured")),
            None => problem(format!("group \"{group}\" is not defined in [acl.groups] (directory groups are written ldap:NAME)")),
        }
    }
    if rule.repositories.is_empty() && !rule.catalog {
        problem("covers nothing: give repositories or catalog = true".into());
    }
    let repositories: Vec<Pattern> = rule
        .repositories
        .iter()
        .filter_map(|r| Pattern::parse(r).map_err(&mut problem).ok())
        .collect();
    if rule.oidc.is_none() && repositories.iter().any(Pattern::uses_claims) {
        problem("repositories use ${claims...}, which only rules with oidc = {...} have".into());
    }
    let networks = rule
        .networks
        .iter()
        .filter_map(|n| {
            n.parse::<ipnet::IpNet>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(Into::into))
                .map_err(|_| problem(format!("\"{n}\" is not a CIDR")))
                .ok()
        })
        .collect();
    let overwrite = rule.actions.iter().any(|a| a == OVERWRITE);
    let actions: Vec<Action> = rule
        .actions
        .iter()
        .filter(|a| *a != OVERWRITE)
        .filter_map(|a| {
            Action::parse(a)
                .ok_or_else(|| {
                    problem(format!(
                        "unknown action \"{a}\"; use pull, push, delete, * or overwrite"
                    ))
                })
                .ok()
        })
        .collect();
    if rule.actions.is_empty() {
        problem("allows nothing: give actions, e.g. [\"pull\"]".into());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Rule {
        number,
        comment: rule.comment.clone(),
        who: Who {
            users: rule.users.clone(),
            groups: rule.groups.clone(),
            certificates: rule.certificates.clone(),
            robots,
            oidc,
            anonymous: rule.anonymous,
        },
        networks,
        repositories,
        catalog: rule.catalog,
        actions,
        overwrite,
    })
}
