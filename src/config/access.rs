//! Validating `[acl]`, `read_only` and `[auth.token]`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::file::{FileAcl, FileAclInclude, FileRule, FileToken};
use super::{resolve_path, Problem, TokenConfig};
use crate::auth::acl::{Acl, Pattern, Policy, Rule, Who};
use crate::auth::scope::Action;
use crate::auth::token::{
    trusted_key_from_certificate, trusted_keys_from_jwks, Signer, TrustedKey, Verifier,
};
use crate::tls::certs::read_certificates;

/// Builds the ACL. `has_acl` false gives the policy without rules.
pub fn parse_acl(
    file: Option<&FileAcl>,
    read_only: bool,
    allow_unauthenticated: bool,
    base: &Path,
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
            parse_rule(i + 1, key, rule, &groups)
                .map_err(|mut p| problems.append(&mut p))
                .ok()
        })
        .collect();
    if problems.is_empty() {
        Ok(Acl {
            rules,
            groups,
            read_only,
            policy: Policy::Rules,
        })
    } else {
        Err(problems)
    }
}

fn parse_rule(
    number: usize,
    key: &str,
    rule: &FileRule,
    groups: &HashMap<String, Vec<String>>,
) -> Result<Rule, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |m: String| problems.push(Problem::new(format!("{key}[{number}]"), m));
    if rule.users.is_empty()
        && rule.groups.is_empty()
        && rule.certificates.is_empty()
        && !rule.anonymous
    {
        problem("says nobody: give users, groups, certificates or anonymous = true".into());
    }
    for group in rule.groups.iter().filter(|g| !groups.contains_key(*g)) {
        problem(format!("group \"{group}\" is not defined in [acl.groups]"));
    }
    if rule.repositories.is_empty() && !rule.catalog {
        problem("covers nothing: give repositories or catalog = true".into());
    }
    let repositories: Vec<Pattern> = rule
        .repositories
        .iter()
        .filter_map(|r| Pattern::parse(r).map_err(&mut problem).ok())
        .collect();
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
    let actions: Vec<Action> = rule
        .actions
        .iter()
        .filter_map(|a| {
            Action::parse(a)
                .ok_or_else(|| {
                    problem(format!(
                        "unknown action \"{a}\"; use pull, push, delete or *"
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
            anonymous: rule.anonymous,
        },
        networks,
        repositories,
        catalog: rule.catalog,
        actions,
    })
}

/// Loads the signing key and trusted issuers.
pub fn parse_token(file: &FileToken, base: &Path) -> Result<TokenConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut need =
        |value: &Option<String>, key: &str, what: &str| match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_string()),
            _ => {
                problems.push(Problem::new(key, format!("is missing; {what}")));
                None
            }
        };
    let realm = need(&file.realm, "auth.token.realm", "give the token endpoint URL as clients reach it, e.g. \"https://registry.example.com/auth/token\"");
    let service = need(
        &file.service,
        "auth.token.service",
        "give the service name, e.g. \"registry.example.com\"",
    );
    let key = need(
        &file.key,
        "auth.token.key",
        "give the signing key (make one with `portcullis keygen`)",
    );
    let cert = need(
        &file.certificate,
        "auth.token.certificate",
        "give the signing key's certificate (`portcullis keygen` writes it)",
    );
    let path = realm.as_deref().and_then(|r| {
        realm_path(r)
            .map_err(|m| problems.push(Problem::new("auth.token.realm", m)))
            .ok()
    });
    if file.expiration < 60 {
        problems.push(Problem::new(
            "auth.token.expiration",
            "must be at least 60 seconds (clients treat shorter as 60)",
        ));
    }
    let mut trusted = Vec::new();
    for (i, trust) in file.trust.iter().enumerate() {
        match load_trusted(trust, base) {
            Ok(mut more) => trusted.append(&mut more),
            Err(m) => problems.push(Problem::new(format!("auth.token.trust[{}]", i + 1), m)),
        }
    }
    let signer = match (&service, &key, &cert) {
        (Some(service), Some(key), Some(cert)) => {
            let (key, cert) = (resolve_path(base, key), resolve_path(base, cert));
            load_signer(file, service, &key, &cert)
                .map_err(|p| problems.push(p))
                .ok()
        }
        _ => None,
    };
    let (Some(realm), Some(service), Some(path), Some(signer)) = (realm, service, path, signer)
    else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut keys = vec![signer.1.clone()];
    keys.append(&mut trusted);
    let verifier = Verifier {
        service: service.clone(),
        keys,
    };
    Ok(TokenConfig {
        realm,
        path,
        service,
        signer: signer.0,
        own_key: signer.1,
        verifier,
    })
}

fn load_signer(
    file: &FileToken,
    service: &str,
    key: &Path,
    cert: &Path,
) -> Result<(Signer, TrustedKey), Problem> {
    let key_pem = std::fs::read(key).map_err(|e| {
        Problem::new(
            "auth.token.key",
            format!("cannot read {}: {e}", key.display()),
        )
    })?;
    let chain = read_certificates(cert).map_err(|m| Problem::new("auth.token.certificate", m))?;
    let chain: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
    Signer::new(
        file.issuer.clone(),
        service.to_string(),
        Duration::from_secs(file.expiration),
        Duration::from_secs(file.refresh_expiration),
        &key_pem,
        &chain,
    )
    .map_err(|m| Problem::new("auth.token.key", m))
}

fn load_trusted(
    trust: &super::file::FileTrustedIssuer,
    base: &Path,
) -> Result<Vec<TrustedKey>, String> {
    match (&trust.certificates, &trust.jwks) {
        (Some(certs), None) => read_certificates(&resolve_path(base, certs))?
            .iter()
            .map(|c| trusted_key_from_certificate(&trust.issuer, c))
            .collect(),
        (None, Some(jwks)) => {
            let path = resolve_path(base, jwks);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            trusted_keys_from_jwks(&trust.issuer, &text)
        }
        _ => Err("give exactly one of certificates or jwks".into()),
    }
}

/// The path of an `http(s)://host[:port]/path` realm; it must not be under `/v2/`.
pub fn realm_path(realm: &str) -> Result<String, String> {
    let rest = realm
        .strip_prefix("https://")
        .or_else(|| realm.strip_prefix("http://"))
        .ok_or("must be an https:// URL")?;
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.len() < 2 || path.starts_with("/v2/") || path == "/v2" {
        return Err(format!(
            "\"{realm}\" needs a path outside /v2/, e.g. /auth/token"
        ));
    }
    Ok(path.to_string())
}
