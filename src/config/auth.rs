//! Validating `[auth]` and `[tls.client_auth]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{FileAuth, FileClientAuth, FileRobots};
use super::{resolve_path, AuthConfig, ClientAuthConfig, HtpasswdConfig, Problem};
use crate::auth::htpasswd::HtpasswdDb;
use crate::auth::robots::RobotsDb;
use crate::auth::settings::RobotsConfig;
use crate::auth::Require;
use crate::tls::client_auth::{build_verifier, ClientAuthMode};

/// Loads the client CA files and CRLs.
pub fn parse_client_auth(
    file: &FileClientAuth,
    base: &Path,
) -> Result<ClientAuthConfig, Vec<Problem>> {
    let cas: Vec<PathBuf> = file.cas.iter().map(|p| resolve_path(base, p)).collect();
    let crls: Vec<PathBuf> = file.crls.iter().map(|p| resolve_path(base, p)).collect();
    let (mode, user_from) = (file.mode, file.user_from);
    let verifier = build_verifier(&cas, &crls, mode)?;
    Ok(ClientAuthConfig {
        mode,
        user_from,
        cas,
        crls,
        verifier,
    })
}

/// Validates `[auth]`; `client_auth` is the already-checked `[tls.client_auth]`, if any.
pub fn parse_auth(
    file: &FileAuth,
    base: &Path,
    client_auth: Option<&FileClientAuth>,
    threads: usize,
    has_acl: bool,
) -> Result<AuthConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let htpasswd = match &file.htpasswd {
        Some(h) => match parse_htpasswd(h, base, threads) {
            Ok(h) => Some(h),
            Err(mut p) => {
                problems.append(&mut p);
                None
            }
        },
        None => None,
    };
    let robots = match &file.robots {
        Some(r) => parse_robots(r, base)
            .map_err(|mut p| problems.append(&mut p))
            .ok(),
        None => None,
    };
    let oidc = super::oidc::parse_oidc(&file.oidc, base, has_acl)
        .map_err(|mut p| problems.append(&mut p))
        .unwrap_or_default();
    let ldap = match &file.ldap {
        Some(l) => super::ldap::parse_ldap(l, base)
            .map_err(|mut p| problems.append(&mut p))
            .ok(),
        None => None,
    };
    let token = match &file.token {
        Some(t) => super::token::parse_token(t, base)
            .map_err(|mut p| problems.append(&mut p))
            .ok(),
        None => None,
    };
    let has_basic = file.htpasswd.is_some()
        || file.robots.is_some()
        || !file.oidc.is_empty()
        || file.ldap.is_some();
    let cert_mode = client_auth.map(|c| c.mode);
    if !has_basic && cert_mode.is_none() && !file.allow_unauthenticated && !has_acl {
        problems.push(Problem::new("auth", "no authentication or access rules are configured, so anyone who reaches Portcullis could push and delete images; add [auth.htpasswd], [auth.ldap], [auth.robots], [tls.client_auth] or [acl], or set auth.allow_unauthenticated = true for a network where every client is trusted"));
    }
    if cert_mode == Some(ClientAuthMode::Optional) && !has_basic {
        problems.push(Problem::new("tls.client_auth.mode", "\"optional\" needs another method for clients without a certificate: add [auth.htpasswd], [auth.ldap] or [auth.robots], or use mode = \"require\""));
    }
    if cert_mode == Some(ClientAuthMode::Optional) && has_basic && file.require == Require::All {
        problems.push(Problem::new("auth.require", "\"all\" needs a certificate from every client, which contradicts tls.client_auth.mode = \"optional\": use require = \"any\" (certificate or password) or mode = \"require\" (certificate and password)"));
    }
    if file.throttle.max_failures > 0 && file.throttle.window == 0 {
        problems.push(Problem::new(
            "auth.throttle.window",
            "must be at least 1 second (set max_failures = 0 to turn throttling off)",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(AuthConfig {
        require: file.require,
        allow_unauthenticated: file.allow_unauthenticated,
        forward_authorization: file.forward_authorization,
        htpasswd,
        robots,
        oidc,
        ldap,
        throttle_max_failures: file.throttle.max_failures,
        throttle_window: Duration::from_secs(file.throttle.window),
        cache_ttl: Duration::from_secs(file.cache.ttl),
        cache_capacity: file.cache.capacity,
        token,
    })
}

/// `[auth.robots]`: the file must exist (`portcullis robot add` creates it) and parse.
fn parse_robots(file: &FileRobots, base: &Path) -> Result<RobotsConfig, Vec<Problem>> {
    let key = "auth.robots.path";
    let path = match file.path.as_deref() {
        Some(p) if !p.trim().is_empty() => resolve_path(base, p),
        _ => {
            return Err(vec![Problem::new(
            key,
            "is missing; give the robots file (`portcullis robot add NAME --file PATH` creates it)",
        )])
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        vec![Problem::new(
            key,
            format!(
                "cannot read {}: {e} (`portcullis robot add NAME --file {}` creates it)",
                path.display(),
                path.display()
            ),
        )]
    })?;
    let db = RobotsDb::parse(&text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| Problem::new(key, format!("{}: {e}", path.display())))
            .collect::<Vec<_>>()
    })?;
    Ok(RobotsConfig { path, db })
}

fn parse_htpasswd(
    file: &super::file::FileHtpasswd,
    base: &Path,
    threads: usize,
) -> Result<HtpasswdConfig, Vec<Problem>> {
    let key = "auth.htpasswd.path";
    let path = match file.path.as_deref() {
        Some(p) if !p.trim().is_empty() => resolve_path(base, p),
        _ => {
            return Err(vec![Problem::new(
                key,
                "is missing; give the htpasswd file (make lines with `portcullis htpasswd USER`)",
            )])
        }
    };
    let mut problems = Vec::new();
    if file.realm.is_empty()
        || file
            .realm
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        problems.push(Problem::new(
            "auth.htpasswd.realm",
            "must be non-empty text without quotes, backslashes or control characters",
        ));
    }
    if file.workers == Some(0) {
        problems.push(Problem::new("auth.htpasswd.workers", "must be at least 1"));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        vec![Problem::new(
            key,
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    let db = HtpasswdDb::parse(&text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| {
                Problem::new(
                    key,
                    format!("{} line {}: {}", path.display(), e.line, e.message),
                )
            })
            .collect::<Vec<_>>()
    });
    match db {
        Ok(db) if problems.is_empty() => Ok(HtpasswdConfig {
            path,
            realm: file.realm.clone(),
            db,
            workers: file.workers.unwrap_or(threads),
        }),
        Ok(_) => Err(problems),
        Err(mut more) => {
            problems.append(&mut more);
            Err(problems)
        }
    }
}
