//! containerd: a daemon of the test's own (its `--config`, root, state and socket in a
//! temporary folder, the CRI plugin off) and `ctr` talking to it. Registry trust is a
//! `hosts.toml` per registry host under a folder given to `ctr --hosts-dir`, the layout
//! of `/etc/containerd/certs.d`.
//!
//! `ctr` has no login: credentials go with each command (`--user`). [`Engine::login`]
//! remembers them for the next commands, so a wrong password shows at the first push.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::client::ClientCert;
use super::engines::{run, run_ok, wait_ready, write_certs_d, Engine, Refusal};
use super::{require_tool, Proc};

pub struct Containerd {
    pub dir: tempfile::TempDir,
    ctr: PathBuf,
    daemon: Proc,
    user: RefCell<Option<String>>,
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers.
    pub fn start() -> Containerd {
        let bin = require_tool("containerd");
        let ctr = require_tool("ctr");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = root.join("config.toml");
        fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = "{root}/containerd.sock.ttrpc"
[debug]
  address = ""
"#,
                root = root.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["--log-level", "warn"]);
        let mut daemon = Proc::spawn(cmd, root.join("containerd.log"));
        let socket = root.join("containerd.sock");
        wait_ready(&mut daemon, "containerd", || {
            let mut c = Command::new(&ctr);
            c.arg("--address").arg(&socket).arg("version");
            run(c, None).is_ok()
        });
        Containerd {
            dir,
            ctr,
            daemon,
            user: RefCell::new(None),
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args);
        cmd
    }

    fn hosts_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// `ctr images push|pull` with the hosts folder and the remembered credentials.
    fn transfer(&self, verb: &str, reference: &str) -> Result<String, String> {
        let hosts = self.hosts_dir();
        let mut args = vec!["images", verb, "--hosts-dir", hosts.to_str().unwrap()];
        if verb == "pull" {
            args.extend(["--snapshotter", "native"]);
        }
        let user = self.user.borrow().clone();
        if let Some(user) = &user {
            args.extend(["--user", user.as_str()]);
        }
        args.push(reference);
        run(self.cli(&args), None)
    }
}

impl Engine for Containerd {
    fn name(&self) -> &'static str {
        "containerd"
    }

    fn registry_host(&self, port: u16) -> String {
        format!("localhost:{port}")
    }

    fn trust(&self, host: &str, ca: Option<&Path>, client: Option<&ClientCert>) {
        let dir = self.hosts_dir().join(host);
        write_certs_d(&dir, ca, client);
        let client_line = match client {
            Some(_) => format!(
                "  client = [[\"{}\", \"{}\"]]\n",
                dir.join("client.cert").display(),
                dir.join("client.key").display()
            ),
            None => String::new(),
        };
        let ca_line = match ca {
            Some(_) => format!("  ca = \"{}\"\n", dir.join("ca.crt").display()),
            None => String::new(),
        };
        fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n{ca_line}{client_line}"
            ),
        )
        .unwrap();
    }

    fn load(&self, archive: &Path) {
        let args = ["images", "import", "--snapshotter", "native"];
        let mut cmd = self.cli(&args);
        cmd.arg(archive);
        run_ok(cmd, None);
    }

    fn tag(&self, reference: &str, new_name: &str) {
        run_ok(self.cli(&["images", "tag", reference, new_name]), None);
    }

    fn login(&self, _host: &str, user: &str, password: &str) -> Result<String, String> {
        *self.user.borrow_mut() = Some(format!("{user}:{password}"));
        Ok(String::new())
    }

    fn logout(&self, _host: &str) {
        *self.user.borrow_mut() = None;
    }

    fn push(&self, reference: &str) -> Result<String, String> {
        self.transfer("push", reference)
    }

    fn pull(&self, reference: &str) -> Result<String, String> {
        self.transfer("pull", reference)
    }

    /// Removes the image and waits for the garbage collector to drop its content.
    fn remove(&self, reference: &str) {
        run_ok(self.cli(&["images", "rm", "--sync", reference]), None);
    }

    fn image_id(&self, reference: &str) -> Option<String> {
        let filter = format!("name=={reference}");
        let listing = run_ok(self.cli(&["images", "ls", &filter]), None);
        listing
            .lines()
            .skip(1)
            .find_map(|line| line.split_whitespace().find(|w| w.starts_with("sha256:")))
            .map(str::to_string)
    }

    fn says(&self, refusal: Refusal) -> &'static str {
        match refusal {
            Refusal::UntrustedCertificate => "x509: certificate signed by unknown authority",
            Refusal::WrongPassword => "401 unauthorized",
            Refusal::NoCredentials => "401 unauthorized",
            Refusal::PushDenied => "insufficient_scope: authorization failed",
            Refusal::NoClientCertificate => "certificate required",
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.daemon.terminate();
    }
}
