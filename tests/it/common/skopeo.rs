//! skopeo, run hermetically against the gateway.

use std::path::Path;
use std::process::Command;

use super::oci::{self, Image};
use super::require_tool;

/// Runs skopeo hermetically (own policy and empty auth file) and returns its stdout.
pub fn skopeo(work: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(work, args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs skopeo expecting failure; returns its error output.
pub fn skopeo_fails(work: &Path, args: &[&str]) -> String {
    let out = run(work, args);
    assert!(!out.status.success(), "skopeo {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// skopeo copies the `v1` image of OCI `layout` to `docker://HOST/TARGET` as `creds`,
/// trusting `cert_dir`: Ok, or skopeo's error text.
pub fn try_push(
    host: &str,
    cert_dir: &Path,
    creds: &str,
    layout: &Path,
    target: &str,
) -> Result<(), String> {
    let work = tempfile::tempdir().unwrap();
    let out = run(
        work.path(),
        &[
            "copy",
            "--dest-creds",
            creds,
            "--dest-cert-dir",
            cert_dir.to_str().unwrap(),
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{host}/{target}"),
        ],
    );
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// [`try_push`], which must succeed.
pub fn push(host: &str, cert_dir: &Path, creds: &str, layout: &Path, target: &str) {
    if let Err(e) = try_push(host, cert_dir, creds, layout, target) {
        panic!("skopeo push to {target} failed:\n{e}");
    }
}

thread_local! {
    /// A hosts file skopeo resolves names with, set by [`resolving`].
    static HOSTS: std::cell::RefCell<Option<std::path::PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Runs `work` with skopeo resolving names through `hosts` (bind-mounted over /etc/hosts
/// in a mount namespace of its own, so the machine's file is untouched).
pub fn resolving<T>(hosts: &Path, work: impl FnOnce() -> T) -> T {
    HOSTS.with(|h| *h.borrow_mut() = Some(hosts.to_path_buf()));
    let result = work();
    HOSTS.with(|h| *h.borrow_mut() = None);
    result
}

fn command() -> Command {
    let bin = require_tool("skopeo");
    match HOSTS.with(|h| h.borrow().clone()) {
        None => Command::new(bin),
        Some(hosts) => {
            let mut cmd = Command::new(require_tool("unshare"));
            cmd.args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(hosts)
            .arg(bin);
            cmd
        }
    }
}

fn run(work: &Path, args: &[&str]) -> std::process::Output {
    let policy = work.join("policy.json");
    let auth = work.join("auth.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    std::fs::write(&auth, "{}").unwrap();
    command()
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap()
}

/// Pushes `image` from `layout` to `host`, pulls it back, and checks every layer byte for
/// byte. `cert_dir` is the certs.d-style folder (ca.crt, maybe client.cert/key);
/// `creds` is empty or `["user:password"]`.
pub fn round_trip(
    host: &str,
    cert_dir: &Path,
    creds: &[&str],
    layout: &Path,
    image: &Image,
    work: &Path,
) {
    let certs = cert_dir.to_str().unwrap();
    let remote = format!("docker://{host}/team-a/app:v1");
    let src = format!("oci:{}:v1", layout.display());
    let with_creds = |flag: &'static str, mut args: Vec<String>| {
        if let Some(c) = creds.first() {
            args.insert(1, format!("{flag}={c}"));
        }
        args
    };
    let push = with_creds(
        "--dest-creds",
        vec![
            "copy".into(),
            "--dest-cert-dir".into(),
            certs.into(),
            src.clone(),
            remote.clone(),
        ],
    );
    skopeo(work, &push.iter().map(String::as_str).collect::<Vec<_>>());

    let inspect = with_creds(
        "--creds",
        vec![
            "inspect".into(),
            "--raw".into(),
            "--cert-dir".into(),
            certs.into(),
            remote.clone(),
        ],
    );
    let raw = skopeo(
        work,
        &inspect.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let pushed = oci::read_blob(layout, &image.manifest.digest);
    assert_eq!(
        oci::digest(&raw),
        image.manifest.digest,
        "the registry holds the manifest we pushed:\n{}\nvs\n{}",
        String::from_utf8_lossy(&raw),
        String::from_utf8_lossy(&pushed)
    );

    let pulled = work.join("pulled");
    let dest = format!("oci:{}:v1", pulled.display());
    let pull = with_creds(
        "--src-creds",
        vec![
            "copy".into(),
            "--src-cert-dir".into(),
            certs.into(),
            remote.clone(),
            dest,
        ],
    );
    skopeo(work, &pull.iter().map(String::as_str).collect::<Vec<_>>());
    for layer in &image.layers {
        let original = oci::read_blob(layout, &layer.digest);
        let back = oci::read_blob(&pulled, &layer.digest);
        assert_eq!(back.len(), layer.size);
        assert!(
            back == original,
            "layer {} differs after the round trip",
            layer.digest
        );
        assert_eq!(oci::digest(&back), layer.digest);
    }
}

/// Writes a one-layer image holding `content` and round-trips it (see [`round_trip`]).
pub fn round_trip_content(host: &str, cert_dir: &Path, creds: &[&str], content: &[u8]) -> Image {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = oci::write_layout(&layout, "v1", &[oci::tar_with_file("content.bin", content)]);
    round_trip(host, cert_dir, creds, &layout, &image, work.path());
    image
}
