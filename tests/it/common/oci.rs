//! Writes an OCI image layout for skopeo to push: a config blob and gzip tar layers.
//!
//! Layers are gzip-compressed (at level 0, so random data costs nothing to "compress"):
//! skopeo compresses uncompressed layers on push, which would change their digests.

use std::fs;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

/// A blob written into the layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: usize,
}

/// The layout's manifest and layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Blob,
    pub layers: Vec<Blob>,
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift), so layers do not compress or deduplicate.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tar archive holding one file `name` with `content`.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    builder.into_inner().unwrap()
}

fn write_blob(layout: &Path, data: &[u8]) -> Blob {
    let digest = digest(data);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(digest.trim_start_matches("sha256:")), data).unwrap();
    Blob {
        digest,
        size: data.len(),
    }
}

/// `data` in gzip framing with stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() + 1024),
        flate2::Compression::none(),
    );
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Writes an OCI layout at `layout` whose one image (tag `tag`) has one gzip layer per
/// entry of `layers` (each an uncompressed tar).
pub fn write_layout(layout: &Path, tag: &str, layers: &[Vec<u8>]) -> Image {
    fs::create_dir_all(layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let layer_blobs: Vec<Blob> = layers
        .iter()
        .map(|l| write_blob(layout, &gzip_stored(l)))
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids }
    });
    let config_blob = write_blob(layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_blob.digest, "size": config_blob.size },
        "layers": layer_blobs.iter().map(|b| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": b.digest, "size": b.size
        })).collect::<Vec<_>>()
    });
    let manifest_blob = write_blob(layout, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_blob.digest, "size": manifest_blob.size,
            "annotations": { "org.opencontainers.image.ref.name": tag }
        }]
    });
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    Image {
        manifest: manifest_blob,
        layers: layer_blobs,
    }
}

/// The bytes of blob `digest` in `layout`.
pub fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::read(&path).unwrap_or_else(|e| panic!("blob {digest} not in {}: {e}", layout.display()))
}
