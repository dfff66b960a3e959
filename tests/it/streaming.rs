//! Large bodies over HTTP/2 and HTTP/1.1 with curl: a 64 MiB blob uploaded by a chunked
//! PATCH with no Content-Length, then downloaded, through the gateway to the real registry.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::oci::{digest, random_bytes};
use common::{require_tool, Stack};

/// Runs curl against the gateway, returning (status line + headers, body file bytes).
fn curl(ca: &Path, http: &str, args: &[&str]) -> (String, Vec<u8>) {
    let bin = require_tool("curl");
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let out = Command::new(bin)
        .args(["-sS", http, "--cacert"])
        .arg(ca)
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(&head).unwrap(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn blob_round_trip(http: &str, proto_in_log: &str) {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("");
    let ca = &pki.set.ca_cert;
    let base = format!("https://localhost:{}", gw.port);
    let work = tempfile::tempdir().unwrap();
    let data = random_bytes(64 << 20, 99);
    let blob = work.path().join("blob");
    std::fs::write(&blob, &data).unwrap();
    let want = digest(&data);

    let (head, _) = curl(
        ca,
        http,
        &[
            "-X",
            "POST",
            &format!("{base}/v2/stream/test/blobs/uploads/"),
        ],
    );
    assert!(head.contains(" 202"), "{head}");
    let location = header(&head, "location").expect("Location").to_string();
    assert!(location.starts_with(&base), "{location}");

    // `-T -` streams stdin: HTTP/1.1 chunked, HTTP/2 DATA frames, no Content-Length either way.
    let stdin = std::fs::File::open(&blob).unwrap();
    let out = Command::new(require_tool("curl"))
        .args(["-sS", http, "--cacert"])
        .arg(ca)
        .args([
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            "-",
            &location,
        ])
        .stdin(stdin)
        .output()
        .unwrap();
    let patch_head = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        patch_head.contains(" 202"),
        "{patch_head}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let range = header(&patch_head, "range").unwrap();
    assert_eq!(range, format!("0-{}", data.len() - 1));

    let next = header(&patch_head, "location").unwrap();
    let sep = if next.contains('?') { '&' } else { '?' };
    let (head, _) = curl(
        ca,
        http,
        &["-X", "PUT", &format!("{next}{sep}digest={want}")],
    );
    assert!(head.contains(" 201"), "{head}");

    let (head, body) = curl(ca, http, &[&format!("{base}/v2/stream/test/blobs/{want}")]);
    assert!(head.contains(" 200"), "{head}");
    assert_eq!(body.len(), data.len());
    assert_eq!(digest(&body), want, "the blob came back intact");

    let log = gw.proc.log_text();
    let patch_line = log
        .lines()
        .find(|l| l.contains("method=PATCH"))
        .expect("PATCH logged");
    assert!(
        patch_line.contains(&format!("bytes_in={}", data.len())),
        "{patch_line}"
    );
    assert!(patch_line.contains(proto_in_log), "{patch_line}");
}

#[test]
fn a_64_mib_blob_streams_both_ways_over_http2() {
    blob_round_trip("--http2", "http=\"h2\"");
}

#[test]
fn a_64_mib_blob_streams_both_ways_over_http1() {
    blob_round_trip("--http1.1", "http=\"http/1.1\"");
}

/// Starts `curl --http2 -X PATCH -T -` of `file` to `url`; its stdout is the response head.
fn spawn_streamed_patch(ca: &Path, url: &str, file: &Path) -> std::process::Child {
    Command::new(require_tool("curl"))
        .args(["-sS", "--http2", "--cacert"])
        .arg(ca)
        .args(["-D", "-", "-o", "/dev/null", "-X", "PATCH", "-T", "-", url])
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The response head of a finished curl started by [`spawn_streamed_patch`].
fn patch_head(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// pingora 0.9.1 wrote `0\r\n\r\n` twice when an HTTP/2 body ended with an empty DATA
/// frame (pingora#935): the backend must see exactly one terminator per streamed upload,
/// and nothing after it on the pooled connection.
#[test]
fn http2_streamed_uploads_reach_the_backend_with_one_chunked_terminator() {
    let recorder = common::recorder::Recorder::start();
    let pki = common::Pki::new();
    let gw = common::Gateway::start(&recorder.url(), &pki, "");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("blob");
    std::fs::write(&file, random_bytes(300_000, 5)).unwrap();
    for round in 0..3 {
        let children: Vec<_> = (0..6)
            .map(|i| {
                let url = format!(
                    "https://localhost:{}/v2/rec/blobs/uploads/u{round}x{i}",
                    gw.port
                );
                spawn_streamed_patch(&pki.set.ca_cert, &url, &file)
            })
            .collect();
        for child in children {
            let head = patch_head(child);
            assert!(head.starts_with("HTTP/2 202"), "{head}");
        }
    }
    let uploads = recorder.requests_to("/v2/rec/blobs/uploads/");
    assert_eq!(uploads.len(), 18);
    for upload in &uploads {
        assert_eq!(upload.header("transfer-encoding"), Some("chunked"));
        assert!(
            upload.body_wire.ends_with(b"\r\n0\r\n\r\n"),
            "{}",
            upload.head
        );
    }
    assert_eq!(
        recorder.garbage(),
        Vec::<Vec<u8>>::new(),
        "bytes after a request's terminator"
    );
}

/// Many HTTP/2 streamed uploads in parallel through the real registry all succeed (a
/// doubled terminator poisoned the pooled connection for the next request).
#[test]
fn parallel_http2_streamed_uploads_to_the_registry_all_succeed() {
    let stack = Stack::start("");
    let ca = stack.ca();
    let base = format!("https://localhost:{}", stack.gw.port);
    let work = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut uploads = Vec::new();
        for i in 0..8 {
            let data = random_bytes(200_000 + i * 1000, (round * 8 + i) as u64);
            let file = work.path().join(format!("blob{round}-{i}"));
            std::fs::write(&file, &data).unwrap();
            let (head, _) = curl(
                ca,
                "--http2",
                &["-X", "POST", &format!("{base}/v2/par/r{i}/blobs/uploads/")],
            );
            assert!(head.contains(" 202"), "{head}");
            let location = header(&head, "location").unwrap().to_string();
            uploads.push((digest(&data), spawn_streamed_patch(ca, &location, &file)));
        }
        for (want, child) in uploads {
            let head = patch_head(child);
            assert!(head.starts_with("HTTP/2 202"), "{head}");
            let next = header(&head, "location").unwrap();
            let (head, _) = curl(
                ca,
                "--http2",
                &["-X", "PUT", &format!("{next}&digest={want}")],
            );
            assert!(head.contains(" 201"), "{head}");
        }
    }
}
