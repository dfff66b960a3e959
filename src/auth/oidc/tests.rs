use super::keys::usable_keys;
use super::verify::{flatten, verify, Refusal};
use super::*;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://issuer.test";
/// The time jsonwebtoken checks `exp` and `nbf` against: the wall clock.
fn now() -> u64 {
    crate::auth::token::now()
}

/// An ES256 key: its signing key and its JWKS document with `kid`.
fn ec_key(kid: &str) -> (EncodingKey, String) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let point = pair.public_key_raw();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    (key, jwks.to_string())
}

fn settings() -> OidcIssuerSettings {
    OidcIssuerSettings {
        name: "ci".into(),
        issuer: ISSUER.into(),
        audience: "registry.test".into(),
        source: KeySource::File,
        file_keys: vec![],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256],
        leeway: 60,
        max_lifetime: 3600,
        jwks_refresh: Duration::from_secs(3600),
        jwks_min_refresh: Duration::from_secs(30),
    }
}

fn claims() -> serde_json::Value {
    json!({
        "iss": ISSUER, "aud": "registry.test", "sub": "repo:acme/app:ref:refs/heads/main",
        "iat": now() - 10, "nbf": now() - 10, "exp": now() + 290,
        "repository": "acme/app", "repository_owner": "acme", "run_attempt": 1,
        "kubernetes.io": {"namespace": "build", "serviceaccount": {"name": "pusher"}},
    })
}

fn mint(key: &EncodingKey, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    crate::auth::jwt_crypto::install();
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn unsigned(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[test]
fn a_good_token_gives_the_subject_and_string_claims() {
    let (key, jwks) = ec_key("k1");
    let keys = usable_keys(ISSUER, &jwks).unwrap();
    let id = verify(&mint(&key, "k1", &claims()), &settings(), &keys, now()).unwrap();
    assert_eq!(id.user(), "ci:repo:acme/app:ref:refs/heads/main");
    assert_eq!(id.claims["repository_owner"], "acme");
    assert_eq!(id.claims["kubernetes.io.namespace"], "build");
    assert_eq!(id.claims["kubernetes.io.serviceaccount.name"], "pusher");
    assert!(
        !id.claims.contains_key("run_attempt"),
        "numbers are not string claims"
    );
    let mut list_aud = claims();
    list_aud["aud"] = json!(["other", "registry.test"]);
    assert!(verify(&mint(&key, "k1", &list_aud), &settings(), &keys, now()).is_ok());
}

#[test]
fn every_bad_token_is_refused_with_its_reason() {
    let (key, jwks) = ec_key("k1");
    let keys = usable_keys(ISSUER, &jwks).unwrap();
    let refused = |claims: serde_json::Value| {
        verify(&mint(&key, "k1", &claims), &settings(), &keys, now()).unwrap_err()
    };
    let with = |name: &str, value: serde_json::Value| {
        let mut c = claims();
        c[name] = value;
        c
    };
    let without = |name: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let reason = |r: Refusal| r.to_string();
    assert_eq!(
        reason(refused(with("aud", json!("elsewhere")))),
        "wrong audience"
    );
    assert_eq!(
        reason(refused(with("iss", json!("https://evil.test")))),
        "wrong issuer"
    );
    assert_eq!(reason(refused(with("exp", json!(now() - 61)))), "expired");
    assert_eq!(
        reason(refused(with("nbf", json!(now() + 61)))),
        "not yet valid (nbf)"
    );
    assert!(reason(refused(with("exp", json!(now() + 3600)))).contains("max_lifetime"));
    assert!(reason(refused(without("iat"))).contains("iat"));
    assert!(reason(refused(without("sub"))).contains("missing"));
    assert!(reason(refused(with("sub", json!("")))).contains("sub"));
    assert!(reason(refused(with("iat", json!(now() + 120)))).contains("future"));

    let token = mint(&key, "k2", &claims());
    assert_eq!(
        verify(&token, &settings(), &keys, now()),
        Err(Refusal::UnknownKey)
    );
    let (other, _) = ec_key("k1");
    let forged = mint(&other, "k1", &claims());
    assert_eq!(
        reason(verify(&forged, &settings(), &keys, now()).unwrap_err()),
        "bad signature"
    );
    let none = unsigned(json!({"alg": "none", "kid": "k1"}), &claims(), b"");
    assert!(verify(&none, &settings(), &keys, now()).is_err());
    let public = serde_json::from_str::<serde_json::Value>(&jwks).unwrap()["keys"][0].to_string();
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()),
        b"x",
    );
    let hs = unsigned(
        json!({"alg": "HS256", "kid": "k1"}),
        &claims(),
        mac.as_ref(),
    );
    assert_eq!(
        reason(verify(&hs, &settings(), &keys, now()).unwrap_err()),
        "algorithm not allowed"
    );
    let rs_only = OidcIssuerSettings {
        algorithms: vec![Algorithm::RS256],
        ..settings()
    };
    let es = mint(&key, "k1", &claims());
    assert_eq!(
        reason(verify(&es, &rs_only, &keys, now()).unwrap_err()),
        "algorithm not allowed"
    );
    for garbage in ["", "a.b.c", "not a token", "..."] {
        assert!(
            verify(garbage, &settings(), &keys, now()).is_err(),
            "{garbage}"
        );
    }
}

#[test]
fn unusable_keys_are_skipped_and_an_empty_set_is_an_error() {
    let (_, jwks) = ec_key("k1");
    let mut doc: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let good = doc["keys"][0].clone();
    let mut p384 = good.clone();
    p384["crv"] = json!("P-384");
    let mut enc = good.clone();
    enc["use"] = json!("enc");
    doc["keys"] = json!([{"kty": "OKP", "crv": "Ed25519", "x": "AA"}, p384, enc, good]);
    assert_eq!(usable_keys(ISSUER, &doc.to_string()).unwrap().len(), 1);
    assert!(usable_keys(ISSUER, r#"{"keys":[]}"#).is_err());
    assert!(usable_keys(ISSUER, "<html>").is_err());
}

#[test]
fn flatten_keeps_strings_only() {
    let flat =
        flatten(&json!({"a": "x", "b": 1, "c": true, "d": ["x"], "e": {"f": "y", "g": null}}));
    assert_eq!(flat.len(), 2);
    assert_eq!((flat["a"].as_str(), flat["e.f"].as_str()), ("x", "y"));
}

use crate::background::block_on as run;

#[test]
fn tokens_are_routed_by_their_issuer_and_must_match_a_named_one() {
    let (key, jwks) = ec_key("k1");
    let ci = OidcIssuerSettings {
        file_keys: usable_keys(ISSUER, &jwks).unwrap(),
        max_lifetime: u64::MAX,
        ..settings()
    };
    let other = OidcIssuerSettings {
        name: "other".into(),
        issuer: "https://other.test".into(),
        ..ci.clone()
    };
    let oidc = Oidc::new(&[ci, other]);
    let mut fresh = claims();
    let now = crate::auth::token::now();
    fresh["iat"] = json!(now);
    fresh["nbf"] = json!(now);
    fresh["exp"] = json!(now + 300);
    let token = mint(&key, "k1", &fresh);
    assert!(oidc.is_oidc_user("oidc") && oidc.is_oidc_user("other") && !oidc.is_oidc_user("alice"));
    assert_eq!(run(oidc.verify(&token, None)).unwrap().issuer, "ci");
    assert!(run(oidc.verify(&token, Some("oidc"))).is_ok());
    assert!(run(oidc.verify(&token, Some("ci"))).is_ok());
    let err = run(oidc.verify(&token, Some("other"))).unwrap_err();
    assert!(err.contains("presented as issuer other"), "{err}");
    fresh["iss"] = json!("https://unknown.test");
    let err = run(oidc.verify(&mint(&key, "k1", &fresh), None)).unwrap_err();
    assert!(err.contains("not trusted"), "{err}");
}

/// Wrong tokens count against the address like wrong passwords; the same one again once.
#[test]
fn bad_tokens_are_throttled_like_passwords() {
    use crate::auth::throttle::Throttle;
    use crate::auth::{Attempt, Authenticator, Failure, Require};
    let (key, jwks) = ec_key("k1");
    let issuer = OidcIssuerSettings {
        file_keys: usable_keys(ISSUER, &jwks).unwrap(),
        ..settings()
    };
    let auth = Authenticator {
        basic: None,
        robots: None,
        oidc: Some(Oidc::new(&[issuer])),
        ldap: None,
        guess_key: Default::default(),
        certificates: false,
        require: Require::All,
        throttle: Throttle::new(3, Duration::from_secs(60)),
        store: std::sync::Arc::new(crate::store::Store::memory()),
    };
    let header = |token: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("oidc:{token}"))
        )
        .into_bytes()
    };
    let attempt = |h: &[u8]| {
        let h = h.to_vec();
        crate::auth::tests::run(auth.authenticate(Attempt {
            client_ip: Some("192.0.2.7".parse().unwrap()),
            authorization: Some(&h),
            certificate: None,
        }))
    };
    let good = mint(&key, "k1", &claims());
    assert_eq!(attempt(&header(&good)).unwrap().method.label(), "oidc");
    let wrong = mint(&key, "k1", &with_aud(claims(), "elsewhere"));
    for _ in 0..5 {
        assert_eq!(
            attempt(&header(&wrong)),
            Err(Failure::BadCredentials),
            "counted once"
        );
    }
    for aud in ["a", "b"] {
        let other = mint(&key, "k1", &with_aud(claims(), aud));
        assert_eq!(attempt(&header(&other)), Err(Failure::BadCredentials));
    }
    assert!(matches!(
        attempt(&header(&good)),
        Err(Failure::Throttled { .. })
    ));
}

fn with_aud(mut claims: serde_json::Value, aud: &str) -> serde_json::Value {
    claims["aud"] = json!(aud);
    claims
}
