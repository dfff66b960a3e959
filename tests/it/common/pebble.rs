//! A real ACME server: Debian's `pebble` with `pebble-challtestsrv` as its DNS (every name
//! resolves to 127.0.0.1), on free loopback ports, in its own folder. Its validation ports
//! point at the gateway's listeners; it can be stopped and started again on the same ports
//! (it then forgets every account and has a new root).

use std::process::Command;

use super::{free_port, require_tool, wait_for_port, Pki, Proc};

pub struct Pebble {
    /// The ACME directory: `https://127.0.0.1:PORT/dir`.
    pub port: u16,
    pub management_port: u16,
    /// The HTTPS certificate of pebble's own listeners (its CA is what the gateway trusts).
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    dns_port: u16,
    proc: Option<Proc>,
    dns: Proc,
    starts: usize,
}

impl Pebble {
    /// Validates http-01 on `http_port` and tls-alpn-01 on `tls_port` of 127.0.0.1, and
    /// issues certificates valid for `validity` seconds.
    pub fn start(http_port: u16, tls_port: u16, validity: u64) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (port, management_port, dns_port) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": pki.set.server_cert,
                "privateKey": pki.set.server_key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity,
            }
        });
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let dns = start_dns(&dir, dns_port);
        let mut pebble = Pebble {
            port,
            management_port,
            pki,
            dir,
            dns_port,
            proc: None,
            dns,
            starts: 0,
        };
        pebble.run();
        pebble
    }

    /// (Re)starts pebble on the same ports, with no accounts and a new root.
    pub fn run(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(require_tool("pebble"));
        cmd.arg("-config")
            .arg(self.dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0");
        let log = self.dir.path().join(format!("pebble-{}.log", self.starts));
        let mut proc = Proc::spawn(cmd, log.clone());
        wait_for_port(self.port, &mut proc.child, "pebble", &log);
        self.proc = Some(proc);
    }

    pub fn stop(&mut self) {
        self.proc.take();
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root that signs what pebble issues now (PEM).
    pub fn root(&self) -> String {
        let r = super::client::request(
            self.management_port,
            &self.pki.set.ca_cert,
            "GET",
            "/roots/0",
            &[],
        );
        assert_eq!(r.status, 200, "pebble's root: {}", r.body_text());
        r.body_text()
    }

    /// Every pebble log line so far (all starts).
    pub fn log_text(&self) -> String {
        (1..=self.starts)
            .map(|n| super::read(&self.dir.path().join(format!("pebble-{n}.log"))))
            .collect::<Vec<_>>()
            .join("")
            + &self.dns.log_text()
    }
}

/// pebble-challtestsrv as DNS only: A records of 127.0.0.1, no AAAA, no challenge servers.
fn start_dns(dir: &tempfile::TempDir, dns_port: u16) -> Proc {
    let management = free_port();
    let mut cmd = Command::new(require_tool("pebble-challtestsrv"));
    cmd.args([
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
        "-dns01",
        &format!("127.0.0.1:{dns_port}"),
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        &format!("127.0.0.1:{management}"),
    ]);
    let log = dir.path().join("challtestsrv.log");
    let mut proc = Proc::spawn(cmd, log.clone());
    wait_for_port(management, &mut proc.child, "pebble-challtestsrv", &log);
    proc
}
