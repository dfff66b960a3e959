use super::*;
use crate::cli::devcerts::{issue, Kind, Spec};

struct Keys {
    signer: Signer,
    own: TrustedKey,
    key_pem: String,
    verifier: Verifier,
}

fn keys() -> Keys {
    let issued = issue(&Spec::new("token signer", &[], Kind::Server, 30), None).unwrap();
    let der = rustls_pki_types::CertificateDer::from(pem_der(&issued.cert_pem()));
    let (signer, own) = Signer::new(
        "portcullis".into(),
        "registry.test".into(),
        Duration::from_secs(300),
        Duration::from_secs(3600),
        issued.key_pem().as_bytes(),
        &[der.as_ref()],
    )
    .unwrap();
    let verifier = Verifier {
        service: "registry.test".into(),
        keys: vec![own.clone()],
    };
    Keys {
        signer,
        own,
        key_pem: issued.key_pem(),
        verifier,
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn claims() -> Claims {
    let now = now();
    Claims {
        iss: "portcullis".into(),
        sub: "alice".into(),
        aud: "registry.test".into(),
        exp: now + 300,
        nbf: now - 1,
        iat: now,
        jti: "j".into(),
        access: vec![AccessEntry {
            kind: "repository".into(),
            name: "team-a/app".into(),
            actions: vec!["pull".into()],
        }],
        auth_method: None,
    }
}

/// `jsonwebtoken::encode` with the gateway's JWT crypto installed.
fn encode<T: serde::Serialize>(
    header: &Header,
    claims: &T,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<String> {
    crate::auth::jwt_crypto::install();
    jsonwebtoken::encode(header, claims, key)
}

/// Signs `claims` with the test key, as an attacker who holds it (or not) would.
fn forge(keys: &Keys, claims: &Claims, kid: Option<String>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid;
    encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(keys.key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[test]
fn issued_tokens_verify_and_grant_exactly_their_access() {
    let k = keys();
    let token = k
        .signer
        .access_token(
            "alice",
            &[(
                Resource::Repository("team-a/app".into()),
                vec![Action::Pull, Action::Push],
            )],
        )
        .unwrap();
    let grant = k.verifier.verify(&token).unwrap();
    assert_eq!(grant.subject, "alice");
    assert!(grant.allows(&Resource::Repository("team-a/app".into()), Action::Push));
    assert!(!grant.allows(&Resource::Repository("team-a/app".into()), Action::Delete));
    assert!(!grant.allows(&Resource::Repository("team-a/other".into()), Action::Pull));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), k.own.kid.as_deref());
    assert_eq!(header.x5c.map(|c| c.len()), Some(1));
}

#[test]
fn forged_tokens_are_refused() {
    let k = keys();
    let other = keys();
    let good = claims();
    assert!(
        k.verifier
            .verify(&forge(&k, &good, k.own.kid.clone()))
            .is_ok(),
        "control: the real key works"
    );

    let wrong_key = forge(&other, &good, k.own.kid.clone());
    assert_eq!(
        k.verifier.verify(&wrong_key).unwrap_err().0,
        "bad signature"
    );
    assert!(
        k.verifier.verify(&forge(&other, &good, None)).is_err(),
        "no kid, wrong key"
    );

    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(&serde_json::to_vec(&good).unwrap())
    );
    assert!(k.verifier.verify(&none).is_err());

    // HS256 keyed with the public key bytes (the classic algorithm-confusion attack).
    let public_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        k.signer.x5c[0]
    );
    // Signed by hand: the gateway's JWT crypto makes no HS256 signature...
    let hs_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(&serde_json::to_vec(&good).unwrap())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_pem.as_bytes());
    let mac = ring::hmac::sign(&key, hs_input.as_bytes());
    let hs = format!("{hs_input}.{}", b64url(mac.as_ref()));
    assert!(k.verifier.verify(&hs).is_err());
    // ...and none at all for an algorithm other than ES256 and RS256.
    assert!(encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(public_pem.as_bytes()).unwrap(),
    )
    .is_err());

    let mut expired = good.clone();
    expired.exp = now() - LEEWAY_SECONDS - 10;
    assert_eq!(
        k.verifier.verify(&forge(&k, &expired, None)).unwrap_err().0,
        "expired"
    );
    let mut early = good.clone();
    early.nbf = now() + LEEWAY_SECONDS + 60;
    assert_eq!(
        k.verifier.verify(&forge(&k, &early, None)).unwrap_err().0,
        "not yet valid"
    );
    let mut skewed = good.clone();
    skewed.exp = now() - 10;
    assert!(
        k.verifier.verify(&forge(&k, &skewed, None)).is_ok(),
        "within the leeway"
    );
    let mut aud = good.clone();
    aud.aud = "other.service".into();
    assert_eq!(
        k.verifier.verify(&forge(&k, &aud, None)).unwrap_err().0,
        "wrong audience"
    );
    let mut iss = good.clone();
    iss.iss = "evil".into();
    assert_eq!(
        k.verifier.verify(&forge(&k, &iss, None)).unwrap_err().0,
        "wrong issuer"
    );

    // Tampered access claim: payload swapped, signature kept.
    let token = forge(&k, &good, None);
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut greedy = good.clone();
    greedy.access[0].actions = vec!["*".into()];
    let payload = b64url(&serde_json::to_vec(&greedy).unwrap());
    parts[1] = &payload;
    assert_eq!(
        k.verifier.verify(&parts.join(".")).unwrap_err().0,
        "bad signature"
    );

    for garbage in [
        "",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJFUzI1NiJ9..",
        &"A".repeat(10_000),
    ] {
        assert!(k.verifier.verify(garbage).is_err(), "{garbage:.20}");
    }
}

#[test]
fn refresh_tokens_are_not_access_tokens() {
    let k = keys();
    let refresh = k.signer.refresh_token("alice", "basic").unwrap();
    assert!(k.verifier.verify(&refresh).is_err());
    let (user, method, _) = k.signer.check_refresh_token(&refresh, &k.own).unwrap();
    assert_eq!((user.as_str(), method.as_deref()), ("alice", Some("basic")));
    let access = k.signer.access_token("alice", &[]).unwrap();
    assert!(k.signer.check_refresh_token(&access, &k.own).is_err());
}

#[test]
fn key_ids_have_the_libtrust_shape() {
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    assert_eq!(base32(b"f"), "MY");
    let k = keys();
    let kid = k.own.kid.unwrap();
    let groups: Vec<&str> = kid.split(':').collect();
    assert_eq!(groups.len(), 12, "{kid}");
    assert!(groups.iter().all(|g| g.len() == 4
        && g.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
}

#[test]
fn external_issuers_from_certificates_and_jwks() {
    let own = keys();
    let other = issue(&Spec::new("other signer", &[], Kind::Signing, 30), None).unwrap();
    let other_der = pem_der(&other.cert_pem());
    let (other_signer, _) = Signer::new(
        "other-issuer".into(),
        "registry.test".into(),
        Duration::from_secs(300),
        Duration::from_secs(300),
        other.key_pem().as_bytes(),
        &[other_der.as_ref()],
    )
    .unwrap();
    let token = other_signer
        .access_token(
            "ci",
            &[(Resource::Repository("a".into()), vec![Action::Pull])],
        )
        .unwrap();
    assert!(own.verifier.verify(&token).is_err(), "untrusted issuer");

    let by_cert = trusted_key_from_certificate("other-issuer", &other_der).unwrap();
    let verifier = Verifier {
        service: "registry.test".into(),
        keys: vec![own.own.clone(), by_cert],
    };
    assert_eq!(verifier.verify(&token).unwrap().subject, "ci");
    let impostor = Verifier {
        service: "registry.test".into(),
        keys: vec![trusted_key_from_certificate("someone-else", &other_der).unwrap()],
    };
    assert!(
        impostor.verify(&token).is_err(),
        "the key is trusted only for its issuer"
    );

    // The same key as a JWKS entry, selected by kid.
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&other_der).unwrap();
    let point = cert.public_key().subject_public_key.data.to_vec();
    let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","kid":"ci-key","alg":"ES256","use":"sig"}}]}}"#
    );
    let keys = trusted_keys_from_jwks("other-issuer", &jwks).unwrap();
    let verifier = Verifier {
        service: "registry.test".into(),
        keys,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ci-key".into());
    let claims = Claims {
        iss: "other-issuer".into(),
        ..claims()
    };
    let signed = encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(other.key_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(verifier.verify(&signed).unwrap().subject, "alice");
    header.kid = Some("unknown-key".into());
    let unknown = encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(other.key_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(
        verifier.verify(&unknown).is_err(),
        "an unknown kid matches no key"
    );
    assert!(trusted_keys_from_jwks("x", "not json").is_err());
}
