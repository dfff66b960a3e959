//! Rate limits and shared state with a real `redis-server` and two Portcullis replicas in
//! front of one registry: failed logins counted over both, a pull limit shared by both
//! (exact `RateLimit-*` headers), a removed user's refresh token refused by both, Redis
//! stopped (serving goes on, counting locally) and back (shared again); and the `memory`
//! backend on one replica with the same limit, upload and connection limits.

use crate::common;

use std::io::{Read, Write};
use std::path::Path;

use common::client::{self, Response};
use common::redis::RedisServer;
use common::tokens::{basic, SERVICE};
use common::{Gateway, Pki, Registry};

const RULES: &str =
    "[[acl.rules]]\nusers = [\"*\"]\nrepositories = [\"team-a/*\"]\nactions = [\"*\"]\n";
const PULL_LIMIT: &str = "[[limits.pulls]]\ncomment = \"per user\"\nwho = { users = [\"*\"] }\nper = \"user\"\ncount = 5\nwindow = \"1h\"\n";

struct Replicas {
    registry: Registry,
    pki: Pki,
    users: tempfile::TempDir,
    a: Gateway,
    b: Gateway,
}

/// An htpasswd file for each replica (alice, bob, dev), and `extra` config on both.
fn replicas(extra: &str) -> Replicas {
    let registry = Registry::start();
    let pki = Pki::new();
    let users = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let path = users.path().join(name);
        common::write_htpasswd(&path, &["alice:alice-pw", "bob:bob-pw", "dev:dev-pw"]);
        Gateway::start(
            &registry.url(),
            &pki,
            &format!(
                "[auth.htpasswd]\npath = \"{}\"\n{extra}\n{RULES}",
                path.display()
            ),
        )
    };
    let (a, b) = (start("a.htpasswd"), start("b.htpasswd"));
    Replicas {
        registry,
        pki,
        users,
        a,
        b,
    }
}

fn get(gw: &Gateway, pki: &Pki, method: &str, path: &str, headers: &[&str]) -> Response {
    client::request(gw.port, &pki.set.ca_cert, method, path, headers)
}

/// `GET` of the pushed manifest as `creds`.
fn pull(gw: &Gateway, pki: &Pki, creds: &str) -> Response {
    get(
        gw,
        pki,
        "GET",
        "/v2/team-a/app/manifests/v1",
        &[
            &basic(creds),
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    )
}

fn push_image(gw: &Gateway, pki: &Pki) {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    common::oci::write_layout(
        &layout,
        "v1",
        &[common::oci::tar_with_file("f", b"limited")],
    );
    let certs = pki.client_cert_dir();
    common::skopeo::push(&gw.host(), &certs, "dev:dev-pw", &layout, "team-a/app:v1");
}

fn metrics(gw: &Gateway) -> String {
    gw.admin_get("/metrics").1
}

/// Pulls `n` times as bob, expecting 200 with `RateLimit-Remaining` going down from `left`.
fn pulls_left(gw: &Gateway, pki: &Pki, n: u64, left: u64) -> u64 {
    let mut left = left;
    for _ in 0..n {
        let r = pull(gw, pki, "bob:bob-pw");
        assert_eq!(r.status, 200, "{}", r.body_text());
        left -= 1;
        assert_eq!(r.header("RateLimit-Limit"), Some("5;w=3600"));
        assert_eq!(
            r.header("RateLimit-Remaining"),
            Some(format!("{left};w=3600").as_str())
        );
    }
    left
}

fn assert_pull_limited(r: &Response) {
    assert_eq!(r.status, 429, "{}", r.body_text());
    let body = r.json();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("pull limit reached: 5 pulls per 3600 s") && message.contains("resets at"),
        "{message}"
    );
    assert_eq!(r.header("RateLimit-Limit"), Some("5;w=3600"));
    assert_eq!(r.header("RateLimit-Remaining"), Some("0;w=3600"));
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(
        r.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
}

#[test]
fn failed_logins_over_both_replicas_block_the_address_on_both() {
    let redis = RedisServer::start();
    let r = replicas(&format!(
        "{}[auth.throttle]\nmax_failures = 4\n",
        redis.config()
    ));
    for (gw, guess) in [(&r.a, "w1"), (&r.b, "w2"), (&r.a, "w3"), (&r.b, "w4")] {
        assert_eq!(
            get(
                gw,
                &r.pki,
                "GET",
                "/v2/",
                &[&basic(&format!("alice:{guess}"))]
            )
            .status,
            401
        );
    }
    for gw in [&r.a, &r.b] {
        let blocked = get(gw, &r.pki, "GET", "/v2/", &[&basic("alice:alice-pw")]);
        assert_eq!(
            blocked.status, 429,
            "4 failures in total, 2 on each replica"
        );
        assert!(blocked.header("Retry-After").is_some());
    }
    assert!(metrics(&r.a).contains("portcullis_state_redis_up 1"));
}

#[test]
fn a_pull_limit_is_shared_by_both_replicas() {
    let redis = RedisServer::start();
    let r = replicas(&format!("{}{PULL_LIMIT}", redis.config()));
    push_image(&r.a, &r.pki);
    let left = pulls_left(&r.a, &r.pki, 3, 5);
    let head = get(
        &r.b,
        &r.pki,
        "HEAD",
        "/v2/team-a/app/manifests/v1",
        &[
            &basic("bob:bob-pw"),
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(head.status, 200, "HEADs do not count");
    let left = pulls_left(&r.b, &r.pki, 2, left);
    assert_eq!(left, 0);
    assert_pull_limited(&pull(&r.b, &r.pki, "bob:bob-pw"));
    assert_pull_limited(&pull(&r.a, &r.pki, "bob:bob-pw"));
    assert_eq!(
        pull(&r.a, &r.pki, "alice:alice-pw").status,
        200,
        "alice has her own count"
    );
    assert!(
        metrics(&r.a).contains("portcullis_limited_total{limit=\"pulls:1\"} 1"),
        "{}",
        metrics(&r.a)
    );
}

#[test]
fn removing_a_user_revokes_their_refresh_token_on_both_replicas() {
    let redis = RedisServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, cert) = portcullis::cli::devcerts::write_token_key(keys.path(), "t", 30).unwrap();
    let token = format!(
        "[auth.token]\nrealm = \"https://localhost/auth/token\"\nservice = \"{SERVICE}\"\nkey = \"{}\"\ncertificate = \"{}\"\n",
        key.display(),
        cert.display()
    );
    let r = replicas(&format!("{}{token}", redis.config()));
    let form = |gw: &Gateway, body: &str| {
        let head = format!("POST /auth/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        client::send(
            gw.port,
            &r.pki.set.ca_cert,
            &[head.as_bytes(), body.as_bytes()].concat(),
        )
    };
    let login = form(&r.a, &format!("grant_type=password&username=alice&password=alice-pw&client_id=t&access_type=offline&service={SERVICE}"));
    assert_eq!(login.status, 200, "{}", login.body_text());
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_string();
    let again = |gw: &Gateway| {
        form(
            gw,
            &format!(
                "grant_type=refresh_token&refresh_token={refresh}&client_id=t&service={SERVICE}"
            ),
        )
    };
    assert_eq!(again(&r.b).status, 200, "B takes A's refresh token");

    // alice leaves A's file only; B's file still has her.
    let a_file = r.users.path().join("a.htpasswd");
    let text = std::fs::read_to_string(&a_file).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("alice:")).collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&a_file, kept.join("\n") + "\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        get(&r.a, &r.pki, "GET", "/v2/", &[&basic("bob:bob-pw")]).status,
        200,
        "A re-reads its file"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        again(&r.b).status,
        400,
        "B refuses it too: revoked through the shared state"
    );
    assert_eq!(again(&r.a).status, 400);
    assert!(r
        .b
        .proc
        .log_text()
        .contains("refresh token refused: revoked"));
}

#[test]
fn with_redis_down_serving_goes_on_and_limits_count_locally_until_it_is_back() {
    let mut redis = RedisServer::start();
    let r = replicas(&format!("{}{PULL_LIMIT}", redis.config()));
    push_image(&r.a, &r.pki);
    pulls_left(&r.a, &r.pki, 1, 5);
    redis.stop();
    let left = pulls_left(&r.a, &r.pki, 5, 5);
    assert_eq!(left, 0, "A counts on its own: a fresh local window");
    assert_pull_limited(&pull(&r.a, &r.pki, "bob:bob-pw"));
    pulls_left(&r.b, &r.pki, 1, 5);
    push_image(&r.b, &r.pki);
    let (ready, _) = r.a.admin_get("/readyz");
    assert_eq!(ready, 200, "still ready");
    let text = metrics(&r.a);
    assert!(text.contains("portcullis_state_redis_up 0"), "{text}");
    assert!(r.a.proc.log_text().contains("shared state unavailable"));

    redis.run();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let first = pull(&r.a, &r.pki, "bob:bob-pw");
    let first = if first.status == 200 {
        first
    } else {
        std::thread::sleep(std::time::Duration::from_millis(1200));
        pull(&r.a, &r.pki, "bob:bob-pw")
    };
    assert_eq!(
        first.header("RateLimit-Remaining"),
        Some("4;w=3600"),
        "Redis came back empty: a new shared window"
    );
    pulls_left(&r.b, &r.pki, 1, 4);
    assert!(metrics(&r.a).contains("portcullis_state_redis_up 1"));
    assert!(r.a.proc.log_text().contains("Redis answers again"));
}

#[test]
fn the_memory_backend_limits_pulls_uploads_and_connections_on_one_replica() {
    let r = replicas(&format!(
        "{PULL_LIMIT}[limits]\nmax_concurrent_uploads = 1\nmax_connections = 3\n"
    ));
    push_image(&r.a, &r.pki);
    pulls_left(&r.a, &r.pki, 5, 5);
    assert_pull_limited(&pull(&r.a, &r.pki, "bob:bob-pw"));
    pulls_left(&r.b, &r.pki, 5, 5);

    // An upload in progress: a PATCH whose body is still coming.
    let start = get(
        &r.a,
        &r.pki,
        "POST",
        "/v2/team-a/app/blobs/uploads/",
        &[&basic("dev:dev-pw"), "Content-Length: 0"],
    );
    assert_eq!(start.status, 202);
    let location = start.header("Location").unwrap().to_string();
    let path = &location[location.find("/v2/").unwrap()..];
    let mut slow = client::connect(r.a.port, &r.pki.set.ca_cert);
    write!(slow, "PATCH {path} HTTP/1.1\r\nHost: localhost\r\n{}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n", basic("dev:dev-pw")).unwrap();
    slow.write_all(&[0u8; 10]).unwrap();
    slow.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = get(
        &r.a,
        &r.pki,
        "POST",
        "/v2/team-a/app/blobs/uploads/",
        &[&basic("dev:dev-pw"), "Content-Length: 0"],
    );
    assert_eq!(second.status, 429, "{}", second.body_text());
    assert!(second.body_text().contains("max_concurrent_uploads"));
    assert_eq!(
        get(
            &r.a,
            &r.pki,
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            &[&basic("alice:alice-pw"), "Content-Length: 0"]
        )
        .status,
        202,
        "per user"
    );
    slow.write_all(&[0u8; 990]).unwrap();
    slow.flush().unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    drop(slow);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        get(
            &r.a,
            &r.pki,
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            &[&basic("dev:dev-pw"), "Content-Length: 0"]
        )
        .status,
        202,
        "the slot came back"
    );

    // Connections: three held, the fourth closed after its handshake.
    let held: Vec<_> = (0..3)
        .map(|_| idle_connection(r.a.port, &r.pki.set.ca_cert))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let refused = client::try_request(r.a.port, &r.pki.set.ca_cert, None, "GET", "/", &[]);
    assert!(
        refused.is_err(),
        "a fourth connection from 127.0.0.1 is closed: {refused:?}"
    );
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(get(&r.a, &r.pki, "GET", "/", &[]).status, 200);
    assert!(metrics(&r.a).contains("portcullis_limited_total{limit=\"connections\"} 1"));
    assert!(metrics(&r.a).contains("portcullis_limited_total{limit=\"uploads\"} 1"));
    let explain = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["explain", "--config"])
        .arg(r.a.dir.path().join("portcullis.toml"))
        .args([
            "--user",
            "bob",
            "--request",
            "GET /v2/team-a/app/manifests/v1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("limits: user bob's manifest GETs count against pull limit 1 (per user): 5 per 3600s per user"), "{text}");
    assert!(
        text.contains("limits: at most 1 upload requests of user bob at once"),
        "{text}"
    );
    let _ = &r.registry;
}

/// A TLS connection that finished its handshake and sends nothing.
fn idle_connection(
    port: u16,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let mut tls = client::connect(port, ca);
    // Drive the handshake with an empty write.
    tls.flush().unwrap();
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

#[test]
fn rediss_with_a_private_ca_shares_the_counts_too() {
    let redis = RedisServer::start_tls();
    let r = replicas(&format!("{}{PULL_LIMIT}", redis.config()));
    push_image(&r.a, &r.pki);
    let left = pulls_left(&r.a, &r.pki, 2, 5);
    assert!(
        metrics(&r.a).contains("portcullis_state_redis_up 1"),
        "{}\n{}\n{}",
        metrics(&r.a),
        r.a.proc.log_text(),
        common::read(&redis.dir.path().join("redis-1.log"))
    );
    pulls_left(&r.b, &r.pki, 1, left);
    assert!(metrics(&r.b).contains("portcullis_state_redis_errors_total 0\n"));
}
