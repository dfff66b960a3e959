//! Bearer tokens as in the Docker token authentication spec: issuing JWTs that registry:2
//! accepts, and verifying the ones clients present.
//!
//! Claims are registry:2.8's (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, `access`); the
//! JOSE header carries both `kid` (the libtrust key ID registry:2.8 looks up in its
//! `rootcertbundle`) and `x5c` (the signing certificate, which 2.8 and 3.x both verify
//! against that bundle; distribution#4533).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::registry::scope::{Action, Resource};

/// Clock skew allowed on `exp` and `nbf`, as registry:2 allows.
pub const LEEWAY_SECONDS: u64 = 60;

/// One `access` entry: `{"type":"repository","name":"team/app","actions":["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// The JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<AccessEntry>,
    /// Refresh tokens only: how the subject proved who they are (`basic`, `certificate`),
    /// so a refresh re-checks that same proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: String,
    pub access: Vec<(Resource, Vec<Action>)>,
}

impl Grant {
    /// Whether the token allows `action` on `resource` (`*` allows all).
    pub fn allows(&self, resource: &Resource, action: Action) -> bool {
        self.access.iter().any(|(r, actions)| {
            r == resource && (actions.contains(&action) || actions.contains(&Action::All))
        })
    }
}

/// Why a token was refused; never includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(pub String);

/// The libtrust key ID registry:2.8 computes for a public key: SHA-256 of the DER
/// SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12 groups of 4.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    let encoded = base32(&digest.as_ref()[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    crate::clock::unix_now().max(0) as u64
}

/// A public key the gateway trusts for tokens, with the issuer it must name.
#[derive(Clone)]
pub struct TrustedKey {
    pub issuer: String,
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// Signs access and refresh tokens with Portcullis' own key.
#[derive(Clone)]
pub struct Signer {
    pub issuer: String,
    pub service: String,
    pub expiration: Duration,
    pub refresh_expiration: Duration,
    algorithm: Algorithm,
    key: EncodingKey,
    kid: String,
    x5c: Vec<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish()
    }
}

/// Audience of refresh tokens: not the service, so neither the gateway nor registry:2
/// accepts one as an access token.
fn refresh_audience(service: &str) -> String {
    format!("{service}#refresh")
}

impl Signer {
    /// A signer for the PEM `key_pem` whose certificate is the first of `chain_der` (the
    /// rest: its issuers, all sent in `x5c` so a registry trusting only the root accepts
    /// tokens signed under an intermediate). Fails when the key is not ECDSA P-256 or RSA,
    /// or does not belong to the certificate.
    pub fn new(
        issuer: String,
        service: String,
        expiration: Duration,
        refresh_expiration: Duration,
        key_pem: &[u8],
        chain_der: &[&[u8]],
    ) -> Result<(Signer, TrustedKey), String> {
        let cert_der = chain_der.first().ok_or("no certificate")?;
        let (kind, spki, public) = public_key_of(cert_der)?;
        let (algorithm, key) = match kind {
            KeyKind::Ec => (Algorithm::ES256, EncodingKey::from_ec_pem(key_pem)),
            KeyKind::Rsa => (Algorithm::RS256, EncodingKey::from_rsa_pem(key_pem)),
        };
        let key = key.map_err(|e| {
            format!(
                "the key is not a PEM {} private key: {e}",
                if kind == KeyKind::Ec {
                    "EC P-256"
                } else {
                    "RSA"
                }
            )
        })?;
        let kid = libtrust_key_id(&spki);
        let signer = Signer {
            issuer: issuer.clone(),
            service,
            expiration,
            refresh_expiration,
            algorithm,
            key,
            kid: kid.clone(),
            x5c: chain_der.iter().map(|c| STANDARD.encode(c)).collect(),
        };
        let trusted = TrustedKey {
            issuer,
            kid: Some(kid),
            algorithm,
            key: public,
        };
        let probe = signer
            .sign(&signer.claims("probe", vec![], Duration::from_secs(60), &signer.service))
            .map_err(|e| format!("cannot sign with the key: {e}"))?;
        Verifier {
            service: signer.service.clone(),
            keys: vec![trusted.clone()],
        }
        .verify(&probe)
        .map_err(|_| "the key does not belong to the certificate".to_string())?;
        Ok((signer, trusted))
    }

    /// Seconds an access token lives.
    pub fn expires_in(&self) -> u64 {
        self.expiration.as_secs()
    }

    /// An access token for `subject` (empty for anonymous) with `access`.
    pub fn access_token(
        &self,
        subject: &str,
        access: &[(Resource, Vec<Action>)],
    ) -> Result<String, String> {
        let entries = access.iter().map(|(resource, actions)| {
            let (kind, name) = resource.type_and_name();
            AccessEntry {
                kind: kind.into(),
                name: name.into(),
                actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
            }
        });
        self.sign(&self.claims(subject, entries.collect(), self.expiration, &self.service))
    }

    /// A refresh token for `subject`, who proved who they are by `method` (`basic`,
    /// `certificate`): no access, its own audience, longer life.
    pub fn refresh_token(&self, subject: &str, method: &str) -> Result<String, String> {
        let mut claims = self.claims(
            subject,
            vec![],
            self.refresh_expiration,
            &refresh_audience(&self.service),
        );
        claims.auth_method = Some(method.to_string());
        self.sign(&claims)
    }

    /// The subject of a refresh token this signer issued, if it is valid, and how they
    /// proved who they were (`None` for tokens from before that was recorded).
    pub fn check_refresh_token(
        &self,
        token: &str,
        own: &TrustedKey,
    ) -> Result<(String, Option<String>, u64), TokenError> {
        let verifier = Verifier {
            service: refresh_audience(&self.service),
            keys: vec![own.clone()],
        };
        let claims = verifier.claims(token)?;
        Ok((claims.sub, claims.auth_method, claims.iat))
    }

    fn claims(
        &self,
        subject: &str,
        access: Vec<AccessEntry>,
        life: Duration,
        audience: &str,
    ) -> Claims {
        let now = now();
        let mut jti = [0u8; 16];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti);
        Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: audience.to_string(),
            exp: now + life.as_secs(),
            nbf: now.saturating_sub(1),
            iat: now,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
            auth_method: None,
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.x5c = Some(self.x5c.clone());
        super::jwt_crypto::install();
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Ec,
    Rsa,
}

/// The key kind, DER SubjectPublicKeyInfo, and a verification key from a certificate.
fn public_key_of(cert_der: &[u8]) -> Result<(KeyKind, Vec<u8>, DecodingKey), String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    let point = spki.subject_public_key.data.as_ref();
    match oid.as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() != Some("1.2.840.10045.3.1.7") {
                return Err("only P-256 EC keys can sign tokens (ES256)".into());
            }
            Ok((
                KeyKind::Ec,
                spki.raw.to_vec(),
                DecodingKey::from_ec_der(point),
            ))
        }
        "1.2.840.113549.1.1.1" => Ok((
            KeyKind::Rsa,
            spki.raw.to_vec(),
            DecodingKey::from_rsa_der(point),
        )),
        other => Err(format!(
            "unsupported key algorithm {other}; use ECDSA P-256 (ES256) or RSA (RS256)"
        )),
    }
}

/// Trusted keys from a certificate (an external issuer's bundle entry).
pub fn trusted_key_from_certificate(issuer: &str, cert_der: &[u8]) -> Result<TrustedKey, String> {
    let (kind, spki, key) = public_key_of(cert_der)?;
    let algorithm = if kind == KeyKind::Ec {
        Algorithm::ES256
    } else {
        Algorithm::RS256
    };
    Ok(TrustedKey {
        issuer: issuer.to_string(),
        kid: Some(libtrust_key_id(&spki)),
        algorithm,
        key,
    })
}

/// Trusted keys from a JWKS document (an external issuer).
pub fn trusted_keys_from_jwks(issuer: &str, json: &str) -> Result<Vec<TrustedKey>, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
    set.keys
        .iter()
        .map(|jwk| {
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => return Err("only EC P-256 and RSA keys are accepted".to_string()),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
            Ok(TrustedKey {
                issuer: issuer.to_string(),
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            })
        })
        .collect()
}

/// Verifies presented tokens against trusted keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The audience tokens must name.
    pub service: String,
    pub keys: Vec<TrustedKey>,
}

impl Verifier {
    /// Verifies signature, issuer, audience, `exp` and `nbf`, and reads the grant.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let claims = self.claims(token)?;
        let access = claims.access.iter().filter_map(parse_access).collect();
        Ok(Grant {
            subject: claims.sub,
            access,
        })
    }

    fn claims(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError("malformed token or unsupported algorithm".into()))?;
        let candidates: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(TokenError(
                "no trusted key for its algorithm and key id".into(),
            ));
        }
        let mut last = TokenError("no trusted key verifies it".into());
        super::jwt_crypto::install();
        for key in candidates {
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = LEEWAY_SECONDS;
            validation.validate_nbf = true;
            validation.set_issuer(&[&key.issuer]);
            validation.set_audience(&[&self.service]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "nbf"]);
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = TokenError(e.kind_description()),
            }
        }
        Err(last)
    }
}

trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for jsonwebtoken::errors::Error {
    /// The error kind only: jsonwebtoken's messages never carry the token, but be sure.
    fn kind_description(&self) -> String {
        use jsonwebtoken::errors::ErrorKind::*;
        match self.kind() {
            InvalidSignature => "bad signature",
            ExpiredSignature => "expired",
            ImmatureSignature => "not yet valid",
            InvalidIssuer => "wrong issuer",
            InvalidAudience => "wrong audience",
            InvalidAlgorithm => "algorithm not allowed",
            MissingRequiredClaim(_) => "a required claim is missing",
            _ => "malformed token",
        }
        .to_string()
    }
}

fn parse_access(entry: &AccessEntry) -> Option<(Resource, Vec<Action>)> {
    let resource = match (entry.kind.as_str(), entry.name.as_str()) {
        ("repository", name) => Resource::Repository(name.to_string()),
        ("registry", "catalog") => Resource::Catalog,
        _ => return None,
    };
    Some((
        resource,
        entry
            .actions
            .iter()
            .filter_map(|a| Action::parse(a))
            .collect(),
    ))
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
