//! A real client (skopeo) pushing and pulling a real image through Portcullis over TLS.

mod common;

use std::path::Path;
use std::process::Command;

use common::oci::{self, Image};
use common::{require_tool, Gateway, Pki, Stack};

/// Runs skopeo hermetically (own policy and empty auth file) and returns its stdout.
fn skopeo(work: &Path, args: &[&str]) -> Vec<u8> {
    let bin = require_tool("skopeo");
    let policy = work.join("policy.json");
    let auth = work.join("auth.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    std::fs::write(&auth, "{}").unwrap();
    let out = Command::new(bin)
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pushes `image` from `layout`, pulls it back, and checks every layer byte for byte.
fn round_trip(gw: &Gateway, pki: &Pki, layout: &Path, image: &Image, work: &Path) {
    let certs = pki.client_cert_dir();
    let certs = certs.to_str().unwrap();
    let remote = format!("docker://{}/team/app:v1", gw.host());
    let src = format!("oci:{}:v1", layout.display());
    skopeo(work, &["copy", "--dest-cert-dir", certs, &src, &remote]);

    let raw = skopeo(work, &["inspect", "--raw", "--cert-dir", certs, &remote]);
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
    skopeo(work, &["copy", "--src-cert-dir", certs, &remote, &dest]);
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

#[test]
fn skopeo_pushes_and_pulls_a_50_mib_layer_through_the_gateway() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let tiny = oci::tar_with_file("hello.txt", b"hello through portcullis\n");
    let big = oci::tar_with_file("big.bin", &oci::random_bytes(50 << 20, 0x5eed));
    let image = oci::write_layout(&layout, "v1", &[tiny, big]);

    round_trip(&gw, &pki, &layout, &image, work.path());

    let log = gw.proc.log_text();
    let big_patch = log.lines().any(|l| {
        l.contains("method=PATCH") && l.contains(&format!("bytes_in={}", image.layers[1].size))
    });
    assert!(
        big_patch,
        "the 50 MiB layer was uploaded through the gateway:\n{log}"
    );
    let big_get = log.lines().any(|l| {
        l.contains("method=GET")
            && l.contains("/blobs/sha256:")
            && l.contains(&format!("bytes_out={}", image.layers[1].size))
    });
    assert!(
        big_get,
        "the 50 MiB layer was served through the gateway:\n{log}"
    );
}
