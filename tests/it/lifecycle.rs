//! Timeouts and shutdown: idle (not total) timeouts, and SIGTERM letting uploads finish.

use crate::common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::client::{connect, read_response, request, Response};
use common::{Gateway, Pki, Stack};

/// Starts a blob upload and returns the path (with query) of its upload URL.
fn start_upload(gw: &Gateway, pki: &Pki) -> String {
    let r = request(
        gw.port,
        &pki.set.ca_cert,
        "POST",
        "/v2/slow/upload/blobs/uploads/",
        &["Content-Length: 0"],
    );
    assert_eq!(r.status, 202, "{}", r.body_text());
    let location = r.header("Location").unwrap();
    let prefix = format!("https://localhost:{}", gw.port);
    location.strip_prefix(&prefix).unwrap().to_string()
}

/// PATCHes `chunks` chunks of 64 KiB, sleeping `gap` before each, with chunked encoding;
/// calls `after_first` once the first chunk is sent.
fn slow_patch(
    gw: &Gateway,
    pki: &Pki,
    path: &str,
    chunks: usize,
    gap: Duration,
    after_first: impl FnOnce(),
) -> Response {
    let mut tls = connect(gw.port, &pki.set.ca_cert);
    write!(tls, "PATCH {path} HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", gw.port).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut after_first = Some(after_first);
    for _ in 0..chunks {
        std::thread::sleep(gap);
        write!(tls, "{:x}\r\n", chunk.len()).unwrap();
        tls.write_all(&chunk).unwrap();
        tls.write_all(b"\r\n").unwrap();
        tls.flush().unwrap();
        if let Some(f) = after_first.take() {
            f();
        }
    }
    tls.write_all(b"0\r\n\r\n").unwrap();
    tls.flush().unwrap();
    read_response(&mut tls)
}

#[test]
fn idle_timeout_does_not_cut_a_slow_transfer_that_keeps_moving() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("[timeouts]\nidle = 2");
    let path = start_upload(&gw, &pki);
    // Six gaps of one second: the transfer lasts three times the idle timeout.
    let r = slow_patch(&gw, &pki, &path, 6, Duration::from_secs(1), || {});
    assert_eq!(r.status, 202, "{}", r.body_text());
    assert_eq!(
        r.header("Range"),
        Some(format!("0-{}", 6 * 64 * 1024 - 1).as_str())
    );
}

#[test]
fn idle_timeout_cuts_a_stalled_upload() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("[timeouts]\nidle = 1");
    let path = start_upload(&gw, &pki);
    let mut tls = connect(gw.port, &pki.set.ca_cert);
    write!(tls, "PATCH {path} HTTP/1.1\r\nHost: localhost:{}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n", gw.port).unwrap();
    tls.flush().unwrap();
    // Say nothing more: the gateway must give up on its own and close the connection.
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut tls, &mut buf);
    std::thread::sleep(Duration::from_millis(200));
    let log = gw.proc.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("method=PATCH") && l.contains("ReadTimedout")),
        "{log}"
    );
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_then_exits() {
    let Stack {
        registry: _registry,
        pki,
        mut gw,
    } = Stack::start("[shutdown]\ngrace_period = 60");
    let path = start_upload(&gw, &pki);
    let pid = gw.proc.child.id().to_string();
    let port = gw.port;

    let r = slow_patch(&gw, &pki, &path, 8, Duration::from_millis(250), || {
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "no new connections are accepted once stopping"
        );
    });
    assert_eq!(
        r.status,
        202,
        "the in-flight upload completed: {}",
        r.body_text()
    );
    assert_eq!(
        r.header("Range"),
        Some(format!("0-{}", 8 * 64 * 1024 - 1).as_str())
    );

    // With nothing left in flight the process exits on its own, well before the 60 s grace.
    let status = wait_exit(&mut gw.proc.child, Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        gw.proc.log_text()
    );
    assert!(gw
        .proc
        .log_text()
        .contains("no requests in flight; exiting"));
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
