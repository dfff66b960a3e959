//! docker: a `dockerd` of the test's own (vfs storage, no networking, its own socket and
//! folders) and the docker CLI talking to it.
//!
//! dockerd treats every registry whose address is in 127.0.0.0/8 as insecure and then
//! ignores `certs.d`, so the tests address the gateway as [`HOST`], which resolves to `::1`.
//! dockerd runs in a mount namespace of its own in which `/etc/hosts` says so and
//! `/etc/docker` is a folder of the test's: the daemon reads its trust exactly where docker
//! documents it (`/etc/docker/certs.d/HOST:PORT/ca.crt`, `client.cert`, `client.key`)
//! without the test touching the machine's `/etc`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::client::ClientCert;
use super::engines::{run, run_ok, wait_ready, write_certs_d, Engine, Refusal};
use super::{require_tool, Proc};

/// The name the tests give the gateway for docker: `::1` in dockerd's `/etc/hosts`.
pub const HOST: &str = "registry.portcullis.test";

/// The docker CLI of Debian's `docker.io`, the same version as its dockerd.
const CLI: &str = "/usr/bin/docker";

pub struct Docker {
    pub dir: tempfile::TempDir,
    daemon: Proc,
}

impl Docker {
    /// Starts dockerd and waits until it answers; fails saying why when it cannot start.
    pub fn start() -> Docker {
        let dockerd = require_tool("dockerd");
        require_tool("unshare");
        assert!(
            Path::new(CLI).is_file(),
            "{CLI} is missing; run `tests/run` (it installs docker.io) or `apt-get install docker.io`"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc-docker/certs.d")).unwrap();
        fs::create_dir_all(root.join("client")).unwrap();
        fs::write(
            root.join("hosts"),
            format!("127.0.0.1 localhost\n::1 {HOST}\n"),
        )
        .unwrap();
        let script = r#"set -e
mount --bind "$1/hosts" /etc/hosts
mkdir -p /etc/docker
mount --bind "$1/etc-docker" /etc/docker
shift
exec "$@""#;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(root)
        .arg(dockerd)
        .args([
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            "--log-level=warn",
        ])
        .arg(format!("--data-root={}", root.join("data").display()))
        .arg(format!("--exec-root={}", root.join("exec").display()))
        .arg(format!("--pidfile={}", root.join("dockerd.pid").display()))
        .arg(format!(
            "--host=unix://{}",
            root.join("docker.sock").display()
        ));
        let mut daemon = Proc::spawn(cmd, root.join("dockerd.log"));
        let docker = |args: &[&str]| {
            let mut c = Command::new(CLI);
            c.args(args).env(
                "DOCKER_HOST",
                format!("unix://{}", root.join("docker.sock").display()),
            );
            run(c, None)
        };
        wait_ready(
            &mut daemon,
            "dockerd (it needs root for its mount namespace)",
            || docker(&["info"]).is_ok(),
        );
        Docker { dir, daemon }
    }

    /// The docker CLI with this daemon's socket and the test's client config folder.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(CLI);
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.client_config_dir());
        cmd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// `DOCKER_CONFIG`: where `docker login` keeps credentials (`config.json`).
    pub fn client_config_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// The CLI's `config.json` as it is now.
    pub fn client_config(&self) -> serde_json::Value {
        let text = fs::read_to_string(self.client_config_dir().join("config.json"))
            .unwrap_or_else(|_| "{}".into());
        serde_json::from_str(&text).unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(self.cli(args), None)
    }
}

impl Engine for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn registry_host(&self, port: u16) -> String {
        format!("{HOST}:{port}")
    }

    fn trust(&self, host: &str, ca: Option<&Path>, client: Option<&ClientCert>) {
        let dir = self.dir.path().join("etc-docker/certs.d").join(host);
        write_certs_d(&dir, ca, client);
    }

    fn load(&self, archive: &Path) {
        self.ok(&["load", "-i", archive.to_str().unwrap()]);
    }

    fn tag(&self, reference: &str, new_name: &str) {
        self.ok(&["tag", reference, new_name]);
    }

    fn login(&self, host: &str, user: &str, password: &str) -> Result<String, String> {
        let args = ["login", "--username", user, "--password-stdin", host];
        run(self.cli(&args), Some(password))
    }

    fn logout(&self, host: &str) {
        self.ok(&["logout", host]);
    }

    fn push(&self, reference: &str) -> Result<String, String> {
        run(self.cli(&["push", reference]), None)
    }

    fn pull(&self, reference: &str) -> Result<String, String> {
        run(self.cli(&["pull", reference]), None)
    }

    fn remove(&self, reference: &str) {
        self.ok(&["rmi", reference]);
    }

    fn image_id(&self, reference: &str) -> Option<String> {
        run(
            self.cli(&["image", "inspect", "--format", "{{.Id}}", reference]),
            None,
        )
        .ok()
        .map(|id| id.trim().to_string())
    }

    fn says(&self, refusal: Refusal) -> &'static str {
        match refusal {
            Refusal::UntrustedCertificate => "x509: certificate signed by unknown authority",
            Refusal::WrongPassword => "unauthorized",
            Refusal::NoCredentials => "no basic auth credentials",
            Refusal::PushDenied => "denied: requested access to the resource is denied",
            Refusal::NoClientCertificate => "certificate required",
        }
    }
}

impl Drop for Docker {
    /// SIGTERM, so dockerd stops the containerd it started, then waits for it.
    fn drop(&mut self) {
        self.daemon.terminate();
    }
}
