//! Reloading while serving: SIGHUP (or a watched file change) swaps the certificate and the
//! rules for new handshakes and requests; transfers in flight continue; a broken file
//! changes nothing.

use crate::common;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{require_tool, Pki, Stack};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The leaf certificate the gateway serves to a new connection (trusting every `cas`).
fn served_leaf(port: u16, cas: &[&Path]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.peer_certificates().unwrap()[0].to_vec()
}

fn leaf_of(pki: &Pki) -> Vec<u8> {
    CertificateDer::from_pem_file(&pki.set.server_cert)
        .unwrap()
        .to_vec()
}

fn sighup(stack: &Stack) {
    let pid = stack.gw.proc.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

/// Waits until the gateway's log has `needle`.
fn wait_log(stack: &Stack, needle: &str) {
    for _ in 0..200 {
        if stack.gw.proc.log_text().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no {needle:?} in the log:\n{}", stack.gw.proc.log_text());
}

#[test]
fn sighup_swaps_the_certificate_while_a_200_mib_push_continues() {
    let stack = Stack::start("");
    let new = Pki::new();
    // New connections after the reload verify against the new CA (the two CAs share a
    // name, so they are not put in one trust store).
    let new_ca = new.set.ca_cert.clone();
    assert_eq!(
        served_leaf(stack.gw.port, &[stack.ca()]),
        leaf_of(&stack.pki)
    );

    let work = tempfile::tempdir().unwrap();
    let data = common::oci::random_bytes(200 << 20, 21);
    let digest = common::oci::digest(&data);
    std::fs::write(work.path().join("blob"), &data).unwrap();
    let base = format!("https://localhost:{}", stack.gw.port);
    let started = stack.request(
        "POST",
        "/v2/reload/test/blobs/uploads/",
        &["Content-Length: 0"],
    );
    let location = started.header("Location").unwrap().to_string();

    // The upload runs on a connection made before the reload, at a pace that keeps it going.
    let curl = require_tool("curl");
    let (ca, blob) = (stack.ca().to_path_buf(), work.path().join("blob"));
    let upload = std::thread::spawn(move || {
        let out = Command::new(curl)
            .args([
                "-sS",
                "--http1.1",
                "--limit-rate",
                "50M",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/octet-stream",
                "--cacert",
            ])
            .arg(ca)
            .arg("--data-binary")
            .arg(format!("@{}", blob.display()))
            .arg(location)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    });
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::copy(&new.set.server_cert, &stack.pki.set.server_cert).unwrap();
    std::fs::copy(&new.set.server_key, &stack.pki.set.server_key).unwrap();
    sighup(&stack);
    wait_log(&stack, "configuration reloaded");
    assert_eq!(
        served_leaf(stack.gw.port, &[&new_ca]),
        leaf_of(&new),
        "new handshakes get the new certificate"
    );
    let patched = upload.join().unwrap();
    assert!(
        !stack.gw.proc.log_text().contains("method=PATCH") || patched.contains(" 202"),
        "{patched}"
    );
    assert!(
        patched.contains(" 202"),
        "the upload in flight completed: {patched}"
    );
    let next = patched
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let put = Command::new(require_tool("curl"))
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--cacert",
        ])
        .arg(&new_ca)
        .arg(format!("{next}&digest={digest}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&put.stdout), "201");
    let get = Command::new(require_tool("curl"))
        .args(["-sS", "--cacert"])
        .arg(&new_ca)
        .arg(format!("{base}/v2/reload/test/blobs/{digest}"))
        .output()
        .unwrap();
    assert_eq!(
        common::oci::digest(&get.stdout),
        digest,
        "the pushed blob is intact"
    );
}

#[test]
fn a_broken_certificate_on_reload_keeps_the_old_one_serving() {
    let stack = Stack::start("");
    let before = leaf_of(&stack.pki);
    std::fs::write(
        &stack.pki.set.server_cert,
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    sighup(&stack);
    wait_log(&stack, "reload failed");
    let log = stack.gw.proc.log_text();
    assert!(
        log.contains("tls.certificate"),
        "the log says which key is broken:\n{log}"
    );
    assert_eq!(served_leaf(stack.gw.port, &[stack.ca()]), before);
    assert_eq!(stack.request("GET", "/v2/", &[]).status, 200);
}

/// A gateway with Basic auth and one rule; returns the stack, the config path and the users folder.
fn acl_stack(watch: bool, actions: &str) -> (Stack, tempfile::TempDir) {
    let users = tempfile::tempdir().unwrap();
    let line = portcullis::auth::htpasswd::hash_line("bob", "builder", 4).unwrap();
    std::fs::write(users.path().join("htpasswd"), format!("{line}\n")).unwrap();
    let extra = format!(
        "watch = {watch}\n[auth.htpasswd]\npath = \"{}\"\n[[acl.rules]]\nusers = [\"bob\"]\nrepositories = [\"team/*\"]\nactions = {actions}\n",
        users.path().join("htpasswd").display()
    );
    (Stack::start(&extra), users)
}

const BOB: &str = "Authorization: Basic Ym9iOmJ1aWxkZXI=";

fn bob_push_status(stack: &Stack) -> u16 {
    stack
        .request(
            "POST",
            "/v2/team/app/blobs/uploads/",
            &[BOB, "Content-Length: 0"],
        )
        .status
}

fn allow_push(stack: &Stack) {
    let config = stack.gw.dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("actions = [\"pull\"]", "actions = [\"pull\", \"push\"]");
    std::fs::write(&config, text).unwrap();
}

#[test]
fn rules_change_on_sighup() {
    let (stack, _users) = acl_stack(false, "[\"pull\"]");
    assert_eq!(bob_push_status(&stack), 403);
    allow_push(&stack);
    assert_eq!(
        bob_push_status(&stack),
        403,
        "nothing changes before the signal"
    );
    sighup(&stack);
    wait_log(&stack, "configuration reloaded");
    assert_eq!(bob_push_status(&stack), 202);
}

#[test]
fn rules_change_when_a_watched_file_changes() {
    let (stack, _users) = acl_stack(true, "[\"pull\"]");
    assert_eq!(bob_push_status(&stack), 403);
    std::thread::sleep(Duration::from_millis(1100));
    allow_push(&stack);
    wait_log(&stack, "configuration reloaded");
    assert_eq!(bob_push_status(&stack), 202);
}

/// A reload that must wait for a restart (turning HTTP/2 off) keeps serving the old
/// certificate, and `/metrics` describes that one, not the new file's.
#[test]
fn a_tls_change_kept_for_a_restart_leaves_the_expiry_gauge_on_the_served_certificate() {
    use portcullis::cli::devcerts::{issue, Kind, Spec};
    let stack = Stack::start("");
    let before = leaf_of(&stack.pki);
    let (_, metrics) = stack.gw.admin_get("/metrics");
    // (labels, seconds left): the seconds tick down between two reads.
    let gauge = |m: &str| {
        let line = m
            .lines()
            .find(|l| l.starts_with("portcullis_certificate_expiry_seconds{"))
            .expect("the expiry gauge");
        let (label, value) = line.rsplit_once(' ').unwrap();
        (label.to_string(), value.parse::<f64>().unwrap())
    };
    let served_gauge = gauge(&metrics);
    let renewed = issue(
        &Spec::new("renewed", &["localhost", "127.0.0.1"], Kind::Server, 5),
        None,
    )
    .unwrap();
    std::fs::write(&stack.pki.set.server_cert, renewed.cert_pem()).unwrap();
    std::fs::write(&stack.pki.set.server_key, renewed.key_pem()).unwrap();
    let config = stack.gw.dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[tls]\n", "[tls]\nhttp2 = false\n");
    std::fs::write(&config, text).unwrap();
    sighup(&stack);
    wait_log(&stack, "kept until a restart");
    assert_eq!(
        served_leaf(stack.gw.port, &[stack.ca()]),
        before,
        "the old certificate is served"
    );
    let (_, metrics) = stack.gw.admin_get("/metrics");
    let (label, seconds) = gauge(&metrics);
    assert_eq!(label, served_gauge.0, "{metrics}");
    assert!(
        seconds > 30.0 * 86400.0,
        "the gauge counts down to the served certificate's expiry (825 days), not the renewed one's (5 days): {metrics}"
    );
    assert!(!metrics.contains("renewed"), "{metrics}");
}

/// Changing `watch` or `auth.htpasswd.workers` takes a restart, and the reload says so.
#[test]
fn watch_and_htpasswd_workers_changes_are_reported_as_needing_a_restart() {
    let (stack, _users) = acl_stack(false, "[\"pull\"]");
    let config = stack.gw.dir.path().join("portcullis.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("watch = false\n", "watch = true\n")
        .replace("[auth.htpasswd]\n", "[auth.htpasswd]\nworkers = 1\n");
    std::fs::write(&config, text).unwrap();
    sighup(&stack);
    wait_log(&stack, "kept until a restart");
    let log = stack.gw.proc.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("kept until a restart"))
        .unwrap();
    assert!(
        line.contains("watch") && line.contains("auth.htpasswd.workers"),
        "{line}"
    );
}

/// A changed htpasswd file is taken by SIGHUP like the rest: the old password (cached by a
/// request just before) stops working, the new one works, and the users are replaced once
/// (the file's own poll finds them already in force).
#[test]
fn htpasswd_users_change_on_sighup_and_once() {
    let (stack, users) = acl_stack(false, "[\"pull\"]");
    let pull = |auth: &str| {
        stack
            .request("GET", "/v2/team/app/manifests/latest", &[auth])
            .status
    };
    assert_eq!(pull(BOB), 404, "bob may pull; there is nothing yet");
    let line = portcullis::auth::htpasswd::hash_line("bob", "rebuilt", 4).unwrap();
    std::fs::write(users.path().join("htpasswd"), format!("{line}\n")).unwrap();
    sighup(&stack);
    wait_log(&stack, "configuration reloaded");
    assert_eq!(pull(BOB), 401, "the old password no longer works");
    let rebuilt = "Authorization: Basic Ym9iOnJlYnVpbHQ=";
    assert_eq!(pull(rebuilt), 404);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(pull(rebuilt), 404, "after the file's own poll too");
    let log = stack.gw.proc.log_text();
    assert_eq!(
        log.matches("htpasswd file changed; reloaded").count(),
        1,
        "{log}"
    );
}
