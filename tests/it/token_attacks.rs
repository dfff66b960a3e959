//! Attacks on token authentication and authorization: forged tokens and path games must
//! never reach a repository the principal is not allowed.

use crate::common;

use base64::Engine;
use common::tokens::{basic, bearer, payload, token, token_string, Setup};

#[test]
fn forged_tokens_are_refused_at_the_gateway() {
    let setup = Setup::new();
    let stack = setup.start("");
    let real = token_string(&token(
        &stack,
        Some("bob:builder"),
        &["repository:team-a/app:pull"],
    ));
    assert_eq!(
        stack
            .request("GET", "/v2/team-a/app/tags/list", &[&bearer(&real)])
            .status,
        404,
        "control"
    );
    let parts: Vec<&str> = real.split('.').collect();
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut claims = payload(&real);
    claims["access"][0]["actions"] = serde_json::json!(["pull", "push", "delete"]);
    claims["access"][0]["name"] = serde_json::json!("team-b/secret");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let other = Setup::new();
    let (foreign_key, _) = (std::fs::read(&other.key).unwrap(), ());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = jsonwebtoken::decode_header(&real).unwrap().kid;
    portcullis::auth::jwt_crypto::install();
    let wrong_key = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(&foreign_key).unwrap(),
    )
    .unwrap();
    let public = std::fs::read(&setup.cert).unwrap();
    // Signed by hand: the gateway's own JWT crypto refuses to make an HS256 signature.
    let hs256_input = format!(
        "{}.{}",
        b64(&serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        b64(&claims)
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        hs256_input.as_bytes(),
    );
    let hs256 = format!(
        "{hs256_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_ref())
    );
    let own_key = std::fs::read(&setup.key).unwrap();
    let sign = |c: &serde_json::Value| {
        jsonwebtoken::encode(
            &header,
            c,
            &jsonwebtoken::EncodingKey::from_ec_pem(&own_key).unwrap(),
        )
        .unwrap()
    };
    let now = portcullis::auth::token::now();
    let mut expired = payload(&real);
    expired["exp"] = (now - 3600).into();
    let mut early = payload(&real);
    early["nbf"] = (now + 3600).into();
    let mut wrong_aud = payload(&real);
    wrong_aud["aud"] = "elsewhere".into();
    let mut wrong_iss = payload(&real);
    wrong_iss["iss"] = "evil".into();
    let cases = [
        ("tampered", tampered),
        ("alg none", none),
        ("wrong key", wrong_key),
        ("HS256 with the public key", hs256),
        ("expired", sign(&expired)),
        ("not yet valid", sign(&early)),
        ("wrong audience", sign(&wrong_aud)),
        ("wrong issuer", sign(&wrong_iss)),
    ];
    assert_eq!(
        stack
            .request(
                "GET",
                "/v2/team-a/app/tags/list",
                &[&bearer(&sign(&payload(&real)))]
            )
            .status,
        404,
        "control: re-signed with the real key"
    );
    for (name, forged) in cases {
        let r = stack.request("GET", "/v2/team-b/secret/tags/list", &[&bearer(&forged)]);
        assert_eq!(r.status, 401, "{name}");
        assert!(
            r.header("WWW-Authenticate")
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{name}"
        );
    }
    assert!(
        !stack.registry.proc.log_text().contains("team-b/secret"),
        "no forged request reached the registry"
    );
}

#[test]
fn path_games_cannot_reach_another_repository() {
    let setup = Setup::new();
    let stack = setup.start("");
    let bob = basic("bob:builder");
    let bob_token = token_string(&token(
        &stack,
        Some("bob:builder"),
        &["repository:team-a/app:pull"],
    ));
    let attempts = [
        "/v2/team-a/../team-b/secret/manifests/v1",
        "/v2/team-a/app/../../team-b/secret/manifests/v1",
        "/v2/team-a%2f..%2fteam-b/secret/manifests/v1",
        "/v2/team-a/%2e%2e/team-b/secret/manifests/v1",
        "/v2/team-a//../team-b/secret/manifests/v1",
        "/v2//team-b/secret/manifests/v1",
        "/v2/TEAM-A/../team-b/secret/manifests/v1",
        "/v2/team-b/secret/manifests/v1/",
        "/v2/team-a/app/manifests/v1/../../../team-b/secret/manifests/v1",
        "/v2/team-a\\..\\team-b/secret/manifests/v1",
    ];
    for path in attempts {
        for auth in [&bob, &bearer(&bob_token)] {
            let r = stack.request("GET", path, &[auth]);
            assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
        }
    }
    // A cross-repository mount needs pull on the source too.
    let mount = stack.request(
        "POST",
        "/v2/team-a/app/blobs/uploads/?mount=sha256:ab&from=team-b%2Fsecret",
        &[&basic("alice:wonderland"), "Content-Length: 0"],
    );
    assert_eq!(mount.status, 403);
    let direct = stack.request("GET", "/v2/team-b/secret/manifests/v1", &[&bob]);
    assert_eq!(direct.status, 403);
    assert!(
        !stack.registry.proc.log_text().contains("team-b"),
        "nothing about team-b reached the registry"
    );
}
