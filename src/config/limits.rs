//! Validating `[state]` and `[limits]`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::acl::parse_rule;
use super::file::{FileLimits, FileRule, FileState};
use super::{resolve_path, Problem};
use crate::auth::limits::{Limits, Per, PullLimit};
use crate::store::{RedisSettings, StateSettings};

/// `[state]`: the backend, and for Redis its URL with the password put in.
pub fn parse_state(file: &FileState, base: &Path) -> Result<StateSettings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, m: String| problems.push(Problem::new(format!("state.{key}"), m));
    match file.backend.as_str() {
        "memory" => return Ok(StateSettings::Memory),
        "redis" => {}
        other => {
            problem(
                "backend",
                format!("\"{other}\": use \"memory\" or \"redis\""),
            );
            return Err(problems);
        }
    }
    let url = file.url.clone().unwrap_or_default();
    let Some((scheme, rest)) = url
        .split_once("://")
        .filter(|(s, r)| matches!(*s, "redis" | "rediss") && !r.is_empty())
    else {
        problem(
            "url",
            format!("\"{url}\" is not a redis:// or rediss:// URL"),
        );
        return Err(problems);
    };
    if rest.contains('@') && (file.password.is_some() || file.password_file.is_some()) {
        problem("password", "is also in state.url; keep one".into());
    }
    let password = match (&file.password, &file.password_file) {
        (Some(_), Some(_)) => {
            problem(
                "password",
                "and password_file are both set; keep one".into(),
            );
            None
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => std::fs::read_to_string(resolve_path(base, path))
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| problem("password_file", format!("cannot read {path}: {e}")))
            .ok(),
        (None, None) => None,
    };
    if file.timeout_ms == 0 {
        problem("timeout_ms", "must be at least 1".into());
    }
    let ca = match &file.ca {
        Some(ca) if scheme == "rediss" => std::fs::read(resolve_path(base, ca))
            .map_err(|e| problem("ca", format!("cannot read {ca}: {e}")))
            .ok(),
        Some(_) => {
            problem("ca", "is for rediss:// URLs".into());
            None
        }
        None => None,
    };
    let url = match password {
        Some(p) => format!("{scheme}://:{}@{rest}", percent_encode(&p)),
        None => url.clone(),
    };
    match problems.is_empty() {
        true => Ok(StateSettings::Redis(RedisSettings {
            url,
            prefix: file.prefix.clone(),
            timeout: Duration::from_millis(file.timeout_ms),
            ca,
        })),
        false => Err(problems),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `[limits]`; `who` as in `[[acl.rules]]` (the same groups, issuers and directory).
pub fn parse_limits(
    file: &FileLimits,
    groups: &HashMap<String, Vec<String>>,
    oidc_issuers: &[&str],
    directory: bool,
) -> Result<Limits, Vec<Problem>> {
    let mut problems = Vec::new();
    for (key, value) in [
        ("max_concurrent_uploads", file.max_concurrent_uploads),
        ("max_connections", file.max_connections),
    ] {
        if value == Some(0) {
            problems.push(Problem::new(
                format!("limits.{key}"),
                "must be at least 1; leave it out for no limit",
            ));
        }
    }
    let mut pulls = Vec::new();
    for (index, limit) in file.pulls.iter().enumerate() {
        let key = format!("limits.pulls[{}]", index + 1);
        let before = problems.len();
        let mut problem = |m: String| problems.push(Problem::new(key.clone(), m));
        let per = match limit.per.as_str() {
            "address" => Per::Address,
            "user" => Per::User,
            other => {
                problem(format!("per: \"{other}\": use \"address\" or \"user\""));
                Per::Address
            }
        };
        let count = limit.count.filter(|c| *c > 0).unwrap_or_else(|| {
            problem("count is missing or 0; give the pulls allowed per window, e.g. 100".into());
            0
        });
        let window = match limit
            .window
            .as_deref()
            .map(crate::auth::robots::parse_lifetime)
        {
            Some(Ok(seconds)) if seconds > 0 => Duration::from_secs(seconds as u64),
            Some(Err(e)) => {
                problem(format!("window: {e}"));
                Duration::ZERO
            }
            _ => {
                problem("window is missing; give one such as \"6h\"".into());
                Duration::ZERO
            }
        };
        let who = limit.who.clone().unwrap_or_default();
        let rule = FileRule {
            users: who.users,
            groups: who.groups,
            certificates: who.certificates,
            robots: who.robots,
            oidc: who.oidc,
            anonymous: who.anonymous,
            repositories: vec!["*".into()],
            actions: vec!["pull".into()],
            ..FileRule::default()
        };
        let who = match parse_rule(
            index + 1,
            &format!("{key}.who"),
            &rule,
            groups,
            oidc_issuers,
            directory,
        ) {
            Ok(rule) => Some(rule.who),
            Err(mut more) => {
                problems.append(&mut more);
                None
            }
        };
        if let (Some(who), true) = (who, problems.len() == before) {
            pulls.push(PullLimit {
                number: index + 1,
                comment: limit.comment.clone(),
                who,
                per,
                count,
                window,
            });
        }
    }
    match problems.is_empty() {
        true => Ok(Limits {
            pulls,
            max_concurrent_uploads: file.max_concurrent_uploads,
            max_connections: file.max_connections,
        }),
        false => Err(problems),
    }
}
