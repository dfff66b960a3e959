//! A second real client, python-dxf (`tests/dxf_client.py`), doing Docker token auth
//! against Portcullis' own token service: it reads the Bearer challenge, fetches tokens from
//! `/auth/token` with Basic credentials, and pushes and pulls blobs under the ACL.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{oci, require_tool, Stack};
use portcullis::auth::htpasswd::hash_line;

/// The client script next to this file.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dxf_client.py")
}

/// python3, failing the test (never skipping) when it or python-dxf is missing.
fn python_with_dxf() -> PathBuf {
    let python = require_tool("python3");
    let out = Command::new(&python)
        .args(["-c", "import dxf, requests; print(dxf.__file__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "python-dxf is not installed for {}: run `tests/run` (it installs it) or \
         `python3 -m pip install python-dxf`\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// Users, the token key, and the gateway's extra config (token auth + ACL).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = format!(
            "{}\n{}\n",
            hash_line("alice", "wonderland", 4).unwrap(),
            hash_line("bob", "builder", 4).unwrap()
        );
        std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
        Setup { dir }
    }

    fn config(&self) -> String {
        let (key, cert) =
            portcullis::cli::devcerts::write_token_key(self.dir.path(), "dxf token signer", 30)
                .unwrap();
        format!(
            r#"[auth.htpasswd]
path = "{htpasswd}"
[auth.token]
realm = "https://localhost:{{PORT}}/auth/token"
service = "localhost:{{PORT}}"
key = "{key}"
certificate = "{cert}"
[[acl.rules]]
users = ["alice"]
repositories = ["team-a/*"]
actions = ["pull", "push"]
[[acl.rules]]
users = ["bob"]
repositories = ["team-a/*"]
actions = ["pull"]
"#,
            htpasswd = self.dir.path().join("htpasswd").display(),
            key = key.display(),
            cert = cert.display(),
        )
    }
}

/// Runs the script as `user:password` on `repo` with `args` after the common ones.
fn dxf(
    python: &Path,
    stack: &Stack,
    repo: &str,
    creds: &str,
    args: &[&Path],
    action: &str,
) -> Output {
    let (user, password) = creds.split_once(':').unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(script())
        .arg(stack.gw.host())
        .arg(repo)
        .arg(user)
        .arg(password)
        .arg(stack.ca())
        .arg(action)
        .args(args)
        // Loopback only: no proxy from the environment may see the request.
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env("no_proxy", "localhost,127.0.0.1")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn describe(what: &str, out: &Output, stack: &Stack) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}\n--- gateway log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        stack.gw.proc.log_text()
    )
}

#[test]
fn python_dxf_pushes_and_pulls_with_tokens_under_the_acl() {
    let python = python_with_dxf();
    let setup = Setup::new();
    let stack = Stack::start(&setup.config());
    let work = tempfile::tempdir().unwrap();

    // alice (pull, push) pushes a 2 MiB random blob.
    let data = oci::random_bytes(2 << 20, 0xd1f);
    let expected = oci::digest(&data);
    let blob = work.path().join("blob.bin");
    std::fs::write(&blob, &data).unwrap();
    let push = dxf(
        &python,
        &stack,
        "team-a/app",
        "alice:wonderland",
        &[&blob],
        "push-blob",
    );
    assert!(
        push.status.success(),
        "{}",
        describe("alice's push", &push, &stack)
    );
    assert_eq!(
        String::from_utf8_lossy(&push.stdout).trim(),
        expected,
        "{}",
        describe("alice's push printed another digest", &push, &stack)
    );

    // bob (pull only) pulls it back, byte for byte.
    let pulled = work.path().join("pulled.bin");
    let digest_arg = PathBuf::from(&expected);
    let pull = dxf(
        &python,
        &stack,
        "team-a/app",
        "bob:builder",
        &[&digest_arg, &pulled],
        "pull-blob",
    );
    assert!(
        pull.status.success(),
        "{}",
        describe("bob's pull", &pull, &stack)
    );
    assert_eq!(String::from_utf8_lossy(&pull.stdout).trim(), expected);
    let back = std::fs::read(&pulled).unwrap();
    assert!(
        back == data,
        "bob pulled {} bytes ({}) instead of the {} bytes alice pushed",
        back.len(),
        oci::digest(&back),
        data.len()
    );

    // bob may not push: a new blob (so python-dxf does not stop at "it already exists").
    let other = work.path().join("other.bin");
    std::fs::write(&other, oci::random_bytes(64 << 10, 0xb0b)).unwrap();
    let denied = dxf(
        &python,
        &stack,
        "team-a/app",
        "bob:builder",
        &[&other],
        "push-blob",
    );
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success(),
        "{}",
        describe("bob's push succeeded", &denied, &stack)
    );
    let failure = stderr
        .lines()
        .find(|l| l.starts_with("dxf_client: push failed:"))
        .unwrap_or("");
    assert!(
        failure.contains("HTTP 401 for POST")
            && failure.contains("/v2/team-a/app/blobs/uploads/")
            && failure.contains("error=\"insufficient_scope\""),
        "{}",
        describe("bob's push failed for another reason", &denied, &stack)
    );
    let expect_denied = dxf(
        &python,
        &stack,
        "team-a/app",
        "bob:builder",
        &[&other],
        "push-blob-expect-denied",
    );
    let verdict = String::from_utf8_lossy(&expect_denied.stdout);
    assert!(
        expect_denied.status.success()
            && verdict.starts_with("denied: ")
            && verdict.contains("HTTP 401")
            && verdict.contains("insufficient_scope"),
        "{}",
        describe("push-blob-expect-denied", &expect_denied, &stack)
    );

    let log = stack.gw.proc.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("token lacks the scope") && l.contains("bob")),
        "the gateway logged bob's missing push scope:\n{log}"
    );
    let token_requests = log
        .lines()
        .filter(|l| l.contains("path=/auth/token"))
        .count();
    assert!(
        token_requests >= 4,
        "python-dxf fetched tokens from the realm ({token_requests} requests):\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("method=PUT")
            && l.contains("/v2/team-a/app/blobs/uploads/")
            && l.contains("user=\"alice\"")),
        "alice's upload went through the gateway as alice:\n{log}"
    );
}
