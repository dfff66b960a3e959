//! podman with its storage (vfs, `storage.conf`), configuration and auth file all in a
//! temporary folder; the gateway's CA through `--cert-dir`, a certs.d-style folder per
//! registry host (`ca.crt`, `client.cert`, `client.key`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::client::ClientCert;
use super::engines::{host_of, run, run_ok, write_certs_d, Engine, Refusal};
use super::require_tool;

pub struct Podman {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Podman {
    pub fn new() -> Podman {
        let bin = require_tool("podman");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["registries.conf", "containers.conf"] {
            fs::write(root.join(file), "").unwrap();
        }
        fs::write(
            root.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                root.join("run").display(),
                root.join("storage").display()
            ),
        )
        .unwrap();
        fs::write(root.join("auth.json"), r#"{"auths":{}}"#).unwrap();
        fs::create_dir_all(root.join("tmp")).unwrap();
        Podman { dir, bin }
    }

    /// podman with this folder's storage and configuration (nothing from the machine's
    /// `/etc/containers` but its signature policy) and `--cert-dir` for `host` if given.
    fn cli(&self, args: &[&str], host: Option<&str>) -> Command {
        let root = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--tmpdir={}", root.join("tmp").display()))
            .args(["--events-backend=none", "--cgroup-manager=cgroupfs"])
            .arg(args[0]);
        if let Some(host) = host {
            cmd.arg(format!("--cert-dir={}", self.cert_dir(host).display()));
        }
        cmd.args(&args[1..])
            .env("CONTAINERS_REGISTRIES_CONF", root.join("registries.conf"))
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", root.join("storage.conf"))
            .env("REGISTRY_AUTH_FILE", root.join("auth.json"))
            .env("XDG_RUNTIME_DIR", root.join("run"));
        cmd
    }

    fn cert_dir(&self, host: &str) -> PathBuf {
        self.dir.path().join("certs.d").join(host)
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(self.cli(args, None), None)
    }
}

impl Engine for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }

    fn registry_host(&self, port: u16) -> String {
        format!("localhost:{port}")
    }

    fn trust(&self, host: &str, ca: Option<&Path>, client: Option<&ClientCert>) {
        write_certs_d(&self.cert_dir(host), ca, client);
    }

    fn load(&self, archive: &Path) {
        self.ok(&["load", "--input", archive.to_str().unwrap()]);
    }

    fn tag(&self, reference: &str, new_name: &str) {
        self.ok(&["tag", reference, new_name]);
    }

    fn login(&self, host: &str, user: &str, password: &str) -> Result<String, String> {
        let args = ["login", "--username", user, "--password-stdin", host];
        run(self.cli(&args, Some(host)), Some(password))
    }

    fn logout(&self, host: &str) {
        self.ok(&["logout", host]);
    }

    fn push(&self, reference: &str) -> Result<String, String> {
        run(
            self.cli(&["push", reference], Some(host_of(reference))),
            None,
        )
    }

    fn pull(&self, reference: &str) -> Result<String, String> {
        run(
            self.cli(&["pull", reference], Some(host_of(reference))),
            None,
        )
    }

    fn remove(&self, reference: &str) {
        self.ok(&["rmi", reference]);
    }

    fn image_id(&self, reference: &str) -> Option<String> {
        let args = ["image", "inspect", "--format", "{{.Id}}", reference];
        run(self.cli(&args, None), None)
            .ok()
            .map(|id| format!("sha256:{}", id.trim()))
    }

    fn says(&self, refusal: Refusal) -> &'static str {
        match refusal {
            Refusal::UntrustedCertificate => "x509: certificate signed by unknown authority",
            Refusal::WrongPassword => "invalid username/password",
            Refusal::NoCredentials => "unauthorized",
            Refusal::PushDenied => "denied",
            Refusal::NoClientCertificate => "certificate required",
        }
    }
}
