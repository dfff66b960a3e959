//! A real client (skopeo) pushing and pulling a real image through Portcullis over TLS.

use crate::common;

use common::oci;
use common::skopeo::round_trip;
use common::Stack;

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

    round_trip(
        &gw.host(),
        &pki.client_cert_dir(),
        &[],
        &layout,
        &image,
        work.path(),
    );

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
