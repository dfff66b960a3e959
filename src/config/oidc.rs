//! Validating `[[auth.oidc]]`: the trusted workload-identity issuers.

use std::path::Path;
use std::time::Duration;

use super::file::FileOidc;
use super::{required, resolve_path, Problem};
use crate::auth::oidc::keys::{usable_keys, KeySource};
use crate::auth::oidc::verify::parse_algorithm;
use crate::auth::oidc::{OidcIssuerSettings, ANY_ISSUER_USER};
use crate::tls::certs::read_certificates;

/// Every issuer checked; every problem named by `auth.oidc[N].KEY`.
pub fn parse_oidc(
    files: &[FileOidc],
    base: &Path,
    has_acl: bool,
) -> Result<Vec<OidcIssuerSettings>, Vec<Problem>> {
    let mut problems = Vec::new();
    if !files.is_empty() && !has_acl {
        problems.push(Problem::new("auth.oidc", "OIDC identities are allowed only what [[acl.rules]] with oidc = { issuer = ... } give them (any repository of any CI project can mint a token for your audience); add [acl] rules"));
    }
    let mut issuers: Vec<OidcIssuerSettings> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let key = |name: &str| format!("auth.oidc[{}].{name}", index + 1);
        match parse_issuer(file, base, &key) {
            Ok(issuer) if issuers.iter().any(|i| i.name == issuer.name) => {
                problems.push(Problem::new(
                    key("name"),
                    format!("\"{}\" names two issuers", issuer.name),
                ))
            }
            Ok(issuer) => issuers.push(issuer),
            Err(mut more) => problems.append(&mut more),
        }
    }
    match problems.is_empty() {
        true => Ok(issuers),
        false => Err(problems),
    }
}

fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
}

fn parse_issuer(
    file: &FileOidc,
    base: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<OidcIssuerSettings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut need = |value: &Option<String>, name: &str, what: &str| {
        required(value, key(name), what, &mut problems).unwrap_or_default()
    };
    let name = need(
        &file.name,
        "name",
        "give a short name for rules and logs, e.g. \"github\"",
    );
    let issuer = need(
        &file.issuer,
        "issuer",
        "give the exact iss of its tokens, e.g. \"https://token.actions.githubusercontent.com\"",
    );
    let audience = need(
        &file.audience,
        "audience",
        "give the aud its tokens must carry, e.g. your registry's host name",
    );
    if !name.is_empty() && (!is_name(&name) || name == ANY_ISSUER_USER) {
        problems.push(Problem::new(key("name"), format!("\"{name}\" is not usable: use 1 to 64 of a-z 0-9 - _, other than \"{ANY_ISSUER_USER}\"")));
    }
    let https = |url: &str| url.starts_with("https://") && url.len() > "https://".len();
    let (source, file_keys) = match (&file.jwks_url, &file.jwks_file) {
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                key("jwks_file"),
                "give jwks_url or jwks_file, not both",
            ));
            (KeySource::File, vec![])
        }
        (None, Some(path)) => {
            let path = resolve_path(base, path);
            let keys = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|t| {
                    usable_keys(&issuer, &t).map_err(|e| format!("{}: {e}", path.display()))
                });
            match keys {
                Ok(keys) => (KeySource::File, keys),
                Err(e) => {
                    problems.push(Problem::new(key("jwks_file"), e));
                    (KeySource::File, vec![])
                }
            }
        }
        (url, None) => {
            if let Some(url) = url.as_deref().filter(|u| !https(u)) {
                problems.push(Problem::new(
                    key("jwks_url"),
                    format!("\"{url}\" is not an https:// URL"),
                ));
            }
            if url.is_none() && !issuer.is_empty() && !https(&issuer) {
                problems.push(Problem::new(key("issuer"), format!("\"{issuer}\" is not an https:// URL, so its keys cannot be discovered; give jwks_url or jwks_file")));
            }
            let extra_roots = match &file.ca {
                Some(ca) => read_certificates(&resolve_path(base, ca))
                    .map(|certs| certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
                    .unwrap_or_else(|e| {
                        problems.push(Problem::new(key("ca"), e));
                        vec![]
                    }),
                None => vec![],
            };
            (
                KeySource::Remote {
                    jwks_url: url.clone(),
                    extra_roots,
                },
                vec![],
            )
        }
    };
    let algorithms: Vec<_> = file
        .algorithms
        .iter()
        .filter_map(|a| {
            let parsed = parse_algorithm(a);
            if parsed.is_none() {
                problems.push(Problem::new(
                    key("algorithms"),
                    format!("\"{a}\" is not accepted; use \"RS256\" and/or \"ES256\""),
                ));
            }
            parsed
        })
        .collect();
    if file.algorithms.is_empty() {
        problems.push(Problem::new(
            key("algorithms"),
            "is empty; leave it out for [\"RS256\", \"ES256\"]",
        ));
    }
    for (value, name) in [
        (file.max_lifetime, "max_lifetime"),
        (file.jwks_refresh, "jwks_refresh"),
        (file.jwks_min_refresh, "jwks_min_refresh"),
    ] {
        if value == 0 {
            problems.push(Problem::new(key(name), "must be at least 1 second"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(OidcIssuerSettings {
        name,
        issuer,
        audience,
        source,
        file_keys,
        algorithms,
        leeway: file.leeway,
        max_lifetime: file.max_lifetime,
        jwks_refresh: Duration::from_secs(file.jwks_refresh),
        jwks_min_refresh: Duration::from_secs(file.jwks_min_refresh),
    })
}
