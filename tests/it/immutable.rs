//! Immutable tags and the pull audit through the real registry with skopeo: a released tag
//! is created once, re-pushed only with the same manifest, never moved or deleted (by tag
//! or by digest) except by an `overwrite` rule, which is audited; `latest` moves freely;
//! every manifest fetched is one audit line.

use crate::common;

use std::path::Path;

use common::oci::{self, Image};
use common::tokens::basic;
use common::{skopeo, Stack};

const RULES: &str = r#"
[[acl.immutable]]
comment = "released versions never move"
repositories = ["prod/*"]
tags = ["v*", "release-*"]

[[acl.rules]]
comment = "release managers"
users = ["release"]
repositories = ["prod/*"]
actions = ["pull", "push", "delete", "overwrite"]

[[acl.rules]]
comment = "developers"
users = ["*"]
repositories = ["prod/*"]
actions = ["pull", "push", "delete"]
"#;

struct Setup {
    dir: tempfile::TempDir,
    stack: Stack,
    a: (std::path::PathBuf, Image),
    b: (std::path::PathBuf, Image),
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    common::write_htpasswd(
        &dir.path().join("htpasswd"),
        &["dev:dev-pw", "release:release-pw"],
    );
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n[audit]\npath = \"{}\"\npulls = true\n{RULES}",
        dir.path().join("htpasswd").display(),
        dir.path().join("audit.log").display()
    ));
    let layout = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        let image = oci::write_layout(&path, "v1", &[oci::tar_with_file("f", content)]);
        (path, image)
    };
    let a = layout("a", b"image A");
    let b = layout("b", b"image B");
    Setup { dir, stack, a, b }
}

impl Setup {
    /// skopeo copies `layout` to `prod/app:TAG` as `creds`: Ok, or skopeo's error text.
    fn push(&self, creds: &str, layout: &Path, tag: &str) -> Result<(), String> {
        let host = self.stack.gw.host();
        let certs = self.stack.pki.client_cert_dir();
        skopeo::try_push(&host, &certs, creds, layout, &format!("prod/app:{tag}"))
    }

    /// The digest `prod/app:TAG` points to now.
    fn digest_of(&self, tag: &str) -> String {
        let r = self.stack.request(
            "HEAD",
            &format!("/v2/prod/app/manifests/{tag}"),
            &[
                &basic("dev:dev-pw"),
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ],
        );
        assert_eq!(r.status, 200, "{tag}");
        r.header("Docker-Content-Digest").unwrap().to_string()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn released_tags_never_move_but_can_be_pushed_again_and_latest_moves() {
    let s = setup();
    let (a, b) = (&s.a, &s.b);
    s.push("dev:dev-pw", &a.0, "v1")
        .expect("the first push of v1 creates it");
    assert_eq!(s.digest_of("v1"), a.1.manifest.digest);
    let moved = s.push("dev:dev-pw", &b.0, "v1").unwrap_err();
    assert!(
        moved.contains("denied") && moved.contains("immutable"),
        "{moved}"
    );
    assert_eq!(
        s.digest_of("v1"),
        a.1.manifest.digest,
        "v1 still points to A"
    );
    s.push("dev:dev-pw", &a.0, "v1")
        .expect("the same manifest again is fine");
    s.push("dev:dev-pw", &a.0, "latest").unwrap();
    s.push("dev:dev-pw", &b.0, "latest")
        .expect("latest is not covered");
    assert_eq!(s.digest_of("latest"), b.1.manifest.digest);
    s.push("dev:dev-pw", &a.0, "release-1").unwrap();
    assert!(s.push("dev:dev-pw", &b.0, "release-1").is_err());
    s.push("dev:dev-pw", &b.0, "v2")
        .expect("a new tag is created");

    // The refusal itself: 403 DENIED naming the tag and the rule, with the API header.
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
    let head = format!(
        "PUT /v2/prod/app/manifests/v1 HTTP/1.1\r\nHost: {}\r\n{}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.stack.gw.host(),
        basic("dev:dev-pw"),
        manifest.len()
    );
    let put = common::client::send(
        s.stack.gw.port,
        s.stack.ca(),
        &[head.as_bytes(), &manifest[..]].concat(),
    );
    assert_eq!(put.status, 403, "{}", put.body_text());
    assert_eq!(put.json()["errors"][0]["code"], "DENIED");
    let message = put.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(
            "tag v1 of prod/app is immutable (immutable rule 1 (released versions never move))"
        ),
        "{message}"
    );
    assert_eq!(
        put.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    assert_eq!(s.digest_of("v1"), a.1.manifest.digest);
    let denied = s
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "denied")
        .count();
    assert_eq!(denied, 3, "each refused move is audited: {:#?}", s.audit());
}

#[test]
fn immutable_tags_cannot_be_deleted_by_tag_or_by_digest() {
    let s = setup();
    s.push("dev:dev-pw", &s.a.0, "v1").unwrap();
    s.push("dev:dev-pw", &s.b.0, "latest").unwrap();
    let by_tag = s.stack.request(
        "DELETE",
        "/v2/prod/app/manifests/v1",
        &[&basic("dev:dev-pw")],
    );
    assert_eq!(by_tag.status, 403, "{}", by_tag.body_text());
    let body = by_tag.json();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("tag v1 of prod/app")
            && message.contains("immutable rule 1 (released versions never move)"),
        "{message}"
    );
    assert_eq!(
        by_tag.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    let path = format!("/v2/prod/app/manifests/{}", s.a.1.manifest.digest);
    let by_digest = s.stack.request("DELETE", &path, &[&basic("dev:dev-pw")]);
    assert_eq!(by_digest.status, 403, "{}", by_digest.body_text());
    assert!(
        by_digest.body_text().contains("points to"),
        "{}",
        by_digest.body_text()
    );
    assert_eq!(s.digest_of("v1"), s.a.1.manifest.digest);
    let latest = format!("/v2/prod/app/manifests/{}", s.b.1.manifest.digest);
    assert_eq!(
        s.stack
            .request("DELETE", &latest, &[&basic("dev:dev-pw")])
            .status,
        202,
        "a manifest only latest points to can go"
    );
    let mut s = s;
    s.stack.registry.stop();
    let unasked = s.stack.request(
        "DELETE",
        "/v2/prod/app/manifests/v1",
        &[&basic("dev:dev-pw")],
    );
    assert_eq!(
        unasked.status, 502,
        "the registry cannot be asked: fail closed"
    );
    assert_eq!(unasked.json()["errors"][0]["code"], "UNAVAILABLE");
}

#[test]
fn an_overwrite_rule_moves_an_immutable_tag_and_is_audited() {
    let s = setup();
    s.push("dev:dev-pw", &s.a.0, "v1").unwrap();
    s.push("release:release-pw", &s.b.0, "v1")
        .expect("release managers may move v1");
    assert_eq!(s.digest_of("v1"), s.b.1.manifest.digest);
    let overrides: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "tag-overwrite")
        .collect();
    assert_eq!(overrides.len(), 1, "{overrides:#?}");
    let o = &overrides[0];
    assert_eq!(o["user"], "release");
    assert_eq!(o["repository"], "prod/app");
    assert_eq!(o["reference"], "v1");
    assert_eq!(o["previous"], s.a.1.manifest.digest.as_str());
    assert_eq!(o["digest"], s.b.1.manifest.digest.as_str());
    assert_eq!(o["rule"], 1);

    let explain = |user: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["explain", "--config"])
            .arg(s.stack.gw.dir.path().join("portcullis.toml"))
            .args(["--user", user, "--request", "PUT /v2/prod/app/manifests/v1"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dev = explain("dev");
    assert!(
        dev.contains(
            "immutable: tag v1 is immutable by immutable rule 1 (released versions never move)"
        ),
        "{dev}"
    );
    assert!(dev.contains("may not override"), "{dev}");
    assert!(explain("release").contains("may override it (overwrite, rule 1)"));
}

#[test]
fn a_pull_is_one_audit_line_with_who_how_and_what() {
    let s = setup();
    s.push("dev:dev-pw", &s.a.0, "v1").unwrap();
    let before = s.audit().len();
    let work = tempfile::tempdir().unwrap();
    let certs = s.stack.pki.client_cert_dir();
    skopeo::skopeo(
        work.path(),
        &[
            "copy",
            "--src-creds",
            "release:release-pw",
            "--src-cert-dir",
            certs.to_str().unwrap(),
            &format!("docker://{}/prod/app:v1", s.stack.gw.host()),
            &format!("oci:{}:v1", work.path().join("pulled").display()),
        ],
    );
    let after = s.audit();
    let new: Vec<_> = after[before..].to_vec();
    assert_eq!(
        new.len(),
        1,
        "one manifest, one line (blobs are not audited): {new:#?}"
    );
    let pull = &new[0];
    assert_eq!(pull["event"], "pull");
    assert_eq!(pull["user"], "release");
    assert_eq!(pull["auth"], "basic");
    assert_eq!(pull["client"], "127.0.0.1");
    assert_eq!(pull["repository"], "prod/app");
    assert_eq!(pull["reference"], "v1");
    assert_eq!(pull["digest"], s.a.1.manifest.digest.as_str());
    assert!(
        pull["user_agent"].as_str().unwrap().contains("skopeo"),
        "{pull}"
    );
    assert!(pull["time"].as_str().unwrap().ends_with('Z'));
    let head = s.stack.request(
        "HEAD",
        "/v2/prod/app/manifests/v1",
        &[
            &basic("dev:dev-pw"),
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(head.status, 200);
    assert_eq!(s.audit().len(), before + 1, "HEADs are not pulls");
}
