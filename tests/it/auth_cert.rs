//! Client certificates (`[tls.client_auth]`): skopeo with a certs.d folder, and every way a
//! certificate can be wrong failing the handshake with a log line that says why.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::client::{try_request, ClientCert};
use common::{oci, skopeo, Stack};
use portcullis::cli::devcerts::{issue, revocation_list, Issued, Kind, Spec};
use time::{Duration, OffsetDateTime};

/// A client CA with certificates issued by it (and one by a stranger), written to files.
struct ClientPki {
    dir: tempfile::TempDir,
    ca: Issued,
}

impl ClientPki {
    fn new() -> Self {
        Self::named("Test client CA")
    }

    fn named(name: &str) -> Self {
        let ca = issue(&Spec::new(name, &[], Kind::Ca, 30), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("client-ca.pem"), ca.cert_pem()).unwrap();
        ClientPki { dir, ca }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("client-ca.pem")
    }

    fn client(&self, spec: &Spec) -> ClientCert {
        let cert = issue(spec, Some(&self.ca)).unwrap();
        ClientCert {
            chain_pem: cert.cert_pem(),
            key_pem: cert.key_pem(),
        }
    }

    /// Writes a CRL revoking `serials`, returning its path.
    fn crl(&self, serials: &[u64]) -> PathBuf {
        let path = self.dir.path().join("revoked.crl");
        fs::write(&path, revocation_list(&self.ca, serials).unwrap()).unwrap();
        path
    }
}

fn client_auth(pki: &ClientPki, more: &str) -> String {
    format!(
        "[tls.client_auth]\ncas = [\"{}\"]\n{more}",
        pki.ca_path().display()
    )
}

/// A certs.d folder for skopeo: the gateway's CA plus `client`.
fn certs_d(stack: &Stack, client: &ClientCert, at: &Path) -> PathBuf {
    fs::create_dir_all(at).unwrap();
    fs::copy(stack.ca(), at.join("ca.crt")).unwrap();
    fs::write(at.join("client.cert"), &client.chain_pem).unwrap();
    fs::write(at.join("client.key"), &client.key_pem).unwrap();
    at.to_path_buf()
}

/// Waits for a log line containing all of `needles`.
fn log_line(stack: &Stack, needles: &[&str]) -> String {
    for _ in 0..100 {
        let log = stack.gw.proc.log_text();
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "no log line with {needles:?}:\n{}",
        stack.gw.proc.log_text()
    );
}

#[test]
fn skopeo_with_a_client_certificate_pushes_and_pulls() {
    let clients = ClientPki::new();
    let stack = Stack::start_with_tls("", &client_auth(&clients, ""));
    let alice = clients.client(&Spec::new("alice", &[], Kind::Client, 30));
    let work = tempfile::tempdir().unwrap();
    let certs = certs_d(&stack, &alice, &work.path().join("certs.d"));
    let layout = work.path().join("layout");
    let image = oci::write_layout(
        &layout,
        "v1",
        &[oci::tar_with_file("a.txt", b"signed in by certificate\n")],
    );

    skopeo::round_trip(&stack.gw.host(), &certs, &[], &layout, &image, work.path());

    log_line(&stack, &["method=PUT", "/manifests/v1", "user=\"alice\""]);
}

#[test]
fn bad_certificates_fail_the_handshake_and_are_logged() {
    let clients = ClientPki::new();
    let stranger = ClientPki::named("Stranger CA");
    let mut revoked_spec = Spec::new("revoked-rita", &[], Kind::Client, 30);
    revoked_spec.serial = Some(4242);
    let crl = clients.crl(&[4242]);
    let stack = Stack::start_with_tls(
        "",
        &client_auth(&clients, &format!("crls = [\"{}\"]", crl.display())),
    );

    let good = clients.client(&Spec::new("alice", &[], Kind::Client, 30));
    let r = try_request(stack.gw.port, stack.ca(), Some(&good), "GET", "/v2/", &[])
        .expect("a valid certificate is accepted");
    assert_eq!(r.status, 200);

    let mut expired = Spec::new("expired-ed", &[], Kind::Client, 1);
    expired.not_before = OffsetDateTime::now_utc() - Duration::days(10);
    expired.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    let cases = [
        ("expired-ed", clients.client(&expired), "expired"),
        (
            "stranger-sam",
            stranger.client(&Spec::new("stranger-sam", &[], Kind::Client, 30)),
            "unknownissuer",
        ),
        ("revoked-rita", clients.client(&revoked_spec), "revoked"),
    ];
    for (name, cert, reason) in &cases {
        let refused = try_request(stack.gw.port, stack.ca(), Some(cert), "GET", "/v2/", &[]);
        assert!(refused.is_err(), "{name} was let in: {refused:?}");
        let line = log_line(
            &stack,
            &["client certificate refused", &format!("CN={name}")],
        );
        assert!(line.to_lowercase().contains(reason), "{line}");
        assert!(
            line.contains("client=127.0.0.1:"),
            "the client address is named: {line}"
        );
    }

    let none = try_request(stack.gw.port, stack.ca(), None, "GET", "/v2/", &[]);
    assert!(none.is_err(), "no certificate, no connection: {none:?}");
    log_line(
        &stack,
        &[
            "handshake error from 127.0.0.1:",
            "peer sent no certificates",
        ],
    );

    let r = try_request(stack.gw.port, stack.ca(), Some(&good), "GET", "/v2/", &[]).unwrap();
    assert_eq!(r.status, 200, "still serving after the refusals");
    let (_, metrics) = stack.gw.admin_get("/metrics");
    for reason in [
        "expired",
        "unknown_issuer",
        "revoked",
        "no_client_certificate",
    ] {
        let line = format!("portcullis_tls_handshake_failures_total{{reason=\"{reason}\"}} ");
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {reason} in\n{metrics}"))
            .parse()
            .unwrap();
        assert!(count >= 1.0, "{reason}: {count}");
    }
}

#[test]
fn user_name_can_come_from_a_san() {
    let clients = ClientPki::new();
    let stack = Stack::start_with_tls("", &client_auth(&clients, "user_from = \"san-dns\""));
    let runner = clients.client(&Spec::new(
        "CI runner 7",
        &["runner7.ci.example"],
        Kind::Client,
        30,
    ));
    assert_eq!(
        try_request(stack.gw.port, stack.ca(), Some(&runner), "GET", "/v2/", &[])
            .unwrap()
            .status,
        200
    );
    log_line(&stack, &["path=/v2/", "user=\"runner7.ci.example\""]);

    let nameless = clients.client(&Spec::new("no-san", &[], Kind::Client, 30));
    let r = try_request(
        stack.gw.port,
        stack.ca(),
        Some(&nameless),
        "GET",
        "/v2/",
        &[],
    )
    .unwrap();
    assert_eq!(
        r.status, 403,
        "a certificate without the configured field names nobody"
    );
    assert_eq!(r.json()["errors"][0]["code"], "DENIED");
}

/// htpasswd with alice/wonderland, kept alive by the returned folder.
fn users() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let line = portcullis::auth::htpasswd::hash_line("alice", "wonderland", 4).unwrap();
    fs::write(dir.path().join("htpasswd"), format!("{line}\n")).unwrap();
    let section = format!(
        "[auth.htpasswd]\npath = \"{}\"\n",
        dir.path().join("htpasswd").display()
    );
    (dir, section)
}

const ALICE: &str = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==";

#[test]
fn either_certificate_or_password() {
    let clients = ClientPki::new();
    let (_users, htpasswd) = users();
    let stack = Stack::start_with_tls(
        &format!("auth.require = \"any\"\n{htpasswd}"),
        &client_auth(&clients, "mode = \"optional\""),
    );
    let port = stack.gw.port;
    let cert = clients.client(&Spec::new("builder", &[], Kind::Client, 30));
    assert_eq!(
        try_request(port, stack.ca(), Some(&cert), "GET", "/v2/", &[])
            .unwrap()
            .status,
        200,
        "certificate alone"
    );
    assert_eq!(
        try_request(port, stack.ca(), None, "GET", "/v2/", &[ALICE])
            .unwrap()
            .status,
        200,
        "password alone"
    );
    let neither = try_request(port, stack.ca(), None, "GET", "/v2/", &[]).unwrap();
    assert_eq!(neither.status, 401);
    assert_eq!(
        neither.header("WWW-Authenticate"),
        Some("Basic realm=\"Registry Realm\"")
    );
    let stranger = ClientPki::named("Stranger CA").client(&Spec::new("x", &[], Kind::Client, 30));
    assert!(
        try_request(port, stack.ca(), Some(&stranger), "GET", "/v2/", &[ALICE]).is_err(),
        "a presented certificate must still be valid"
    );
}

#[test]
fn both_certificate_and_password() {
    let clients = ClientPki::new();
    let (_users, htpasswd) = users();
    let stack = Stack::start_with_tls(
        &format!("auth.require = \"all\"\n{htpasswd}"),
        &client_auth(&clients, ""),
    );
    let port = stack.gw.port;
    let cert = clients.client(&Spec::new("laptop-17", &[], Kind::Client, 30));
    assert_eq!(
        try_request(port, stack.ca(), Some(&cert), "GET", "/v2/", &[])
            .unwrap()
            .status,
        401,
        "certificate alone is not enough"
    );
    assert_eq!(
        try_request(port, stack.ca(), Some(&cert), "GET", "/v2/", &[ALICE])
            .unwrap()
            .status,
        200
    );
    assert!(
        try_request(port, stack.ca(), None, "GET", "/v2/", &[ALICE]).is_err(),
        "password alone is not enough"
    );
    log_line(&stack, &["path=/v2/", "status=200", "user=\"alice\""]);
}

#[test]
fn the_certificate_identity_reaches_http2_requests() {
    let clients = ClientPki::new();
    let stack = Stack::start_with_tls("", &client_auth(&clients, ""));
    let cert = clients.client(&Spec::new("h2-client", &[], Kind::Client, 30));
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.pem"), &cert.chain_pem).unwrap();
    fs::write(dir.path().join("k.pem"), &cert.key_pem).unwrap();
    let out = std::process::Command::new(common::require_tool("curl"))
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--cacert",
        ])
        .arg(stack.ca())
        .arg("--cert")
        .arg(dir.path().join("c.pem"))
        .arg("--key")
        .arg(dir.path().join("k.pem"))
        .arg(format!("https://localhost:{}/v2/", stack.gw.port))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    log_line(&stack, &["path=/v2/", "http=\"h2\"", "user=\"h2-client\""]);
}

/// Gets a refresh token as `builder` by certificate, then refreshes it as each of `tries`
/// (a label, the certificate presented, the status expected).
fn refresh_as(stack: &Stack, builder: &ClientCert, tries: &[(&str, Option<&ClientCert>, u16)]) {
    use common::tokens::{payload, SERVICE};
    let (port, ca) = (stack.gw.port, stack.ca().to_path_buf());
    let path = format!(
        "/auth/token?service={SERVICE}&offline_token=true&scope=repository:team-a/app:pull"
    );
    let r = try_request(port, &ca, Some(builder), "GET", &path, &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_text());
    let refresh = r.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    for (who, client, want) in tries {
        let form = format!("grant_type=refresh_token&refresh_token={refresh}&service={SERVICE}&scope=repository%3Ateam-a%2Fapp%3Apull");
        let raw = format!(
            "POST /auth/token HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        let r = common::client::try_send(port, &ca, *client, raw.as_bytes()).unwrap();
        assert_eq!(r.status, *want, "{who}: {}", r.body_text());
        if *want == 200 {
            assert_eq!(
                payload(r.json()["access_token"].as_str().unwrap())["sub"],
                "builder"
            );
        } else {
            assert_eq!(r.json()["error"], "invalid_grant", "{who}");
        }
    }
}

/// A refresh token issued to a certificate user is honoured only on a connection that
/// presents a certificate verified now and naming the same user: another user's valid
/// certificate does not do, nor does a connection without one (a revoked certificate or
/// one from a removed CA is not verified, so it counts as none).
#[test]
fn refresh_tokens_of_certificate_users_need_that_certificate_again() {
    let setup = common::tokens::Setup::new();
    let clients = ClientPki::new();
    let builder = clients.client(&Spec::new("builder", &[], Kind::Client, 30));
    let mallory = clients.client(&Spec::new("mallory", &[], Kind::Client, 30));

    // Certificates only, required.
    let config = setup.config("");
    let start = config.find("[auth.htpasswd]").unwrap();
    let end = start + config[start..].find("[auth.token]").unwrap();
    let certificates_only = format!("{}{}", &config[..start], &config[end..]);
    let stack = Stack::start_with_tls(&certificates_only, &client_auth(&clients, ""));
    refresh_as(
        &stack,
        &builder,
        &[
            ("the same certificate", Some(&builder), 200),
            ("another user's", Some(&mallory), 400),
        ],
    );

    // Optional certificates beside htpasswd (builder is not an htpasswd user).
    let stack = Stack::start_with_tls(
        &format!("auth.require = \"any\"\n{config}"),
        &client_auth(&clients, "mode = \"optional\""),
    );
    refresh_as(
        &stack,
        &builder,
        &[
            ("the same certificate", Some(&builder), 200),
            ("no certificate", None, 400),
        ],
    );
}
