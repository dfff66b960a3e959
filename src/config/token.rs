//! Validating `[auth.token]`: keys loaded, signer and verifier built.

use std::path::Path;
use std::time::Duration;

use super::file::FileToken;
use super::{required, resolve_path, Problem, TokenConfig};
use crate::auth::token::{
    trusted_key_from_certificate, trusted_keys_from_jwks, Signer, TrustedKey, Verifier,
};
use crate::tls::certs::read_certificates;

/// Checks `[auth.token]`: the realm URL, the signing key and the trusted issuers.
pub fn parse_token(file: &FileToken, base: &Path) -> Result<TokenConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut need = |value: &Option<String>, key: &str, what: &str| {
        required(value, key.to_string(), what, &mut problems)
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
