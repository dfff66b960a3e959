//! docker, podman and containerd's `ctr` through Portcullis over TLS, each trusting the
//! gateway the way it documents: Basic auth, token auth with anonymous pulls, and client
//! certificates. The same scenarios run for each engine ([`common::engines::Engine`]); each
//! refusal must show the engine's usual error text, never an HTML page or a JSON parse error.

use crate::common;

use base64::Engine as _;

use common::containerd::Containerd;
use common::docker::Docker;
use common::engines::{image_archive, registry_digest, Engine, Refusal};
use common::podman::Podman;
use common::tokens::Setup;
use common::{Pki, Stack};

/// The gateway on IPv4 and IPv6 loopback (docker reaches it on `::1`).
const LISTEN: &str = r#"listen = ["127.0.0.1:{PORT}", "[::1]:{PORT}"]"#;

/// A refusal's text: the engine's usual words for it, and no trace of a body the engine
/// could not read.
fn assert_says(engine: &dyn Engine, refusal: Refusal, text: &str) {
    let lower = text.to_lowercase();
    assert!(
        lower.contains(engine.says(refusal)),
        "{} should say {:?} for {refusal:?}; it said:\n{text}",
        engine.name(),
        engine.says(refusal)
    );
    for sign in ["invalid character", "<html", "<!doctype"] {
        assert!(!lower.contains(sign), "{}: {text}", engine.name());
    }
}

/// Loads an image as `reference`; its local ID.
fn load(engine: &dyn Engine, reference: &str, seed: u64) -> String {
    let work = tempfile::tempdir().unwrap();
    engine.load(&image_archive(work.path(), reference, seed));
    engine
        .image_id(reference)
        .unwrap_or_else(|| panic!("{}: {reference} was not loaded", engine.name()))
}

/// Pushes `reference`, checks the registry holds it, removes the local image, pulls it
/// back, and checks the local ID is what it was.
fn push_remove_pull(engine: &dyn Engine, stack: &Stack, reference: &str) {
    let id = engine
        .image_id(reference)
        .expect("the image is local before the push");
    if let Err(e) = engine.push(reference) {
        panic!("{} push {reference}: {e}", engine.name());
    }
    let (repo, tag) = reference
        .split_once('/')
        .and_then(|(_, path)| path.rsplit_once(':'))
        .unwrap();
    assert!(
        registry_digest(&stack.registry, repo, tag).is_some(),
        "the registry holds {repo}:{tag} after {}'s push",
        engine.name()
    );
    engine.remove(reference);
    assert_eq!(engine.image_id(reference), None, "{reference} was removed");
    if let Err(e) = engine.pull(reference) {
        panic!("{} pull {reference}: {e}", engine.name());
    }
    assert_eq!(
        engine.image_id(reference).as_deref(),
        Some(id.as_str()),
        "{} pulled back the image it pushed",
        engine.name()
    );
}

/// htpasswd Basic auth: refused while the gateway's CA is not trusted; a wrong password
/// refused; login, push, remove, pull; after logout a pull needs credentials again.
fn basic_auth(engine: &dyn Engine) {
    let setup = Setup::new();
    let htpasswd = setup.dir.path().join("htpasswd");
    let config = format!(
        "{LISTEN}\n[auth.htpasswd]\npath = \"{}\"\n",
        htpasswd.display()
    );
    let stack = Stack::start_with_pki(Pki::for_engines(), &config, "");
    let host = engine.registry_host(stack.gw.port);
    let reference = format!("{host}/team-a/app:v1");
    load(engine, &reference, 1);

    engine.trust(&host, None, None);
    let untrusted = engine
        .login(&host, "alice", "wonderland")
        .and_then(|_| engine.push(&reference))
        .unwrap_err();
    assert_says(engine, Refusal::UntrustedCertificate, &untrusted);

    engine.trust(&host, Some(stack.ca()), None);
    let wrong = engine
        .login(&host, "alice", "not-her-password")
        .and_then(|_| engine.push(&reference))
        .unwrap_err();
    assert_says(engine, Refusal::WrongPassword, &wrong);

    engine.login(&host, "alice", "wonderland").unwrap();
    push_remove_pull(engine, &stack, &reference);

    engine.logout(&host);
    engine.remove(&reference);
    let anonymous = engine.pull(&reference).unwrap_err();
    assert_says(engine, Refusal::NoCredentials, &anonymous);
}

/// Token auth: a wrong password refused; login, push, remove, pull; then, logged out, an
/// anonymous pull of a public image works and pushing a new one is denied.
fn token_auth_and_anonymous_pull(engine: &dyn Engine) {
    let setup = Setup::new();
    let stack = Stack::start_with_pki(Pki::for_engines(), &setup.config(LISTEN), "");
    let host = engine.registry_host(stack.gw.port);
    engine.trust(&host, Some(stack.ca()), None);
    let private = format!("{host}/team-a/app:v1");
    let public = format!("{host}/public/app:v1");
    load(engine, &private, 2);

    let wrong = engine
        .login(&host, "alice", "not-her-password")
        .and_then(|_| engine.push(&private))
        .unwrap_err();
    assert_says(engine, Refusal::WrongPassword, &wrong);

    engine.login(&host, "alice", "wonderland").unwrap();
    push_remove_pull(engine, &stack, &private);
    engine.tag(&private, &public);
    engine.push(&public).unwrap();

    engine.logout(&host);
    engine.remove(&public);
    engine
        .pull(&public)
        .unwrap_or_else(|e| panic!("{}: anonymous pull of {public}: {e}", engine.name()));
    let unseen = format!("{host}/public/unseen:v1");
    engine.tag(&public, &unseen);
    let denied = engine.push(&unseen).unwrap_err();
    assert_says(engine, Refusal::PushDenied, &denied);
}

/// Client certificates (`[tls.client_auth]`, required): push and pull with `alice`'s
/// certificate beside the CA; without it the handshake is refused.
fn client_certificate(engine: &dyn Engine) {
    let pki = Pki::for_engines();
    let client_auth = format!(
        "[tls.client_auth]\ncas = [\"{}\"]\n",
        pki.set.ca_cert.display()
    );
    let alice = pki.client("alice");
    let stack = Stack::start_with_pki(pki, LISTEN, &client_auth);
    let host = engine.registry_host(stack.gw.port);
    let reference = format!("{host}/team-a/app:v1");
    load(engine, &reference, 3);

    engine.trust(&host, Some(stack.ca()), None);
    let refused = engine.push(&reference).unwrap_err();
    assert_says(engine, Refusal::NoClientCertificate, &refused);

    engine.trust(&host, Some(stack.ca()), Some(&alice));
    push_remove_pull(engine, &stack, &reference);
}

#[test]
fn docker_basic_auth() {
    basic_auth(&Docker::start());
}

#[test]
fn docker_token_auth_and_anonymous_pull() {
    token_auth_and_anonymous_pull(&Docker::start());
}

#[test]
fn docker_client_certificate() {
    client_certificate(&Docker::start());
}

#[test]
fn podman_basic_auth() {
    basic_auth(&Podman::new());
}

#[test]
fn podman_token_auth_and_anonymous_pull() {
    token_auth_and_anonymous_pull(&Podman::new());
}

#[test]
fn podman_client_certificate() {
    client_certificate(&Podman::new());
}

#[test]
fn containerd_basic_auth() {
    basic_auth(&Containerd::start());
}

#[test]
fn containerd_token_auth_and_anonymous_pull() {
    token_auth_and_anonymous_pull(&Containerd::start());
}

#[test]
fn containerd_client_certificate() {
    client_certificate(&Containerd::start());
}

/// `docker login` against the token service keeps an identity token (the refresh token),
/// not the password, and the daemon trades it for access tokens on push and pull
/// (`POST /auth/token`, `grant_type=refresh_token`).
#[test]
fn docker_login_keeps_a_refresh_token_not_the_password() {
    let docker = Docker::start();
    let setup = Setup::new();
    let stack = Stack::start_with_pki(Pki::for_engines(), &setup.config(LISTEN), "");
    let host = docker.registry_host(stack.gw.port);
    docker.trust(&host, Some(stack.ca()), None);
    let reference = format!("{host}/team-a/refreshed:v1");
    load(&docker, &reference, 4);

    docker.login(&host, "alice", "wonderland").unwrap();
    let config = docker.client_config();
    let entry = &config["auths"][host.as_str()];
    let identity = entry["identitytoken"].as_str().unwrap_or_default();
    let refresh = common::tokens::payload(identity);
    assert_eq!(refresh["sub"], "alice", "{config}");
    let auth = entry["auth"].as_str().unwrap_or_default();
    let stored = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(stored, b"alice:", "the password is not stored: {config}");

    push_remove_pull(&docker, &stack, &reference);
    let log = stack.gw.proc.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("method=POST path=/auth/token status=200")
                && l.contains("user=\"alice\"")),
        "the daemon used the refresh token:\n{log}"
    );
}

/// docker with machine identities, through the token service: `docker login -u oidc` with
/// a freshly minted OIDC token as the password, then `docker login -u 'robot$ci-build'`
/// with a robot secret; each pushes, removes and pulls its image.
#[test]
fn docker_logs_in_with_an_oidc_token_and_a_robot_secret() {
    use common::oidc_issuer::{Issuer, SigningKey};
    let docker = Docker::start();
    let setup = Setup::new();
    let pki = Pki::for_engines();
    let key = SigningKey::es256("k-1");
    let issuer = Issuer::start(&pki, &[&key]);
    let robots = setup.dir.path().join("robots.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["robot", "add", "ci-build", "--file"])
        .arg(&robots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let machines = format!(
        "[auth.robots]\npath = \"{}\"\n[[auth.oidc]]\nname = \"ci\"\nissuer = \"{}\"\naudience = \"registry.test\"\nca = \"{}\"\n\
         [[acl.rules]]\noidc = {{ issuer = \"ci\", claims = {{ repository_owner = \"acme\" }} }}\n\
         repositories = [\"team-a/${{claims.project}}\"]\nactions = [\"pull\", \"push\"]\n\
         [[acl.rules]]\nrobots = [\"ci-*\"]\nrepositories = [\"team-a/*\"]\nactions = [\"pull\", \"push\"]\n",
        robots.display(),
        issuer.url,
        pki.set.ca_cert.display()
    );
    let stack = Stack::start_with_pki(pki, &format!("{}\n{machines}", setup.config(LISTEN)), "");
    let host = docker.registry_host(stack.gw.port);
    docker.trust(&host, Some(stack.ca()), None);

    let now = portcullis::auth::token::now();
    let token = key.mint(&serde_json::json!({
        "iss": issuer.url, "aud": "registry.test", "sub": "repo:acme/oidc-app",
        "iat": now, "nbf": now, "exp": now + 300,
        "repository_owner": "acme", "project": "oidc-app",
    }));
    let reference = format!("{host}/team-a/oidc-app:v1");
    load(&docker, &reference, 5);
    docker.login(&host, "oidc", &token).unwrap();
    push_remove_pull(&docker, &stack, &reference);
    docker.logout(&host);

    let reference = format!("{host}/team-a/robot-app:v1");
    load(&docker, &reference, 6);
    let wrong = docker
        .login(&host, "robot$ci-build", "pcr_wrong")
        .unwrap_err();
    assert_says(&docker, Refusal::WrongPassword, &wrong);
    docker.login(&host, "robot$ci-build", &secret).unwrap();
    push_remove_pull(&docker, &stack, &reference);
    let log = stack.gw.proc.log_text();
    assert!(
        log.contains("ci:repo:acme/oidc-app") && log.contains("robot$ci-build"),
        "{log}"
    );
}
