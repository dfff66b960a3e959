//! `[tls.acme]` against a real ACME server (Debian's pebble, with pebble-challtestsrv as its
//! DNS): first issuance by tls-alpn-01 and by http-01, skopeo through the issued chain,
//! renewal during an upload, restart with the stored certificate, and pebble down.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::pebble::Pebble;
use crate::common::{client, free_port, oci, skopeo, Gateway, Registry};

const NAME: &str = "registry.test";

/// A registry, pebble, and Portcullis getting its certificate from pebble.
struct AcmeStack {
    registry: Registry,
    pebble: Pebble,
    gw: Gateway,
    port: u16,
    admin_port: u16,
    http_port: u16,
    /// Where the gateway keeps its account and certificate.
    storage: PathBuf,
    /// The config text, to start the gateway again.
    config: String,
    /// Holds pebble's current root, the hosts file for skopeo, and skopeo's certs.d folder.
    work: tempfile::TempDir,
}

impl AcmeStack {
    /// `acme_extra` lines go into `[tls.acme]` (`{HTTP}` in them is the port pebble
    /// validates http-01 on); pebble issues for `validity` seconds.
    fn start(acme_extra: &str, validity: u64) -> AcmeStack {
        let registry = Registry::start();
        let (port, admin_port, http_port) = (free_port(), free_port(), free_port());
        let pebble = Pebble::start(http_port, port, validity);
        let work = tempfile::tempdir().unwrap();
        let storage = work.path().join("acme");
        let config = format!(
            "listen = [\"127.0.0.1:{port}\"]\nupstream = \"{}\"\nthreads = 2\n\
             auth.allow_unauthenticated = true\n\
             [tls]\n[tls.acme]\ndirectory = \"{}\"\ndomains = [\"{NAME}\"]\n\
             contact = \"ops@example.com\"\nstorage = \"{}\"\nca = \"{}\"\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n",
            registry.url(),
            pebble.directory(),
            storage.display(),
            pebble.pki.set.ca_cert.display(),
            acme_extra.replace("{HTTP}", &http_port.to_string()),
        );
        let gw = Gateway::start_config(port, admin_port, tempfile::tempdir().unwrap(), &config);
        AcmeStack {
            registry,
            pebble,
            gw,
            port,
            admin_port,
            http_port,
            storage,
            config,
            work,
        }
    }

    /// Stops the gateway and starts it again with the same config and storage.
    fn restart_gateway(&mut self) {
        self.gw.proc.terminate();
        let gw = Gateway::start_config(
            self.port,
            self.admin_port,
            tempfile::tempdir().unwrap(),
            &self.config,
        );
        self.gw = gw;
    }

    /// pebble's current root, written to a file clients trust.
    fn root_file(&self) -> PathBuf {
        let path = self.work.path().join("pebble-root.pem");
        std::fs::write(&path, self.pebble.root()).unwrap();
        path
    }

    /// Waits until `/readyz` answers 200 (the first certificate is served).
    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.gw.admin_get("/readyz");
            if status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within {within:?}: {body}\ngateway log:\n{}\npebble log:\n{}",
                self.gw.proc.log_text(),
                self.pebble.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A metric's value (`name{labels}` exactly as rendered, or a bare name matching any
    /// labels), 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.gw.admin_get("/metrics");
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(series)?;
                let value = match rest.strip_prefix(' ') {
                    Some(v) => v,
                    None if !series.contains('{') && rest.starts_with('{') => {
                        rest.split_once("} ")?.1
                    }
                    None => return None,
                };
                value.trim().parse().ok()
            })
            .unwrap_or(0.0)
    }

    /// Waits until `series` reaches `at_least`.
    fn wait_metric(&self, series: &str, at_least: f64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.metric(series) < at_least {
            assert!(
                Instant::now() < deadline,
                "{series} did not reach {at_least} within {within:?}\ngateway log:\n{}",
                self.gw.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A TLS connection to the gateway for `registry.test`, trusting `root`.
    fn connect(&self, root: &Path, alpn: &[&[u8]]) -> Result<Tls, String> {
        connect(self.port, root, alpn)
    }

    /// The serial number of the certificate new handshakes get.
    fn served_serial(&self, root: &Path) -> String {
        let mut tls = self.connect(root, &[b"http/1.1"]).unwrap();
        serial(&mut tls)
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(port: u16, root: &Path, alpn: &[&[u8]]) -> Result<Tls, String> {
    client::connect_as(port, root, NAME, alpn)
}

/// The leaf's serial number (hex) and checks that it names `registry.test`.
fn serial(tls: &mut Tls) -> String {
    let chain = tls.conn.peer_certificates().expect("a certificate");
    let (_, leaf) = X509Certificate::from_der(chain[0].as_ref()).unwrap();
    let names = format!(
        "{:?}",
        leaf.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(names.contains(NAME), "{names}");
    leaf.raw_serial_as_string()
}

/// `GET /v2/` over `tls`: the status.
fn get_v2(tls: &mut Tls) -> u16 {
    write!(
        tls,
        "GET /v2/ HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    client::read_response(tls).status
}

/// The gateway log holds no private key (neither the certificate's nor the account's).
fn assert_no_key_material(stack: &AcmeStack) {
    let log = stack.gw.proc.log_text();
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    let folder = std::fs::read_dir(&stack.storage)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stored = std::fs::read_to_string(folder.join("certificate.pem")).unwrap();
    let key = stored
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .expect("the key is stored");
    for line in key
        .lines()
        .filter(|l| l.len() > 20 && !l.starts_with("-----"))
    {
        assert!(!log.contains(line), "key material in the log: {line}");
    }
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("account.json")).unwrap()).unwrap();
    let account_key = account["key_pkcs8"].as_str().unwrap();
    assert!(!log.contains(&account_key[..24]), "account key in the log");
}

/// skopeo pushes and pulls an image through `registry.test:PORT`, resolving the name with
/// a hosts file and trusting pebble's root; digests are checked.
fn skopeo_round_trip(stack: &AcmeStack, root: &Path) {
    let certs = stack.work.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(root, certs.join("ca.crt")).unwrap();
    let hosts = stack.work.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.1 {NAME}\n")).unwrap();
    let host = format!("{NAME}:{}", stack.port);
    skopeo::resolving(&hosts, || {
        skopeo::round_trip_content(&host, &certs, &[], b"issued by pebble, checked by skopeo");
    });
}

#[test]
fn tls_alpn_01_issues_serves_and_survives_a_restart_without_a_new_order() {
    let mut stack = AcmeStack::start("challenge = \"tls-alpn-01\"", 3600);
    stack.wait_ready(Duration::from_secs(60));
    let root = stack.root_file();
    let first = stack.served_serial(&root);
    assert_eq!(
        stack.metric("portcullis_acme_orders_total{outcome=\"issued\"}"),
        1.0
    );
    assert_eq!(
        stack.metric("portcullis_acme_orders_total{outcome=\"failed\"}"),
        0.0,
        "the first order succeeds:\n{}",
        stack.gw.proc.log_text()
    );
    assert!(stack.metric("portcullis_certificate_expiry_seconds") > 3000.0);
    skopeo_round_trip(&stack, &root);

    // Owner-only storage.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&stack.storage), 0o700);
    let folder = std::fs::read_dir(&stack.storage)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&folder.join("certificate.pem")), 0o600);
    assert_eq!(mode(&folder.join("account.json")), 0o600);
    assert_no_key_material(&stack);

    // A validation handshake for a name with no pending challenge gets no certificate.
    let validation = stack.connect(&root, &[b"acme-tls/1"]);
    assert!(
        validation.is_err(),
        "no challenge is pending: {:?}",
        validation.map(|_| ())
    );

    // Restart: the stored certificate is served at once, and nothing is ordered.
    let orders_before = stack.pebble.log_text().matches("POST /order-plz").count();
    assert!(
        orders_before >= 1,
        "pebble logs orders:\n{}",
        stack.pebble.log_text()
    );
    stack.restart_gateway();
    let (status, body) = stack.gw.admin_get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.served_serial(&root), first);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        stack.metric("portcullis_acme_orders_total{outcome=\"issued\"}"),
        0.0
    );
    assert_eq!(
        stack.metric("portcullis_acme_orders_total{outcome=\"failed\"}"),
        0.0
    );
    assert!(stack.metric("portcullis_acme_next_order_seconds") > 1000.0);
    assert_eq!(
        stack.pebble.log_text().matches("POST /order-plz").count(),
        orders_before,
        "no order after the restart"
    );
    assert!(
        stack
            .gw
            .proc
            .log_text()
            .contains("serving the stored certificate"),
        "{}",
        stack.gw.proc.log_text()
    );
    drop(stack.registry);
}

#[test]
fn http_01_issues_on_the_plain_listener_which_redirects_everything_else() {
    let stack = AcmeStack::start(
        "challenge = \"http-01\"\nhttp_listen = \"127.0.0.1:{HTTP}\"",
        3600,
    );
    stack.wait_ready(Duration::from_secs(60));
    let root = stack.root_file();
    let h2 = stack.connect(&root, &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(
        h2.conn.alpn_protocol(),
        Some(&b"h2"[..]),
        "h2 is still offered"
    );
    let mut tls = stack.connect(&root, &[b"http/1.1"]).unwrap();
    serial(&mut tls);
    assert_eq!(get_v2(&mut tls), 200);
    assert!(
        stack
            .gw
            .proc
            .log_text()
            .contains("http-01 validation answered"),
        "{}",
        stack.gw.proc.log_text()
    );

    // Everything else on the plain listener goes to https, with the name and target kept.
    let r = plain_get(stack.http_port, "/v2/library/app/manifests/v1?x=1", NAME);
    assert_eq!(r.status, 308, "{}", r.body_text());
    assert_eq!(
        r.header("Location"),
        Some(
            format!(
                "https://{NAME}:{}/v2/library/app/manifests/v1?x=1",
                stack.port
            )
            .as_str()
        )
    );
    assert_eq!(
        plain_get(stack.http_port, "/.well-known/acme-challenge/nope", NAME).status,
        404
    );
    assert_eq!(plain_get(stack.http_port, "/", "evil.test/x").status, 400);
    // With http-01 the TLS listener does not speak acme-tls/1 at all.
    let validation = stack
        .connect(&root, &[b"acme-tls/1"])
        .map(|_| ())
        .unwrap_err();
    assert!(validation.to_lowercase().contains("alert"), "{validation}");
    assert_no_key_material(&stack);
}

/// `GET path` over plain HTTP with `Host: host`.
fn plain_get(port: u16, path: &str, host: &str) -> client::Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    client::send_plain(port, request.as_bytes())
}

#[test]
fn renewal_during_an_upload_cuts_nothing_and_new_handshakes_get_the_new_certificate() {
    // 40 s certificates renewed with 32 s left: the first renewal comes 8 s after issuance.
    let stack = AcmeStack::start("renew_before = 32", 40);
    stack.wait_ready(Duration::from_secs(60));
    let root = stack.root_file();
    let first = stack.served_serial(&root);

    // An upload that takes longer than the time to renewal, on a connection made before it.
    let mut tls = stack.connect(&root, &[b"http/1.1"]).unwrap();
    assert_eq!(serial(&mut tls), first);
    write!(
        tls,
        "POST /v2/big/blobs/uploads/ HTTP/1.1\r\nHost: {NAME}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let started = read_head(&mut tls);
    assert!(started.starts_with("HTTP/1.1 202"), "{started}");
    let location = header(&started, "location");
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let chunks = 48;
    let mut whole = Vec::with_capacity(chunk.len() * chunks);
    for _ in 0..chunks {
        whole.extend_from_slice(&chunk);
    }
    let digest = oci::digest(&whole);
    let path = &location[location.find("/v2/").expect("an upload URL")..];
    let sep = if path.contains('?') { '&' } else { '?' };
    write!(
        tls,
        "PUT {path}{sep}digest={digest} HTTP/1.1\r\nHost: {NAME}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        whole.len()
    )
    .unwrap();
    let renewed_during_upload = {
        let mut renewed = false;
        for part in whole.chunks(chunk.len()) {
            tls.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(250));
            renewed |= stack.metric("portcullis_acme_orders_total{outcome=\"issued\"}") >= 2.0;
        }
        renewed
    };
    tls.flush().unwrap();
    let done = client::read_response(&mut tls);
    assert_eq!(done.status, 201, "{}", done.body_text());
    assert!(
        renewed_during_upload,
        "the certificate was renewed while the upload ran:\n{}",
        stack.gw.proc.log_text()
    );

    // The blob is whole, and new handshakes get the new certificate.
    let mut check = stack.connect(&root, &[b"http/1.1"]).unwrap();
    let now_served = serial(&mut check);
    assert_ne!(now_served, first, "a new certificate is served");
    write!(
        check,
        "HEAD /v2/big/blobs/{digest} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut check);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "docker-content-digest"), digest);
    assert_eq!(header(&head, "content-length"), whole.len().to_string());
}

/// Reads a response head (to the blank line) as text.
fn read_head(tls: &mut Tls) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

#[test]
fn pebble_down_at_start_and_at_renewal_never_stops_serving() {
    let mut stack = AcmeStack::start("renew_before = 50", 60);
    // Started afresh (no stored certificate) with pebble down: handshakes end with an alert
    // at once, /readyz says why, and the failure is counted.
    stack.gw.proc.terminate();
    stack.pebble.stop();
    std::fs::remove_dir_all(&stack.storage).unwrap();
    stack.restart_gateway();
    stack.wait_metric(
        "portcullis_acme_orders_total{outcome=\"failed\"}",
        1.0,
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let refused = connect(stack.port, &stack.pebble.pki.set.ca_cert, &[b"http/1.1"])
        .map(|_| ())
        .unwrap_err();
    assert!(refused.to_lowercase().contains("alert"), "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal is immediate"
    );
    let (status, body) = stack.gw.admin_get("/readyz");
    assert_eq!(status, 503);
    assert!(body.contains("no certificate yet"), "{body}");
    assert_eq!(stack.metric("portcullis_acme_certificate"), 0.0);

    // pebble back: the next retry (10 s after the first failure) gets the certificate.
    stack.pebble.run();
    stack.wait_ready(Duration::from_secs(60));
    let root = stack.root_file();
    let first = stack.served_serial(&root);

    // Down again at renewal time (10 s after issuance): still serving, failures counted.
    stack.pebble.stop();
    let failed = stack.metric("portcullis_acme_orders_total{outcome=\"failed\"}");
    stack.wait_metric(
        "portcullis_acme_orders_total{outcome=\"failed\"}",
        failed + 1.0,
        Duration::from_secs(40),
    );
    let mut tls = stack.connect(&root, &[b"http/1.1"]).unwrap();
    assert_eq!(serial(&mut tls), first);
    assert_eq!(get_v2(&mut tls), 200);
    assert!(
        stack
            .gw
            .proc
            .log_text()
            .contains("still serving the certificate"),
        "{}",
        stack.gw.proc.log_text()
    );

    // Back again (it forgot the account and has a new root): renewal succeeds.
    stack.pebble.run();
    let issued = stack.metric("portcullis_acme_orders_total{outcome=\"issued\"}");
    stack.wait_metric(
        "portcullis_acme_orders_total{outcome=\"issued\"}",
        issued + 1.0,
        Duration::from_secs(60),
    );
    let new_root = stack.root_file();
    assert_ne!(stack.served_serial(&new_root), first);
    assert_no_key_material(&stack);
}
