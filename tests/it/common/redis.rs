//! A real `redis-server` (Debian's package) on a free loopback port, with a password, no
//! persistence, in its own folder; stoppable and restartable on the same port.

use std::process::Command;

use super::{free_port, require_tool, wait_for_port, Proc};

pub const PASSWORD: &str = "redis-test-password";

pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    proc: Option<Proc>,
    starts: usize,
    /// With TLS only (`rediss://`): the certificates.
    tls: Option<super::Pki>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(None)
    }

    /// A server that speaks TLS only, with a certificate from its own test CA.
    pub fn start_tls() -> RedisServer {
        Self::start_with(Some(super::Pki::new()))
    }

    fn start_with(tls: Option<super::Pki>) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            proc: None,
            starts: 0,
            tls,
        };
        server.run();
        server
    }

    /// Starts it (again) on the same port, empty.
    pub fn run(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(require_tool("redis-server"));
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PASSWORD,
        ])
        .arg("--dir")
        .arg(self.dir.path());
        let port = self.port.to_string();
        match &self.tls {
            None => {
                cmd.args(["--port", &port]);
            }
            Some(pki) => {
                cmd.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&pki.set.server_cert)
                .arg("--tls-key-file")
                .arg(&pki.set.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&pki.set.ca_cert);
            }
        }
        let log = self.dir.path().join(format!("redis-{}.log", self.starts));
        let mut proc = Proc::spawn(cmd, log.clone());
        wait_for_port(self.port, &mut proc.child, "redis-server", &log);
        self.proc = Some(proc);
    }

    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// `[state]` for this server (the password from a file) plus `extra` keys.
    pub fn config(&self) -> String {
        let file = self.dir.path().join("password");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        let (scheme, ca) = match &self.tls {
            Some(pki) => (
                "rediss",
                format!("ca = \"{}\"\n", pki.set.ca_cert.display()),
            ),
            None => ("redis", String::new()),
        };
        format!(
            "[state]\nbackend = \"redis\"\nurl = \"{scheme}://localhost:{}/\"\npassword_file = \"{}\"\ntimeout_ms = 300\n{ca}",
            self.port,
            file.display()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
