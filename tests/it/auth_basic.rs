//! htpasswd Basic auth through the gateway, with skopeo and raw requests.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::client::{request, send, Response};
use common::{oci, skopeo, Gateway, Pki, Registry, Stack};
use portcullis::auth::htpasswd::hash_line;
use portcullis::registry::answers::API_VERSION_HEADER;

const UNAUTHORIZED_BODY: &str = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}\n";

/// Writes an htpasswd with alice/wonderland and bob/builder at `cost`.
fn htpasswd(dir: &Path, cost: u32) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    let text = format!(
        "# test users\n{}\n{}\n",
        hash_line("alice", "wonderland", cost).unwrap(),
        hash_line("bob", "builder", cost).unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A stack with Basic auth; `extra` TOML follows the `[auth.htpasswd]` section.
fn basic_stack(extra: &str) -> (Stack, tempfile::TempDir) {
    let users = tempfile::tempdir().unwrap();
    let path = htpasswd(users.path(), 4);
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n{extra}",
        path.display()
    ));
    (stack, users)
}

fn basic(user_pass: &str) -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// Headers that may differ between two answers (time), removed before comparing.
fn comparable(r: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .cloned()
        .collect();
    (r.status, headers, r.body.clone())
}

fn assert_challenge(r: &Response) {
    assert_eq!(r.status, 401, "{}", r.body_text());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"Registry Realm\"")
    );
    assert_eq!(r.header(API_VERSION_HEADER), Some("registry/2.0"));
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
}

#[test]
fn skopeo_pushes_and_pulls_with_credentials() {
    let (stack, _users) = basic_stack("");
    let certs = stack.pki.client_cert_dir();
    skopeo::round_trip_content(
        &stack.gw.host(),
        &certs,
        &["alice:wonderland"],
        &oci::random_bytes(3 << 20, 11),
    );
    let work = tempfile::tempdir().unwrap();

    let log = stack.gw.proc.log_text();
    assert!(
        log.lines().any(|l| l.contains("method=PUT")
            && l.contains("/manifests/v1")
            && l.contains("user=\"alice\"")),
        "{log}"
    );

    let err = skopeo::skopeo_fails(
        work.path(),
        &[
            "inspect",
            "--creds",
            "alice:wrong",
            "--cert-dir",
            certs.to_str().unwrap(),
            &format!("docker://{}/team/app:v1", stack.gw.host()),
        ],
    );
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
}

#[test]
fn no_credentials_gets_the_registry_challenge() {
    let (stack, _users) = basic_stack("");
    let r = stack.request("GET", "/v2/", &[]);
    assert_challenge(&r);
    assert_eq!(r.body_text(), UNAUTHORIZED_BODY);
    let head = stack.request("HEAD", "/v2/", &[]);
    assert_challenge(&head);
    assert!(head.body.is_empty());
    assert_challenge(&stack.request("GET", "/v2/team/app/manifests/v1", &[]));
    assert_eq!(
        stack.request("GET", "/", &[]).status,
        200,
        "the health check needs no credentials"
    );
    let ok = stack.request("GET", "/v2/", &[&basic("alice:wonderland")]);
    assert_eq!(ok.status, 200);
}

#[test]
fn wrong_password_and_unknown_user_are_indistinguishable() {
    let (stack, _users) = basic_stack("");
    let wrong = stack.request("GET", "/v2/", &[&basic("alice:not-it")]);
    let unknown = stack.request("GET", "/v2/", &[&basic("mallory:not-it")]);
    assert_challenge(&wrong);
    assert_eq!(comparable(&wrong), comparable(&unknown));
    assert_eq!(wrong.body_text(), UNAUTHORIZED_BODY);
}

#[test]
fn malformed_authorization_headers_are_refused_cleanly() {
    let (stack, _users) = basic_stack("[auth.throttle]\nmax_failures = 0");
    let b64 = |raw: &[u8]| base64::engine::general_purpose::STANDARD.encode(raw);
    let oversized = format!("Authorization: Basic {}", "A".repeat(8000));
    let cases = [
        format!("Authorization: Basic {}", b64(b"alicewonderland")),
        "Authorization: Basic %%%not-base64%%%".to_string(),
        format!("Authorization: Basic {}", b64(&[0xff, 0xfe, b':', b'x'])),
        format!("Authorization: Basic {}", b64(b":wonderland")),
        oversized,
        "Authorization: Bearer abc.def.ghi".to_string(),
        "Authorization: Basic".to_string(),
        "Authorization:".to_string(),
    ];
    for header in &cases {
        let r = stack.request("GET", "/v2/", &[header]);
        assert!(
            r.status == 401 || r.status == 400,
            "{header:.60}: {}",
            r.status
        );
        assert_eq!(
            r.header(API_VERSION_HEADER),
            Some("registry/2.0"),
            "{header:.60}"
        );
    }
    // Raw non-UTF-8 bytes in the header value itself.
    let mut raw = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Basic ",
        stack.gw.host()
    )
    .into_bytes();
    raw.extend_from_slice(&[0xc3, 0x28, 0xff, b'\r', b'\n', b'\r', b'\n']);
    let r = send(stack.gw.port, stack.ca(), &raw);
    assert!(r.status == 401 || r.status == 400, "{}", r.status);
    assert_eq!(
        stack
            .request("GET", "/v2/", &[&basic("alice:wonderland")])
            .status,
        200,
        "still serving"
    );
    assert!(!stack.gw.proc.log_text().contains("panicked"));
}

#[test]
fn repeated_failures_get_429_with_retry_after() {
    let (stack, _users) = basic_stack("[auth.throttle]\nmax_failures = 3\nwindow = 120");
    for i in 1..=3 {
        assert_challenge(&stack.request("GET", "/v2/", &[&basic(&format!("alice:guess{i}"))]));
    }
    for creds in ["alice:guess4", "alice:guess1", "alice:wonderland"] {
        let r = stack.request("GET", "/v2/", &[&basic(creds)]);
        assert_eq!(r.status, 429, "{creds}");
        assert_eq!(r.header(API_VERSION_HEADER), Some("registry/2.0"));
        let retry: u64 = r
            .header("Retry-After")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=120).contains(&retry), "{retry}");
        assert_eq!(r.json()["errors"][0]["code"], "TOOMANYREQUESTS");
    }
}

/// Clients resend their credentials on every request and retry refusals (containerd five
/// times per request): one mistyped password sent again and again is one guess, so the right
/// password that follows is still checked.
#[test]
fn the_same_wrong_password_repeated_is_one_failure() {
    let (stack, _users) = basic_stack("[auth.throttle]\nmax_failures = 3\nwindow = 120");
    for _ in 0..20 {
        assert_challenge(&stack.request("GET", "/v2/", &[&basic("alice:typo")]));
    }
    let log = stack.gw.proc.log_text();
    assert_eq!(
        log.matches("wrong user name or password").count(),
        1,
        "one bcrypt check"
    );
    assert_eq!(log.matches("refused credentials sent again").count(), 19);
    let r = stack.request("GET", "/v2/", &[&basic("alice:wonderland")]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    for i in 1..=3 {
        assert_challenge(&stack.request("GET", "/v2/", &[&basic(&format!("bob:guess{i}"))]));
    }
    let r = stack.request("GET", "/v2/", &[&basic("bob:guess4")]);
    assert_eq!(r.status, 429, "distinct guesses still count");
}

/// Basic auth with bcrypt cost 10 (each check long enough for parallel requests to
/// overlap) and `max_failures` per 120 s window.
fn slow_bcrypt_stack(max_failures: u32) -> (Stack, tempfile::TempDir) {
    let users = tempfile::tempdir().unwrap();
    let path = htpasswd(users.path(), 10);
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n[auth.throttle]\nmax_failures = {max_failures}\nwindow = 120",
        path.display()
    ));
    (stack, users)
}

/// `GET /v2/` sent `n` times at once from one address, request `i` with `creds(i)`;
/// the statuses in request order.
fn parallel_statuses(stack: &Stack, n: usize, creds: impl Fn(usize) -> String + Sync) -> Vec<u16> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (start, creds) = (&start, &creds);
                s.spawn(move || {
                    start.wait();
                    stack.request("GET", "/v2/", &[&basic(&creds(i))]).status
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    })
}

/// Parallel wrong passwords from one address: the throttle reserves a slot before bcrypt,
/// so no more than `max_failures` of them are checked; the rest get 429 without bcrypt.
#[test]
fn parallel_wrong_passwords_reach_bcrypt_at_most_max_failures_times() {
    let (stack, _users) = slow_bcrypt_stack(5);
    let statuses = parallel_statuses(&stack, 40, |n| format!("alice:guess{n}"));
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((wrong, throttled), (5, 35), "{statuses:?}");
    let failed_checks = stack
        .gw
        .proc
        .log_text()
        .matches("wrong user name or password")
        .count();
    assert_eq!(failed_checks, 5, "bcrypt ran for five of them only");
    let r = stack.request("GET", "/v2/", &[&basic("alice:wonderland")]);
    assert_eq!(
        r.status, 429,
        "the address stays blocked, right password or not"
    );
}

/// Parallel logins with the right (not yet cached) password from one address all pass:
/// the checks beyond the free slots wait for a running one instead of being refused, and
/// the identical credentials cost one bcrypt between them (the metric says so).
#[test]
fn parallel_right_passwords_all_pass_the_throttle() {
    let (stack, _users) = slow_bcrypt_stack(2);
    assert_eq!(bcrypt_checks(&stack), 0.0);
    let statuses = parallel_statuses(&stack, 20, |_| "alice:wonderland".to_string());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(bcrypt_checks(&stack), 1.0);
    assert_eq!(
        stack
            .request("GET", "/v2/", &[&basic("bob:builder")])
            .status,
        200
    );
    assert_eq!(bcrypt_checks(&stack), 2.0, "other credentials are checked");
}

/// `portcullis_htpasswd_bcrypt_checks_total` from the admin listener.
fn bcrypt_checks(stack: &Stack) -> f64 {
    let (status, text) = stack.gw.admin_get("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_htpasswd_bcrypt_checks_total "))
        .unwrap_or_else(|| panic!("no bcrypt counter in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn authorization_is_not_forwarded_unless_configured() {
    // A registry that itself demands the same credentials shows whether they reached it.
    let users = tempfile::tempdir().unwrap();
    let path = htpasswd(users.path(), 4);
    let registry = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: backend\n    path: {}\n",
        path.display()
    ));
    let pki = Pki::new();
    let auth = format!("[auth.htpasswd]\npath = \"{}\"\n", path.display());
    let stripped = Gateway::start(&registry.url(), &pki, &auth);
    let r = request(
        stripped.port,
        &pki.set.ca_cert,
        "GET",
        "/v2/",
        &[&basic("alice:wonderland")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"backend\""),
        "the registry, not the gateway, refused"
    );

    let forwarding = Gateway::start(
        &registry.url(),
        &pki,
        &format!("auth.forward_authorization = true\n{auth}"),
    );
    let r = request(
        forwarding.port,
        &pki.set.ca_cert,
        "GET",
        "/v2/",
        &[&basic("alice:wonderland")],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn bcrypt_does_not_block_other_connections() {
    let users = tempfile::tempdir().unwrap();
    let path = htpasswd(users.path(), 13);
    // One worker thread: if bcrypt ran on it, nothing else could be served meanwhile.
    let stack = Stack::start(&format!(
        "threads = 1\n[auth.htpasswd]\npath = \"{}\"",
        path.display()
    ));
    let (port, ca) = (stack.gw.port, stack.ca().to_path_buf());
    let slow = std::thread::spawn(move || {
        let r = request(port, &ca, "GET", "/v2/", &[&basic("nobody:at-high-cost")]);
        (r.status, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(150));
    let health = stack.request("GET", "/", &[]);
    let health_done = Instant::now();
    let (slow_status, slow_done) = slow.join().unwrap();
    assert_eq!((health.status, slow_status), (200, 401));
    assert!(
        health_done < slow_done,
        "the health check finished while bcrypt was still running"
    );
}

#[test]
fn credentials_never_reach_the_log_even_at_trace_level() {
    let (stack, _users) = basic_stack("[log]\nlevel = \"trace\"");
    for creds in [
        "alice:wonderland",
        "alice:s3cr3t-wrong",
        "mallory:an0ther-secret",
    ] {
        stack.request("GET", "/v2/", &[&basic(creds)]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = stack.gw.proc.log_text();
    assert!(
        log.contains("authentication failed"),
        "failures are logged:\n{log}"
    );
    for secret in ["wonderland", "s3cr3t-wrong", "an0ther-secret"] {
        assert!(!log.contains(secret), "{secret} leaked");
    }
    for creds in ["alice:wonderland", "alice:s3cr3t-wrong"] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
        let leaks: Vec<&str> = log.lines().filter(|l| l.contains(&encoded)).collect();
        assert!(
            leaks.is_empty(),
            "{creds} leaked base64-encoded:\n{}",
            leaks.join("\n")
        );
    }
}

/// A user name carrying CR, LF, NUL or ESC cannot write a line of its own into the log.
#[test]
fn client_supplied_values_cannot_forge_log_lines() {
    let (stack, _users) = basic_stack("");
    let forged = "INFO portcullis::gateway::decide: request client=6.6.6.6 status=200 user=admin";
    for name in [
        format!("x\n{forged}"),
        format!("x\r{forged}"),
        format!("x\0\n{forged}"),
        format!("x\x1b[2K\n{forged}"),
    ] {
        let r = stack.request("GET", "/v2/", &[&basic(&format!("{name}:pw"))]);
        assert_challenge(&r);
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = stack.gw.proc.log_text();
    assert!(log.contains("authentication failed"), "{log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("INFO portcullis::gateway::decide"),
            "forged line: {line}"
        );
        assert!(
            !line.contains('\r') && !line.contains('\0') && !line.contains('\x1b'),
            "raw control character in {line:?}"
        );
    }
    assert!(log.contains("x\\n") && log.contains("x\\r"), "{log}");
    assert!(log.contains("\\u{1b}") && log.contains("\\u{0}"), "{log}");
}

/// `Basic Og==` (empty user and password) is what skopeo, podman and buildah send without
/// credentials: it is anonymous, never a failed login; `check` warns that docker needs tokens.
#[test]
fn empty_basic_credentials_are_anonymous() {
    let (stack, _users) = basic_stack(
        "[[acl.rules]]\nanonymous = true\nrepositories = [\"public/*\"]\nactions = [\"pull\"]\n",
    );
    let empty = "Authorization: Basic Og==";
    let pull = stack.request("GET", "/v2/public/app/tags/list", &[empty]);
    assert_eq!(
        pull.status,
        404,
        "reaches the registry: {}",
        pull.body_text()
    );
    assert_eq!(pull.json()["errors"][0]["code"], "NAME_UNKNOWN");
    assert_challenge(&stack.request("POST", "/v2/public/app/blobs/uploads/", &[empty]));
    assert_challenge(&stack.request("GET", "/v2/", &[empty]));
    assert_challenge(&stack.request("GET", "/v2/public/app/tags/list", &[&basic(":pw")]));
    let config = stack.gw.dir.path().join("portcullis.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "warning: acl.rules: anonymous rules with [auth.htpasswd] but no [auth.token]"
        ),
        "{text}"
    );
}
