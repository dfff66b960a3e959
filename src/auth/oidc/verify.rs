//! Verifying one workload identity token against one issuer's keys (pure: the keys and the
//! time are given).
//!
//! Checked, in order: the header's algorithm is one the issuer allows (never `none` or
//! HS*, which jsonwebtoken's header parser or our crypto provider refuse anyway); a key
//! with the token's `kid` (and that algorithm) is known, else [`Refusal::UnknownKey`] so
//! the caller may refresh the keys once; the signature; `iss` exactly; `aud` contains the
//! configured audience; `exp` and `nbf` with the leeway; `iat` present and `exp - iat` at
//! most `max_lifetime`; `sub` a non-empty string.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, Validation};

use super::{OidcIdentity, OidcIssuerSettings};
use crate::auth::token::TrustedKey;

/// Why a token was refused (never contains the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key with the token's `kid` and algorithm: the issuer may have rotated its keys.
    UnknownKey,
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownKey => f.write_str("no key with the token's key id"),
            Refusal::Invalid(why) => f.write_str(why),
        }
    }
}

fn invalid(why: &str) -> Refusal {
    Refusal::Invalid(why.to_string())
}

/// The `iss` a token claims, read without verifying it, to pick the issuer whose keys
/// must verify it. `None` for anything that is not a JWT with a string `iss`.
pub fn claimed_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_string)
}

/// Verifies `token` from `issuer` with `keys` at Unix time `now`.
pub fn verify(
    token: &str,
    issuer: &OidcIssuerSettings,
    keys: &[TrustedKey],
    now: u64,
) -> Result<OidcIdentity, Refusal> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid("malformed token or unsupported algorithm"))?;
    if !issuer.algorithms.contains(&header.alg) {
        return Err(invalid("algorithm not allowed"));
    }
    let candidates: Vec<&TrustedKey> = keys
        .iter()
        .filter(|k| k.algorithm == header.alg)
        .filter(|k| match (&header.kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(Refusal::UnknownKey);
    }
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.leeway = issuer.leeway;
    validation.validate_nbf = true;
    validation.set_issuer(&[&issuer.issuer]);
    validation.set_audience(&[&issuer.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    crate::auth::jwt_crypto::install();
    let mut last = invalid("bad signature");
    let mut verified = None;
    for key in candidates {
        match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            Err(e) => last = invalid(&describe(&e)),
        }
    }
    let claims = verified.ok_or(last)?;
    let number = |name: &str| claims.get(name).and_then(serde_json::Value::as_u64);
    let (Some(exp), Some(iat)) = (number("exp"), number("iat")) else {
        return Err(invalid("exp and iat must be numbers"));
    };
    if exp.saturating_sub(iat) > issuer.max_lifetime {
        return Err(invalid("lifetime (exp - iat) longer than max_lifetime"));
    }
    if iat > now + issuer.leeway {
        return Err(invalid("issued in the future"));
    }
    let subject = claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("sub must be a non-empty string"))?;
    Ok(OidcIdentity {
        issuer: issuer.name.clone(),
        subject: subject.to_string(),
        claims: flatten(&claims),
    })
}

/// The string claims, nested objects joined with `.` (`kubernetes.io.namespace`); numbers,
/// booleans and arrays are left out, so a rule on them never matches.
pub fn flatten(claims: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match value {
            serde_json::Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            serde_json::Value::Object(map) if prefix.matches('.').count() < 8 => {
                for (key, inner) in map {
                    let name = match prefix.is_empty() {
                        true => key.clone(),
                        false => format!("{prefix}.{key}"),
                    };
                    walk(&name, inner, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk("", claims, &mut out);
    out
}

/// The error kind in words (jsonwebtoken's messages never carry the token, but be sure).
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        InvalidSignature => "bad signature",
        ExpiredSignature => "expired",
        ImmatureSignature => "not yet valid (nbf)",
        InvalidIssuer => "wrong issuer",
        InvalidAudience => "wrong audience",
        InvalidAlgorithm | InvalidAlgorithmName => "algorithm not allowed",
        MissingRequiredClaim(_) => "a required claim (exp, iss, aud, sub) is missing",
        _ => "malformed token",
    }
    .to_string()
}

/// The algorithms `[[auth.oidc]] algorithms` may name.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}
