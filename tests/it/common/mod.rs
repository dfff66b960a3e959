//! Test harness: the real `docker-registry`, Portcullis itself, and a small HTTPS client.
//!
//! Every process runs on a free loopback port with its own temporary folder and is killed
//! when its guard drops. A missing tool fails the test with what to install; nothing skips.

pub mod client;
pub mod containerd;
pub mod docker;
pub mod engines;
pub mod oci;
pub mod oidc_issuer;
pub mod pebble;
pub mod podman;
pub mod receiver;
pub mod recorder;
pub mod redis;
pub mod skopeo;
pub mod slapd;
pub mod tokens;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::cli::devcerts;

/// Fails the test, saying how to get `tool`, when it is not on PATH.
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is not installed; run `tests/run` (it installs docker-registry and skopeo with apt-get) or `apt-get install {}`",
            if tool == "docker-registry" { "docker-registry" } else { tool })
    })
}

/// A loopback port nothing listens on right now, never handed out before in this process.
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768..60999), so an
/// outgoing connection (the gateway to its registry, a client to the gateway) cannot take
/// one between this check and the server's bind; each test process starts at its own
/// offset and walks forward, so two servers started at once never get the same port (the
/// kernel's `bind(0)` may hand the same port out twice in a row).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20000;
    const SPAN: u32 = 12000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

/// Waits until something accepts TCP connections on `port`, or panics with `log`'s text.
fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before listening:\n{}",
                read(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not listen on port {port} within 30 s:\n{}",
        read(log)
    );
}

/// Writes an htpasswd file at `path` with `users` as `"user:password"` (bcrypt cost 4).
pub fn write_htpasswd(path: &Path, users: &[&str]) {
    let lines: Vec<String> = users
        .iter()
        .map(|up| {
            let (u, p) = up.split_once(':').unwrap();
            portcullis::auth::htpasswd::hash_line(u, p, 4).unwrap()
        })
        .collect();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A file's text, or an empty string.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// A running process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { child, log }
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM, so a daemon stops what it started), waits up to
    /// 30 s, then kills it.
    pub fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.kill();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        read(&self.log)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real registry (distribution 2.8, Debian's `docker-registry`) on a free port.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub proc: Proc,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with("")
    }

    /// A registry whose config also has the top-level YAML `extra` (e.g. an `auth:` block).
    pub fn start_with(extra: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let proc = Self::spawn(dir.path(), port, extra);
        Registry { port, dir, proc }
    }

    /// A replica storing in `data` (shared with other replicas), with `http.secret`.
    pub fn start_replica(data: &Path, secret: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let proc = Self::spawn_on(dir.path(), data, port, &format!("  secret: {secret}"));
        Registry { port, dir, proc }
    }

    /// Starts the replica again on the same port and folders after [`Registry::stop`].
    pub fn restart(&mut self) {
        let config = self.dir.path().join("config.yml");
        let mut cmd = Command::new(require_tool("docker-registry"));
        cmd.arg("serve").arg(&config);
        let log = self.dir.path().join("registry-restarted.log");
        self.proc = Proc::spawn(cmd, log);
        wait_for_port(
            self.port,
            &mut self.proc.child,
            "docker-registry",
            &self.proc.log,
        );
    }

    fn spawn(dir: &Path, port: u16, extra: &str) -> Proc {
        Self::spawn_on(dir, &dir.join("data"), port, extra)
    }

    fn spawn_on(dir: &Path, data: &Path, port: u16, extra: &str) -> Proc {
        let bin = require_tool("docker-registry");
        let config = dir.join("config.yml");
        fs::write(&config, format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}\n",
            data.display()
        )).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config);
        let mut proc = Proc::spawn(cmd, dir.join("registry.log"));
        wait_for_port(port, &mut proc.child, "docker-registry", &proc.log);
        proc
    }

    /// Stops the registry (the gateway then has no backend).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Development certificates: root CA, intermediate, server leaf for localhost/127.0.0.1.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub set: devcerts::DevSet,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let set = devcerts::write_dev_set(dir.path(), &["localhost", "127.0.0.1"]).unwrap();
        Pki { dir, set }
    }

    /// Certificates for the container-engine tests: the server certificate also names
    /// `::1` and docker's name for the gateway ([`docker::HOST`]), and there is a client
    /// certificate for `alice` signed by the root CA (see [`Pki::client`]).
    pub fn for_engines() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let names = ["localhost", "127.0.0.1", "::1", docker::HOST];
        let set = devcerts::write_dev_set_with_clients(dir.path(), &names, &["alice"]).unwrap();
        Pki { dir, set }
    }

    /// The client certificate [`Pki::for_engines`] made for `name`.
    pub fn client(&self, name: &str) -> client::ClientCert {
        let folder = self.dir.path().join("clients").join(name);
        client::ClientCert {
            chain_pem: read(&folder.join("client.cert")),
            key_pem: read(&folder.join("client.key")),
        }
    }

    /// A folder holding only `ca.crt`, as `--dest-cert-dir` / certs.d expect.
    pub fn client_cert_dir(&self) -> PathBuf {
        self.set.trust_dir.clone()
    }
}

/// Portcullis running from the test build, in front of `upstream`.
pub struct Gateway {
    pub port: u16,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`), plain HTTP.
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    pub proc: Proc,
}

impl Gateway {
    /// Starts with the base config plus `extra` TOML (top-level keys and sections).
    pub fn start(upstream: &str, pki: &Pki, extra: &str) -> Gateway {
        Self::start_with_tls(upstream, pki, extra, "")
    }

    /// In front of several replicas (`upstream` as a list).
    pub fn start_upstreams(upstreams: &[String], pki: &Pki, extra: &str) -> Gateway {
        let list = upstreams
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Self::start_with_tls(&format!("[{list}]"), pki, extra, "")
    }

    /// Like [`Gateway::start`], with `tls_extra` lines added to `[tls]`.
    pub fn start_with_tls(upstream: &str, pki: &Pki, extra: &str, tls_extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let admin_port = free_port();
        let mut text = gateway_config(port, upstream, pki, extra, tls_extra);
        if !extra.contains("[admin]") {
            text.push_str(&format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n"));
        }
        Self::start_config(port, admin_port, dir, &text)
    }

    /// Starts with the whole config `text` (written to `dir`), listening on `port`.
    pub fn start_config(port: u16, admin_port: u16, dir: tempfile::TempDir, text: &str) -> Gateway {
        let config = dir.path().join("portcullis.toml");
        fs::write(&config, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG");
        let mut proc = Proc::spawn(cmd, dir.path().join("portcullis.log"));
        wait_for_port(port, &mut proc.child, "portcullis", &proc.log);
        Gateway {
            port,
            admin_port,
            dir,
            proc,
        }
    }

    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// `GET path` on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let r = client::send_plain(self.admin_port, request.as_bytes());
        (r.status, r.body_text())
    }
}

/// The config text the harness starts Portcullis with. Unless `extra` or `tls_extra`
/// configures authentication, the gateway runs with `auth.allow_unauthenticated = true`.
/// `{PORT}` in `extra` becomes the gateway's port (for `auth.token.realm`); a top-level
/// `listen =` in `extra` replaces the default `127.0.0.1:{PORT}`.
pub fn gateway_config(
    port: u16,
    upstream: &str,
    pki: &Pki,
    extra: &str,
    tls_extra: &str,
) -> String {
    let extra = &extra.replace("{PORT}", &port.to_string());
    let upstream = if upstream.starts_with('[') {
        upstream.to_string()
    } else {
        format!("\"{upstream}\"")
    };
    let (top, sections) = split_extra(extra);
    let listen = if top.contains("listen =") {
        String::new()
    } else {
        format!("listen = [\"127.0.0.1:{port}\"]")
    };
    let configures_auth = extra.contains("auth") || tls_extra.contains("client_auth");
    let open = if configures_auth {
        ""
    } else {
        "auth.allow_unauthenticated = true"
    };
    let threads = if extra.contains("threads") {
        ""
    } else {
        "threads = 2"
    };
    format!(
        "{listen}\nupstream = {upstream}\n{threads}\n{open}\n{top}\n[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n{tls_extra}\n{sections}\n",
        pki.set.server_cert.display(),
        pki.set.server_key.display()
    )
}

/// Splits extra TOML into the part before its first `[section]` and the rest.
fn split_extra(extra: &str) -> (&str, &str) {
    match extra
        .find("\n[")
        .map(|i| i + 1)
        .or(if extra.starts_with('[') {
            Some(0)
        } else {
            None
        }) {
        Some(i) => extra.split_at(i),
        None => (extra, ""),
    }
}

/// The usual test set-up: a registry, certificates, and Portcullis in front.
pub struct Stack {
    pub registry: Registry,
    pub pki: Pki,
    pub gw: Gateway,
}

impl Stack {
    /// Registry + Portcullis with `extra` config (see [`Gateway::start`]).
    pub fn start(extra: &str) -> Stack {
        Self::start_with_tls(extra, "")
    }

    /// Like [`Stack::start`], with `tls_extra` lines in `[tls]`.
    pub fn start_with_tls(extra: &str, tls_extra: &str) -> Stack {
        Self::start_with_pki(Pki::new(), extra, tls_extra)
    }

    /// Like [`Stack::start_with_tls`], with the gateway's certificates from `pki`.
    pub fn start_with_pki(pki: Pki, extra: &str, tls_extra: &str) -> Stack {
        let registry = Registry::start();
        let gw = Gateway::start_with_tls(&registry.url(), &pki, extra, tls_extra);
        Stack { registry, pki, gw }
    }

    /// The CA file clients trust.
    pub fn ca(&self) -> &Path {
        &self.pki.set.ca_cert
    }

    /// `method path` with extra header lines, through the gateway.
    pub fn request(&self, method: &str, path: &str, headers: &[&str]) -> client::Response {
        client::request(self.gw.port, self.ca(), method, path, headers)
    }
}
