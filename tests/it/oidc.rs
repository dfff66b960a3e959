//! Workload identity end to end: a local OIDC issuer (HTTPS, discovery, JWKS with RS256 and
//! ES256 keys, rotation), skopeo pushing and pulling through the real registry with a
//! freshly minted token as its password, and every refusal.

use crate::common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::oidc_issuer::{Issuer, SigningKey};
use common::tokens::basic;
use common::{skopeo, Pki, Stack};
use serde_json::{json, Value};

const AUDIENCE: &str = "registry.test";

fn now() -> u64 {
    portcullis::auth::token::now()
}

/// Claims of a CI job of `acme/app`, valid for five minutes from now.
fn claims(issuer: &str) -> Value {
    let t = now();
    json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "repo:acme/app:ref:refs/heads/main",
        "iat": t, "nbf": t, "exp": t + 300,
        "repository_owner": "acme", "project": "app", "ref": "refs/heads/main",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

/// The gateway trusting `issuer` as `ci` (keys fetched, refreshes at least 1 s apart) and
/// a second, file-based issuer `other`; `acme` jobs on main may push `team-a/<project>`.
/// The throttle is opened wide: these tests send many bad tokens from one address on
/// purpose (throttling of OIDC failures is tested with the other methods' in auth.rs).
fn stack(pki: Pki, issuer: &Issuer, other_jwks: &std::path::Path) -> Stack {
    let ca = pki.set.ca_cert.display().to_string();
    Stack::start_with_pki(
        pki,
        &format!(
            r#"
[auth.throttle]
max_failures = 1000
[audit]
path = "{audit}"
[[auth.oidc]]
name = "ci"
issuer = "{url}"
audience = "{AUDIENCE}"
ca = "{ca}"
max_lifetime = 600
jwks_min_refresh = 1
[[auth.oidc]]
name = "other"
issuer = "https://other.test"
audience = "{AUDIENCE}"
jwks_file = "{other}"
[[acl.rules]]
comment = "acme's main branch pushes its project"
oidc = {{ issuer = "ci", claims = {{ repository_owner = "acme", ref = "refs/heads/*" }} }}
repositories = ["team-a/${{claims.project}}"]
actions = ["pull", "push"]
"#,
            url = issuer.url,
            other = other_jwks.display(),
            audit = other_jwks.with_file_name("audit.log").display()
        ),
        "",
    )
}

/// `GET /v2/` as `user` with `token` as the password: authentication only.
fn base(stack: &Stack, user: &str, token: &str) -> u16 {
    stack
        .request("GET", "/v2/", &[&basic(&format!("{user}:{token}"))])
        .status
}

/// Tags of `team-a/app` (authentication and the rules) as `user`, `token`.
fn v2(stack: &Stack, user: &str, token: &str) -> u16 {
    stack
        .request(
            "GET",
            "/v2/team-a/app/tags/list",
            &[&basic(&format!("{user}:{token}"))],
        )
        .status
}

#[test]
fn skopeo_pushes_and_pulls_with_a_minted_token_and_bad_tokens_are_refused() {
    let pki = Pki::new();
    let es = SigningKey::es256("es-1");
    let rs = SigningKey::rs256("rs-1");
    let issuer = Issuer::start(&pki, &[&es, &rs]);
    let dir = tempfile::tempdir().unwrap();
    let other_key = SigningKey::es256("other-1");
    let other_jwks = dir.path().join("other.json");
    std::fs::write(&other_jwks, json!({"keys": [other_key.jwk]}).to_string()).unwrap();
    let stack = stack(pki, &issuer, &other_jwks);
    let good = claims(&issuer.url);

    let token = es.mint(&good);
    let creds = format!("oidc:{token}");
    skopeo::round_trip_content(
        &stack.gw.host(),
        &stack.pki.client_cert_dir(),
        &[&creds],
        b"oidc layer",
    );
    assert_eq!(
        v2(&stack, "ci", &rs.mint(&good)),
        200,
        "RS256, issuer named"
    );

    let refused = [
        (
            "wrong audience",
            es.mint(&with(good.clone(), "aud", json!("elsewhere"))),
        ),
        (
            "unknown issuer",
            es.mint(&with(good.clone(), "iss", json!("https://evil.test"))),
        ),
        (
            "expired",
            es.mint(&with(good.clone(), "exp", json!(now() - 120))),
        ),
        (
            "not yet valid",
            es.mint(&with(good.clone(), "nbf", json!(now() + 120))),
        ),
        (
            "lifetime too long",
            es.mint(&with(good.clone(), "exp", json!(now() + 3600))),
        ),
        ("unknown kid", es.mint_as("nobody", &good)),
        (
            "signed by another key",
            SigningKey::es256("es-1").mint(&good),
        ),
        (
            "alg none",
            unsigned(json!({"alg": "none", "kid": "es-1"}), &good, b""),
        ),
        (
            "HS256 with the public key",
            hs256_with(&es.jwk.to_string(), &good),
        ),
        (
            "issuer B's token as issuer A",
            other_key.mint(&with(good.clone(), "iss", json!("https://other.test"))),
        ),
        ("garbage", "not-a-token".to_string()),
    ];
    for (what, token) in &refused {
        let user = if *what == "issuer B's token as issuer A" {
            "ci"
        } else {
            "oidc"
        };
        assert_eq!(v2(&stack, user, token), 401, "{what}");
    }
    assert_eq!(
        v2(&stack, "other", &es.mint(&good)),
        401,
        "issuer A's token as issuer B"
    );
    let as_other = other_key.mint(&with(good.clone(), "iss", json!("https://other.test")));
    assert_eq!(
        v2(&stack, "other", &as_other),
        403,
        "other's tokens are valid but no rule names them"
    );
    let fork = with(good.clone(), "repository_owner", json!("evil"));
    assert_eq!(v2(&stack, "oidc", &es.mint(&fork)), 403, "a claim mismatch");
    let other_project = with(good.clone(), "project", json!("other"));
    assert_eq!(
        v2(&stack, "oidc", &es.mint(&other_project)),
        403,
        "${{claims.project}} is another repository"
    );
    let numeric = with(good.clone(), "repository_owner", json!(7));
    assert_eq!(
        v2(&stack, "oidc", &es.mint(&numeric)),
        403,
        "a claim that is not a string never matches"
    );

    let log = stack.gw.proc.log_text();
    for reason in [
        "wrong audience",
        "is not trusted",
        "expired",
        "not yet valid",
        "max_lifetime",
        "key id",
        "bad signature",
        "presented as issuer",
    ] {
        assert!(log.contains(reason), "{reason} not logged:\n{log}");
    }
    assert!(
        log.contains("user=ci:repo:acme/app:ref:refs/heads/main")
            || log.contains("\"user\":\"ci:repo:acme/app"),
        "{log}"
    );
    assert!(
        !log.contains(&token[token.len() - 40..]),
        "a token reached the log"
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let push: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event"] == "push")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(push["user"], "ci:repo:acme/app:ref:refs/heads/main");
    assert!(
        !audit.contains(&token[token.len() - 40..]),
        "a token reached the audit log"
    );
    let (_, metrics) = stack.gw.admin_get("/metrics");
    assert!(
        metrics.contains("portcullis_auth_total{method=\"oidc\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_oidc_keys{issuer=\"ci\"} 2"),
        "{metrics}"
    );
}

#[test]
fn rotation_outage_and_random_kids() {
    let pki = Pki::new();
    let first = SigningKey::es256("k-1");
    let issuer = Issuer::start(&pki, &[&first]);
    let dir = tempfile::tempdir().unwrap();
    let other_jwks = dir.path().join("other.json");
    std::fs::write(
        &other_jwks,
        json!({"keys": [SigningKey::es256("o").jwk]}).to_string(),
    )
    .unwrap();
    let stack = stack(pki, &issuer, &other_jwks);
    let good = claims(&issuer.url);
    assert_eq!(base(&stack, "oidc", &first.mint(&good)), 200);

    let second = SigningKey::es256("k-2");
    issuer.set_keys(&[&first, &second]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        base(&stack, "oidc", &second.mint(&good)),
        200,
        "a new kid fetches the rotated keys"
    );

    let before = issuer.fetches();
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            v2(
                &stack,
                "oidc",
                &first.mint_as(&format!("random-{i}"), &good),
            )
        })
        .collect();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let burst = issuer.fetches() - before;
    assert!(burst <= 3, "40 unknown kids caused {burst} key fetches");

    issuer.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        base(&stack, "oidc", &first.mint_as("gone", &good)),
        401,
        "the fetch fails"
    );
    assert_eq!(
        base(&stack, "oidc", &second.mint(&good)),
        200,
        "known keys work with the issuer down"
    );
    let (_, metrics) = stack.gw.admin_get("/metrics");
    assert!(
        metrics.contains("portcullis_oidc_jwks_fetches{issuer=\"ci\",outcome=\"error\"} 1"),
        "{metrics}"
    );
    assert!(stack
        .gw
        .proc
        .log_text()
        .contains("OIDC signing keys not fetched; keeping the 2 in hand"));
}

#[test]
fn the_token_endpoint_takes_an_oidc_token_as_bearer_or_password() {
    let setup = common::tokens::Setup::new();
    let pki = Pki::new();
    let key = SigningKey::es256("k-1");
    let issuer = Issuer::start(&pki, &[&key]);
    let rules = format!(
        "[[auth.oidc]]\nname = \"ci\"\nissuer = \"{}\"\naudience = \"{AUDIENCE}\"\nca = \"{}\"\n\
         [[acl.rules]]\noidc = {{ issuer = \"ci\", claims = {{ repository_owner = \"acme\" }} }}\n\
         repositories = [\"team-a/${{claims.project}}\"]\nactions = [\"pull\", \"push\"]\n",
        issuer.url,
        pki.set.ca_cert.display()
    );
    let stack = Stack::start_with_pki(pki, &format!("{}\n{rules}", setup.config("")), "");
    let token = key.mint(&claims(&issuer.url));
    let path = format!(
        "/auth/token?service={}&scope=repository:team-a/app:pull,push",
        common::tokens::SERVICE
    );
    let r = stack.request("GET", &path, &[&format!("Authorization: Bearer {token}")]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let granted = common::tokens::payload(r.json()["token"].as_str().unwrap());
    assert_eq!(granted["sub"], "ci:repo:acme/app:ref:refs/heads/main");
    assert_eq!(granted["access"][0]["actions"], json!(["pull", "push"]));
    let form = format!(
        "grant_type=password&username=oidc&password={token}&service={}&access_type=offline&scope=repository%3Ateam-a%2Fapp%3Apull",
        common::tokens::SERVICE
    );
    let r = common::tokens::post_form(&stack, &form);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert!(
        r.json().get("refresh_token").is_none(),
        "no refresh token outlives the OIDC token"
    );
    let bad = stack.request("GET", &path, &[&format!("Authorization: Bearer {token}x")]);
    assert_eq!(bad.status, 401);
}

fn unsigned(header: Value, claims: &Value, signature: &[u8]) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The classic confusion attack: HS256 "signed" with the issuer's public key as secret.
fn hs256_with(public: &str, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!(
        "{}.{}",
        part(&json!({"alg": "HS256", "kid": "es-1"})),
        part(claims)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes());
    let mac = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

#[test]
fn explain_shows_what_an_oidc_identity_and_a_robot_may_do() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("robots.toml"), "").unwrap();
    let extra = format!(
        r#"
[auth.robots]
path = "{robots}"
[[auth.oidc]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
audience = "{AUDIENCE}"
[[acl.rules]]
comment = "acme main pushes"
oidc = {{ issuer = "github", claims = {{ repository_owner = "acme", ref = "refs/heads/main" }} }}
repositories = ["${{claims.repository}}"]
actions = ["pull", "push"]
[[acl.rules]]
comment = "ci robots pull"
robots = ["ci-*"]
repositories = ["acme/*"]
actions = ["pull"]
"#,
        robots = dir.path().join("robots.toml").display()
    );
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        common::gateway_config(5443, "http://127.0.0.1:5000", &pki, &extra, ""),
    )
    .unwrap();
    let explain = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("explain")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let main = "repository=acme/app,repository_owner=acme,ref=refs/heads/main,sub=repo:acme/app";
    let (ok, text) = explain(&[
        "--oidc",
        "github",
        "--claims",
        main,
        "--request",
        "PUT /v2/acme/app/manifests/1",
    ]);
    assert!(
        ok && text.contains("allowed by rule 1 (acme main pushes)"),
        "{text}"
    );
    let branch = main.replace("refs/heads/main", "refs/heads/dev");
    let (ok, text) = explain(&[
        "--oidc",
        "github",
        "--claims",
        &branch,
        "--scope",
        "repository:acme/app:push",
    ]);
    assert!(!ok && text.contains("default deny"), "{text}");
    let (ok, text) = explain(&[
        "--robot",
        "ci-build",
        "--scope",
        "repository:acme/app:pull,push",
    ]);
    assert!(
        !ok && text.contains("pull repository:acme/app: allowed by rule 2")
            && text.contains("denied by rule 2"),
        "{text}"
    );
    let (ok, text) = explain(&["--user", "ci-build", "--scope", "repository:acme/app:pull"]);
    assert!(
        !ok && text.contains("default deny"),
        "a user is not the robot: {text}"
    );
    let (ok, text) = explain(&[
        "--oidc",
        "github",
        "--claims",
        "oops",
        "--scope",
        "repository:acme/app:pull",
    ]);
    assert!(!ok && text.contains("not name=value"), "{text}");
}

/// An issuer that is down when the gateway starts: it starts anyway, refuses tokens of that
/// issuer (keys cannot be had), serves everything else, and counts the failed fetch.
#[test]
fn an_issuer_down_at_start_up_does_not_stop_the_gateway() {
    let pki = Pki::new();
    let key = SigningKey::es256("k-1");
    let issuer = Issuer::start(&pki, &[&key]);
    issuer.stop();
    std::thread::sleep(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let other_jwks = dir.path().join("other.json");
    std::fs::write(&other_jwks, json!({"keys": [key.jwk]}).to_string()).unwrap();
    let stack = stack(pki, &issuer, &other_jwks);
    assert_eq!(stack.request("GET", "/", &[]).status, 200);
    assert_eq!(base(&stack, "oidc", &key.mint(&claims(&issuer.url))), 401);
    let via_file = key.mint(&with(
        claims(&issuer.url),
        "iss",
        json!("https://other.test"),
    ));
    assert_eq!(
        base(&stack, "other", &via_file),
        200,
        "the file-based issuer still works"
    );
    let (_, metrics) = stack.gw.admin_get("/metrics");
    assert!(
        metrics.contains("portcullis_oidc_jwks_fetches{issuer=\"ci\",outcome=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_oidc_keys{issuer=\"ci\"} 0"),
        "{metrics}"
    );
}
