//! Token authentication and per-repository authorization, end to end: skopeo through the
//! token flow, the token endpoint's answers, Bearer challenges, forged tokens, path games,
//! and the real registry in token mode accepting Portcullis' tokens.

use crate::common;

use std::path::Path;

use common::tokens::{basic, bearer, payload, post_form, token, token_string, Setup, SERVICE};
use common::{oci, skopeo, Stack};

use portcullis::registry::answers::API_VERSION_HEADER;

#[test]
fn token_endpoint_grants_what_the_acl_allows() {
    let setup = Setup::new();
    let stack = setup.start("");
    let r = token(
        &stack,
        Some("alice:wonderland"),
        &[
            "repository:team-a/app:pull,push",
            "repository:team-b/x:pull",
        ],
    );
    let body = r.json();
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let claims = payload(body["token"].as_str().unwrap());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "portcullis-test");
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}])
    );

    let bob = payload(&token_string(&token(
        &stack,
        Some("bob:builder"),
        &["repository:team-a/app:pull,push"],
    )));
    assert_eq!(
        bob["access"][0]["actions"],
        serde_json::json!(["pull"]),
        "a partial grant is a token"
    );
    let anon = payload(&token_string(&token(
        &stack,
        None,
        &[
            "repository:public/base:pull,push",
            "repository:team-a/app:pull",
        ],
    )));
    assert_eq!(anon["sub"], "");
    assert_eq!(
        anon["access"],
        serde_json::json!([{"type": "repository", "name": "public/base", "actions": ["pull"]}])
    );
    let catalog = payload(&token_string(&token(
        &stack,
        Some("admin:root-pw"),
        &["registry:catalog:*"],
    )));
    assert_eq!(catalog["access"][0]["name"], "catalog");

    let wrong = token(&stack, Some("alice:nope"), &["repository:team-a/app:pull"]);
    assert_eq!(wrong.status, 401);
    let other_service = stack.request(
        "GET",
        "/auth/token?service=elsewhere&scope=repository:team-a/app:pull",
        &[&basic("alice:wonderland")],
    );
    assert_eq!(other_service.status, 400);
}

#[test]
fn oauth2_password_and_refresh_grants() {
    let setup = Setup::new();
    let stack = setup.start("");
    let service = SERVICE;
    let r = post_form(&stack, &format!("grant_type=password&username=alice&password=wonderland&client_id=docker&access_type=offline&service={service}&scope=repository%3Ateam-a%2Fapp%3Apush%2Cpull"));
    assert_eq!(r.status, 200, "{}", r.body_text());
    let body = r.json();
    assert_eq!(body["scope"], "repository:team-a/app:pull,push");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token with access_type=offline")
        .to_string();

    let again = post_form(&stack, &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=docker&service={service}&scope=repository%3Ateam-a%2Fapp%3Apull"));
    assert_eq!(again.status, 200, "{}", again.body_text());
    assert_eq!(
        payload(again.json()["access_token"].as_str().unwrap())["sub"],
        "alice"
    );

    let as_access = stack.request("GET", "/v2/team-a/app/tags/list", &[&bearer(&refresh)]);
    assert_eq!(
        as_access.status, 401,
        "a refresh token is not an access token"
    );
    assert_eq!(
        post_form(&stack, "grant_type=password&username=alice&password=bad").status,
        401
    );
    let unsupported = post_form(&stack, "grant_type=client_credentials");
    assert_eq!(
        (unsupported.status, unsupported.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    assert_eq!(
        post_form(
            &stack,
            "grant_type=refresh_token&refresh_token=forged.token.here"
        )
        .status,
        400
    );
}

/// The token endpoint's access-log line names who got the token; a user name with control
/// characters in a password grant cannot start a line of its own.
#[test]
fn token_requests_log_the_user_and_escape_names() {
    let setup = Setup::new();
    let stack = setup.start("");
    assert_eq!(token(&stack, Some("alice:wonderland"), &[]).status, 200);
    let form = format!("grant_type=password&username=alice&password=wonderland&service={SERVICE}");
    assert_eq!(post_form(&stack, &form).status, 200);
    let forged = "x%0Aportcullis%3A%3Aaccess%3A%20request%20user%3Dadmin%0D%1B%00";
    assert_eq!(
        post_form(
            &stack,
            &format!("grant_type=password&username={forged}&password=bad")
        )
        .status,
        401
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = stack.gw.proc.log_text();
    let token_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("path=/auth/token") && l.contains("status=200"))
        .collect();
    assert_eq!(token_lines.len(), 2, "{log}");
    assert!(
        token_lines.iter().all(|l| l.contains("user=\"alice\"")),
        "{log}"
    );
    assert!(
        log.lines()
            .all(|l| !l.starts_with("portcullis::gateway::decide")
                && !l.contains('\u{1b}')
                && !l.contains('\0')),
        "no forged line: {log}"
    );
    assert!(log.contains("\\n"), "the newline is escaped: {log}");
}

#[test]
fn bearer_challenges_and_scopes_at_the_registry_api() {
    let setup = Setup::new();
    let stack = setup.start("");
    let realm = format!(
        "Bearer realm=\"https://localhost:{}/auth/token\",service=\"{SERVICE}\"",
        stack.gw.port
    );
    let ping = stack.request("GET", "/v2/", &[]);
    assert_eq!(ping.status, 401, "credentials matter, so /v2/ challenges");
    assert_eq!(ping.header("WWW-Authenticate"), Some(realm.as_str()));
    assert_eq!(ping.header(API_VERSION_HEADER), Some("registry/2.0"));

    let manifest = stack.request("GET", "/v2/team-a/app/manifests/v1", &[]);
    assert_eq!(manifest.status, 401);
    assert_eq!(
        manifest.header("WWW-Authenticate").unwrap(),
        format!("{realm},scope=\"repository:team-a/app:pull\"")
    );
    assert_eq!(
        manifest.json()["errors"][0]["detail"][0]["Name"],
        "team-a/app"
    );

    let bob = token_string(&token(
        &stack,
        Some("bob:builder"),
        &["repository:team-a/app:pull,push"],
    ));
    assert_eq!(
        stack
            .request("GET", "/v2/team-a/app/tags/list", &[&bearer(&bob)])
            .status,
        404,
        "pull allowed: the registry answers"
    );
    let push = stack.request(
        "POST",
        "/v2/team-a/app/blobs/uploads/",
        &[&bearer(&bob), "Content-Length: 0"],
    );
    assert_eq!(push.status, 401);
    assert!(
        push.header("WWW-Authenticate")
            .unwrap()
            .ends_with("scope=\"repository:team-a/app:pull,push\",error=\"insufficient_scope\""),
        "{:?}",
        push.header("WWW-Authenticate")
    );
    let garbage = stack.request("GET", "/v2/team-a/app/tags/list", &[&bearer("not.a.token")]);
    assert!(garbage
        .header("WWW-Authenticate")
        .unwrap()
        .ends_with("error=\"invalid_token\""));

    // Basic credentials on /v2/ are decided by the same ACL, without a token.
    assert_eq!(
        stack
            .request("GET", "/v2/team-a/app/tags/list", &[&basic("bob:builder")])
            .status,
        404
    );
    let denied = stack.request(
        "POST",
        "/v2/team-a/app/blobs/uploads/",
        &[&basic("bob:builder"), "Content-Length: 0"],
    );
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["errors"][0]["code"], "DENIED");
    assert_eq!(denied.header(API_VERSION_HEADER), Some("registry/2.0"));
}

#[test]
fn skopeo_through_the_token_flow() {
    let setup = Setup::new();
    let stack = setup.start("");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = oci::write_layout(
        &layout,
        "v1",
        &[oci::tar_with_file(
            "app.txt",
            &oci::random_bytes(1 << 20, 5),
        )],
    );
    let certs = stack.pki.client_cert_dir();
    skopeo::round_trip(
        &stack.gw.host(),
        &certs,
        &["alice:wonderland"],
        &layout,
        &image,
        work.path(),
    );

    let certs_arg = certs.to_str().unwrap();
    let src = format!("oci:{}:v1", layout.display());
    let bob_pull = skopeo::skopeo(
        work.path(),
        &[
            "inspect",
            "--creds",
            "bob:builder",
            "--cert-dir",
            certs_arg,
            &format!("docker://{}/team-a/app:v1", stack.gw.host()),
        ],
    );
    assert!(!bob_pull.is_empty());
    let bob_push = skopeo::skopeo_fails(
        work.path(),
        &[
            "copy",
            "--dest-creds",
            "bob:builder",
            "--dest-cert-dir",
            certs_arg,
            &src,
            &format!("docker://{}/team-a/app:bob", stack.gw.host()),
        ],
    );
    assert!(
        bob_push.contains("denied")
            || bob_push.contains("unauthorized")
            || bob_push.contains("insufficient_scope"),
        "{bob_push}"
    );

    skopeo::skopeo(
        work.path(),
        &[
            "copy",
            "--dest-creds",
            "alice:wonderland",
            "--dest-cert-dir",
            certs_arg,
            &src,
            &format!("docker://{}/public/base:v1", stack.gw.host()),
        ],
    );
    let anon_pull = skopeo::skopeo(
        work.path(),
        &[
            "inspect",
            "--no-creds",
            "--raw",
            "--cert-dir",
            certs_arg,
            &format!("docker://{}/public/base:v1", stack.gw.host()),
        ],
    );
    assert_eq!(
        oci::digest(&anon_pull),
        image.manifest.digest,
        "anonymous pull of public/*"
    );
    skopeo::skopeo_fails(
        work.path(),
        &[
            "copy",
            "--dest-no-creds",
            "--dest-cert-dir",
            certs_arg,
            &src,
            &format!("docker://{}/public/anon:v1", stack.gw.host()),
        ],
    );

    let log = stack.gw.proc.log_text();
    assert!(
        log.contains("path=/auth/token"),
        "skopeo used the token endpoint"
    );
    assert!(
        log.lines().any(|l| l.contains("method=PUT")
            && l.contains("/team-a/app/manifests/v1")
            && l.contains("user=\"alice\"")),
        "{log}"
    );
}

/// A registry in token mode that trusts `cert`.
fn token_registry(issuer: &str, service: &str, cert: &Path) -> common::Registry {
    common::Registry::start_with(&format!(
        "auth:\n  token:\n    realm: https://example.invalid/auth/token\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
        cert.display()
    ))
}

/// The registry in token mode trusting `bundle`, behind Portcullis forwarding the Bearer
/// token (so the registry verifies it as well); also the registry's own URL.
fn token_mode_stack(setup: &Setup, bundle: &Path) -> (Stack, String) {
    let registry = token_registry("portcullis-test", SERVICE, bundle);
    let url = format!("http://127.0.0.1:{}", registry.port);
    let pki = common::Pki::new();
    let gw = common::Gateway::start(
        &url,
        &pki,
        &setup.config("auth.forward_authorization = true"),
    );
    (Stack { registry, pki, gw }, url)
}

/// The status the registry at `url` answers `GET path` with, sending `headers` (curl).
fn registry_status(url: &str, path: &str, headers: &[&str]) -> String {
    let out = std::process::Command::new(common::require_tool("curl"))
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(headers.iter().flat_map(|h| ["-H", h]))
        .arg(format!("{url}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_real_registry_in_token_mode_accepts_portcullis_tokens() {
    let setup = Setup::new();
    let (stack, url) = token_mode_stack(&setup, &setup.cert);
    let alice = token_string(&token(
        &stack,
        Some("alice:wonderland"),
        &["repository:team-a/app:pull,push"],
    ));

    let get = |path: &str, headers: &[&str]| registry_status(&url, path, headers);
    assert_eq!(
        get("/v2/team-a/app/tags/list", &[]),
        "401",
        "the registry demands a token"
    );
    assert_eq!(
        get("/v2/team-a/app/tags/list", &[&bearer(&alice)]),
        "404",
        "x5c token accepted (no such repository yet)"
    );

    // The libtrust kid alone (no x5c) must also be accepted by registry 2.8.
    let claims = payload(&alice);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = jsonwebtoken::decode_header(&alice).unwrap().kid;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&setup.key).unwrap()).unwrap();
    portcullis::auth::jwt_crypto::install();
    let kid_only = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        get("/v2/team-a/app/tags/list", &[&bearer(&kid_only)]),
        "404",
        "kid-only token accepted"
    );
    let bob = token_string(&token(
        &stack,
        Some("bob:builder"),
        &["repository:team-a/app:pull"],
    ));
    assert_eq!(
        get("/v2/team-b/x/tags/list", &[&bearer(&bob)]),
        "401",
        "the registry enforces the access claim too"
    );

    // A whole push and pull by skopeo, every request checked by both.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = oci::write_layout(
        &layout,
        "v1",
        &[oci::tar_with_file("t.txt", b"two checks\n")],
    );
    skopeo::round_trip(
        &stack.gw.host(),
        &stack.pki.client_cert_dir(),
        &["alice:wonderland"],
        &layout,
        &image,
        work.path(),
    );
}

/// A signing certificate issued by an intermediate, with only the root in the registry's
/// `rootcertbundle`: the whole chain travels in `x5c`, so registry 2.8 accepts the token
/// and signing keys can rotate under one long-lived root.
#[test]
fn tokens_signed_under_an_intermediate_carry_the_chain_and_the_registry_accepts_them() {
    use portcullis::cli::devcerts::{issue, Kind, Spec};
    let setup = Setup::new();
    let root = issue(&Spec::new("token root", &[], Kind::Ca, 30), None).unwrap();
    let intermediate = issue(
        &Spec::new("token intermediate", &[], Kind::Ca, 30),
        Some(&root),
    )
    .unwrap();
    let signing = issue(
        &Spec::new("token signer 2", &[], Kind::Signing, 30),
        Some(&intermediate),
    )
    .unwrap();
    std::fs::write(&setup.key, signing.key_pem()).unwrap();
    std::fs::write(
        &setup.cert,
        format!("{}{}", signing.cert_pem(), intermediate.cert_pem()),
    )
    .unwrap();
    let root_file = setup.dir.path().join("root.crt");
    std::fs::write(&root_file, root.cert_pem()).unwrap();

    let (stack, url) = token_mode_stack(&setup, &root_file);
    let alice = token_string(&token(
        &stack,
        Some("alice:wonderland"),
        &["repository:team-a/app:pull"],
    ));
    let header = jsonwebtoken::decode_header(&alice).unwrap();
    assert_eq!(
        header.x5c.map(|c| c.len()),
        Some(2),
        "signing certificate and intermediate"
    );
    let status =
        |bearer_header: &str| registry_status(&url, "/v2/team-a/app/tags/list", &[bearer_header]);
    assert_eq!(
        status(&bearer(&alice)),
        "404",
        "accepted (no such repository yet)"
    );

    // The same claims with only the signing certificate in x5c: the registry cannot
    // reach its root and refuses (what Portcullis sent before).
    let mut leaf_only = jsonwebtoken::decode_header(&alice).unwrap();
    leaf_only.x5c = leaf_only.x5c.map(|mut c| {
        c.truncate(1);
        c
    });
    let key = jsonwebtoken::EncodingKey::from_ec_pem(signing.key_pem().as_bytes()).unwrap();
    portcullis::auth::jwt_crypto::install();
    let leaf_token = jsonwebtoken::encode(&leaf_only, &payload(&alice), &key).unwrap();
    assert_eq!(
        status(&bearer(&leaf_token)),
        "401",
        "{}",
        stack.registry.proc.log_text()
    );
}

#[test]
fn read_only_allows_only_pulls() {
    let setup = Setup::new();
    let stack = setup.start("read_only = true");
    let alice = token(
        &stack,
        Some("alice:wonderland"),
        &["repository:team-a/app:pull,push"],
    );
    assert_eq!(
        payload(&token_string(&alice))["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    let r = stack.request(
        "POST",
        "/v2/team-a/app/blobs/uploads/",
        &[&basic("alice:wonderland"), "Content-Length: 0"],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["errors"][0]["code"], "UNSUPPORTED");
    assert_eq!(
        stack
            .request(
                "GET",
                "/v2/team-a/app/tags/list",
                &[&basic("alice:wonderland")]
            )
            .status,
        404,
        "pulls still reach the registry"
    );
}

#[test]
fn explain_names_the_deciding_rule() {
    let setup = Setup::new();
    let config = setup.dir.path().join("p.toml");
    let pki = common::Pki::new();
    let text = common::gateway_config(5443, "http://127.0.0.1:5000", &pki, &setup.config(""), "");
    std::fs::write(&config, text).unwrap();
    let explain = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("explain")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = explain(&[
        "--user",
        "alice",
        "--request",
        "PUT /v2/team-a/app/manifests/1",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "push repository:team-a/app: allowed by rule 2 (team-a writes its repositories)"
        ),
        "{text}"
    );
    let (ok, text) = explain(&["--user", "bob", "--scope", "repository:team-a/app:push"]);
    assert!(
        !ok && text.contains("denied by rule 3 (everyone reads team-a)") && text.contains("DENIED"),
        "{text}"
    );
    let (ok, text) = explain(&["--scope", "repository:team-b/x:pull"]);
    assert!(
        !ok && text.contains("anonymous") && text.contains("default deny"),
        "{text}"
    );
}
