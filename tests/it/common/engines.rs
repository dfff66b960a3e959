//! Container engines as registry clients: docker (its own `dockerd` and the docker CLI),
//! podman, and containerd's `ctr` (its own `containerd`). Each runs in a temporary folder
//! with its own sockets, storage and trust folders; daemons are stopped by their PIDs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::ClientCert;
use super::{oci, skopeo, Proc, Registry};

/// What one engine does against a registry, in the engine's own words (its CLI).
pub trait Engine {
    /// The engine's name, for messages.
    fn name(&self) -> &'static str;
    /// The `host:port` this engine addresses a gateway on `port` by.
    fn registry_host(&self, port: u16) -> String;
    /// Configures `host` the way the engine documents it: HTTPS, trusting `ca` (none: only
    /// the machine's roots), with `client` as the client certificate when given. Replaces
    /// what was configured for `host` before.
    fn trust(&self, host: &str, ca: Option<&Path>, client: Option<&ClientCert>);
    /// Loads a docker-archive into local storage.
    fn load(&self, archive: &Path);
    /// Gives `reference` a second name.
    fn tag(&self, reference: &str, new_name: &str);
    /// Signs in to `host`; the combined output, or the error output on failure.
    fn login(&self, host: &str, user: &str, password: &str) -> Result<String, String>;
    /// Forgets the credentials for `host`.
    fn logout(&self, host: &str);
    fn push(&self, reference: &str) -> Result<String, String>;
    fn pull(&self, reference: &str) -> Result<String, String>;
    /// Removes the local image `reference` and its content.
    fn remove(&self, reference: &str);
    /// The local image's ID (docker, podman: the config digest; ctr: the manifest
    /// digest), or `None` when there is no such local image.
    fn image_id(&self, reference: &str) -> Option<String>;
    /// Words of the engine's usual error text for `refusal`, lower-case.
    fn says(&self, refusal: Refusal) -> &'static str;
}

/// The refusals whose error texts the tests check.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The gateway's certificate is not trusted.
    UntrustedCertificate,
    /// A wrong password.
    WrongPassword,
    /// A pull without credentials where they are required.
    NoCredentials,
    /// A push the credentials (or their absence) do not allow.
    PushDenied,
    /// A connection without the client certificate the gateway requires.
    NoClientCertificate,
}

/// Runs `cmd` (with `stdin` written to it), at most `LIMIT`: the combined stdout and
/// stderr, as `Ok` when it exited 0 and as `Err` otherwise.
pub fn run(cmd: Command, stdin: Option<&str>) -> Result<String, String> {
    const LIMIT: &str = "180";
    let mut limited = Command::new("timeout");
    limited
        .arg(LIMIT)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => limited.env(key, v),
            None => limited.env_remove(key),
        };
    }
    limited
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = limited
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Like [`run`], failing the test when the command fails.
pub fn run_ok(cmd: Command, stdin: Option<&str>) -> String {
    let shown = format!("{cmd:?}");
    run(cmd, stdin).unwrap_or_else(|e| panic!("{shown} failed:\n{e}"))
}

/// Writes a one-layer image (random content seeded by `seed`) as a docker-archive named
/// `reference` in `work`, through skopeo, for `docker load`, `podman load`, `ctr import`.
pub fn image_archive(work: &Path, reference: &str, seed: u64) -> PathBuf {
    let layout = work.join("layout");
    let content = oci::random_bytes(64 * 1024, seed);
    oci::write_layout(
        &layout,
        "v1",
        &[oci::tar_with_file("content.bin", &content)],
    );
    let archive = work.join("image.tar");
    skopeo::skopeo(
        work,
        &[
            "copy",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker-archive:{}:{reference}", archive.display()),
        ],
    );
    archive
}

/// The digest of manifest `repo:tag` as the registry itself (not the gateway) answers it.
pub fn registry_digest(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    let request = format!(
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
    );
    let response = super::client::send_plain(registry.port, request.as_bytes());
    (response.status == 200)
        .then(|| response.header("docker-content-digest").map(str::to_string))
        .flatten()
}

/// Waits until `ready` holds, or fails naming `what` with the daemon's log.
pub fn wait_ready(daemon: &mut Proc, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{what} exited with {status} before it was ready:\n{}",
                daemon.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} was not ready within 60 s:\n{}", daemon.log_text());
}

/// Writes `ca` (and `client`) into `dir` as a certs.d host folder: `ca.crt`,
/// `client.cert`, `client.key`, removing what was there.
pub fn write_certs_d(dir: &Path, ca: Option<&Path>, client: Option<&ClientCert>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    if let Some(ca) = ca {
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
    }
    if let Some(client) = client {
        std::fs::write(dir.join("client.cert"), &client.chain_pem).unwrap();
        std::fs::write(dir.join("client.key"), &client.key_pem).unwrap();
    }
}

/// The `host:port` part of an image reference.
pub fn host_of(reference: &str) -> &str {
    reference.split('/').next().unwrap()
}
