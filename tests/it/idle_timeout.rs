//! `timeouts.idle` is an idle timeout: only "no byte moving for `idle` seconds" cuts a
//! transfer. Slow readers and writers (curl `--limit-rate`) over HTTP/1.1 and HTTP/2 keep
//! going for six times `idle`; a client that stops reading or sending is cut after about
//! `idle`; the gateway's memory stays flat meanwhile.

use crate::common;

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::client::tls_config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use common::oci::{digest, random_bytes};
use common::{require_tool, Stack};

const IDLE: u64 = 5;
/// How long the slow transfers run: six times `idle`.
const SLOW_FOR: u64 = 30;
/// A blob larger than every buffer between the registry and a slow client.
const BLOB: usize = 96 << 20;

fn stack() -> Stack {
    Stack::start(&format!("[timeouts]\nidle = {IDLE}"))
}

/// Pushes `BLOB` bytes straight to the registry (plain HTTP); returns its blob URL path.
fn push_big_blob(stack: &Stack, repo: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let data = random_bytes(BLOB, 7);
    let file = work.path().join("blob");
    std::fs::write(&file, &data).unwrap();
    let registry = stack.registry.url();
    let out = Command::new(require_tool("curl"))
        .args(["-sS", "-o", "/dev/null", "-D", "-", "-X", "POST"])
        .arg(format!("{registry}/v2/{repo}/blobs/uploads/"))
        .output()
        .unwrap();
    let head = String::from_utf8(out.stdout).unwrap();
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or_else(|| panic!("no Location: {head}"))
        .trim()
        .to_string();
    let location = if location.starts_with('/') {
        format!("{registry}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let want = digest(&data);
    let out = Command::new(require_tool("curl"))
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("{location}{sep}digest={want}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{out:?}");
    format!("/v2/{repo}/blobs/{want}")
}

fn curl(stack: &Stack, http: &str) -> Command {
    let mut cmd = Command::new(require_tool("curl"));
    cmd.args(["-sS", http, "--cacert"]).arg(stack.ca());
    cmd
}

fn url(stack: &Stack, path: &str) -> String {
    format!("https://localhost:{}{path}", stack.gw.port)
}

/// The gateway's resident memory, in KiB.
fn gateway_rss_kib(stack: &Stack) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", stack.gw.proc.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Access-log lines for `method` requests, once one exists (or none after `limit`).
fn wait_for_access_line(stack: &Stack, method: &str, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        let log = stack.gw.proc.log_text();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("request") && l.contains(&format!("method={method}")))
        {
            return Some(line.to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Bytes per second the slow readers take from their socket.
const RATE: f64 = 100.0 * 1024.0;
/// The slow readers' socket receive buffer. A Linux receiver with an autotuned buffer
/// (`tcp_rmem` max 32 MiB here) reading slowly keeps its window shut until it has
/// drained about 2 MiB: nothing at all moves on the wire for ~19 s at 100 KiB/s, which no
/// sender can tell from a stalled client. A fixed buffer reopens the window every MSS.
const RCVBUF: usize = 256 * 1024;

/// A socket read at `RATE`: the application side of a slow client.
struct Paced {
    inner: tokio::net::TcpStream,
    started: Instant,
    taken: u64,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Paced {
    async fn connect(port: u16) -> Paced {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(RCVBUF).unwrap();
        socket
            .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        let tcp: std::net::TcpStream = socket.into();
        tcp.set_nonblocking(true).unwrap();
        Paced {
            inner: tokio::net::TcpStream::from_std(tcp).unwrap(),
            started: Instant::now(),
            taken: 0,
            wait: None,
        }
    }
}

impl AsyncRead for Paced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if let Some(wait) = self.wait.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
            }
            let budget = (self.started.elapsed().as_secs_f64() * RATE) as u64;
            let allowed = budget.saturating_sub(self.taken);
            if allowed == 0 {
                self.wait = Some(Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                continue;
            }
            let want = (allowed as usize).min(buf.remaining()).min(16 * 1024);
            let mut limited = ReadBuf::new(buf.initialize_unfilled_to(want));
            let poll = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
            let n = limited.filled().len();
            if let Poll::Ready(Ok(())) = poll {
                buf.advance(n);
                self.taken += n as u64;
            }
            return poll;
        }
    }
}

impl AsyncWrite for Paced {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn paced_tls(stack: &Stack, alpn: &[u8]) -> tokio_rustls::client::TlsStream<Paced> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(stack.ca(), &[alpn]));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector
        .connect(name, Paced::connect(stack.gw.port).await)
        .await
        .unwrap()
}

/// HTTP/1.1 GET read at `RATE` for `SLOW_FOR`: the body bytes received, or the error.
async fn slow_http1_get(stack: &Stack, path: &str) -> Result<u64, String> {
    let mut tls = paced_tls(stack, b"http/1.1").await;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        stack.gw.port
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let end = Instant::now() + Duration::from_secs(SLOW_FOR);
    let (mut total, mut buf, mut head) = (0u64, vec![0u8; 16 * 1024], Vec::new());
    while Instant::now() < end {
        match tokio::time::timeout_at(end.into(), tls.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) => return Err(format!("connection closed after {total} bytes")),
            Ok(Ok(n)) => {
                if head.len() < 12 {
                    head.extend_from_slice(&buf[..n.min(12)]);
                }
                total += n as u64;
            }
            Ok(Err(e)) => return Err(format!("{e} after {total} bytes")),
        }
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    Ok(total)
}

/// HTTP/2 GET read at `RATE` for `SLOW_FOR`, with 16 MiB windows (like curl's) so that
/// TCP, not HTTP/2 flow control, holds the gateway back.
async fn slow_http2_get(stack: &Stack, path: &str) -> Result<u64, String> {
    let tls = paced_tls(stack, b"h2").await;
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(16 << 20)
        .initial_connection_window_size(16 << 20)
        .handshake::<_, bytes::Bytes>(tls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(format!("https://localhost:{}{path}", stack.gw.port))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.map_err(|e| e.to_string())?;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let end = Instant::now() + Duration::from_secs(SLOW_FOR);
    let mut total = 0u64;
    while Instant::now() < end {
        match tokio::time::timeout_at(end.into(), body.data()).await {
            Err(_) => break,
            Ok(None) => return Err(format!("stream ended after {total} bytes")),
            Ok(Some(Err(e))) => return Err(format!("{e} after {total} bytes")),
            Ok(Some(Ok(chunk))) => {
                total += chunk.len() as u64;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
        }
    }
    Ok(total)
}

/// A client reading at 100 KiB/s for six times `idle` is never cut, and the gateway's
/// memory does not grow with the bytes still to send.
fn slow_download_is_not_cut(http2: bool) {
    let stack = stack();
    let blob = push_big_blob(&stack, "slow/down");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rss = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(IDLE));
            let early = gateway_rss_kib(&stack);
            std::thread::sleep(Duration::from_secs(SLOW_FOR - IDLE - 1));
            (early, gateway_rss_kib(&stack))
        });
        let got = runtime.block_on(async {
            if http2 {
                slow_http2_get(&stack, &blob).await
            } else {
                slow_http1_get(&stack, &blob).await
            }
        });
        let size = got
            .unwrap_or_else(|e| panic!("a slow reader was cut: {e}\n{}", stack.gw.proc.log_text()));
        assert!(
            size >= 2 << 20 && size < (BLOB as u64) / 4,
            "a slow download: {size} bytes in {SLOW_FOR} s"
        );
        sampler.join().unwrap()
    });
    let log = stack.gw.proc.log_text();
    assert!(
        !log.contains("Timedout") && !log.contains("stalled"),
        "{log}"
    );
    let (rss_early, rss_late) = rss;
    eprintln!("gateway RSS while a slow client reads: {rss_early} -> {rss_late} KiB");
    assert!(
        rss_late < rss_early + 32 * 1024,
        "memory stays bounded: {rss_early} KiB -> {rss_late} KiB"
    );
}

#[test]
fn a_slow_http1_download_is_not_cut() {
    slow_download_is_not_cut(false);
}

#[test]
fn a_slow_http2_download_is_not_cut() {
    slow_download_is_not_cut(true);
}

/// curl writing the body to a pipe nobody reads: once the pipe is full it stops reading
/// the connection. The gateway must end the request about `idle` seconds later.
fn stalled_download_is_cut(http: &str) {
    let stack = stack();
    let blob = push_big_blob(&stack, "stalled/down");
    let mut cmd = curl(&stack, http);
    cmd.arg(url(&stack, &blob));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let line = wait_for_access_line(&stack, "GET", Duration::from_secs(IDLE * 6));
    let after = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let line = line.unwrap_or_else(|| {
        panic!(
            "a client that stopped reading was not cut: {}",
            stack.gw.proc.log_text()
        )
    });
    eprintln!("stalled download cut after {after:?}: {line}");
    assert!(
        after >= Duration::from_secs(IDLE - 1),
        "cut too early: {after:?} {line}"
    );
    assert!(line.contains("status=200"), "{line}");
    let sent: u64 = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("bytes_out="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(sent < BLOB as u64, "the body was not all sent: {line}");
}

#[test]
fn a_stalled_http1_download_is_cut() {
    stalled_download_is_cut("--http1.1");
}

#[test]
fn a_stalled_http2_download_is_cut() {
    stalled_download_is_cut("--http2");
}

/// Starts a streamed upload (`-T -`, no length) fed from a pipe; returns curl.
fn streamed_patch(stack: &Stack, http: &str, rate: Option<&str>) -> Child {
    let r = stack.request("POST", "/v2/slow/up/blobs/uploads/", &["Content-Length: 0"]);
    assert_eq!(r.status, 202, "{}", r.body_text());
    let location = r.header("Location").unwrap().to_string();
    let mut cmd = curl(stack, http);
    cmd.args([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PATCH",
        "-T",
        "-",
    ])
    .args(["-H", "Content-Type: application/octet-stream"]);
    if let Some(rate) = rate {
        cmd.args(["--limit-rate", rate]);
    }
    cmd.arg(location)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A client sending at 100 KiB/s for six times `idle` is never cut.
fn slow_upload_is_not_cut(http: &str) {
    let stack = stack();
    let mut child = streamed_patch(&stack, http, Some("100K"));
    let mut stdin = child.stdin.take().unwrap();
    let data = random_bytes(100 * 1024 * SLOW_FOR as usize, 3);
    let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "202",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        stack.gw.proc.log_text()
    );
    assert!(!stack.gw.proc.log_text().contains("Timedout"));
}

#[test]
fn a_slow_http1_upload_is_not_cut() {
    slow_upload_is_not_cut("--http1.1");
}

#[test]
fn a_slow_http2_upload_is_not_cut() {
    slow_upload_is_not_cut("--http2");
}

/// A client that sends part of a body and then nothing: the request ends about `idle`
/// seconds later, with nothing half-written left in the registry's upload.
fn stalled_upload_is_cut(http: &str) {
    let stack = stack();
    let mut child = streamed_patch(&stack, http, None);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(256 * 1024, 5)).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    let line = wait_for_access_line(&stack, "PATCH", Duration::from_secs(IDLE * 6));
    let after = started.elapsed();
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let line = line
        .unwrap_or_else(|| panic!("a stalled upload was not cut: {}", stack.gw.proc.log_text()));
    eprintln!("stalled upload cut after {after:?}: {line}");
    assert!(
        after >= Duration::from_secs(IDLE - 1),
        "cut too early: {after:?} {line}"
    );
}

#[test]
fn a_stalled_http1_upload_is_cut() {
    stalled_upload_is_cut("--http1.1");
}

#[test]
fn a_stalled_http2_upload_is_cut() {
    stalled_upload_is_cut("--http2");
}

/// A connection that completes its handshake and then sends nothing holds no HTTP session
/// and is closed after `timeouts.idle`; one that sends its request a byte at a time, slowly
/// at first, is answered (the first byte, read before the session exists, is not lost).
#[test]
fn a_silent_connection_is_closed_and_a_slow_first_byte_is_kept() {
    use std::io::{Read, Write};
    let stack = stack();
    let mut silent = common::client::connect(stack.gw.port, stack.ca());
    silent.conn.complete_io(&mut silent.sock).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = silent.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(IDLE - 1),
        "kept open until timeouts.idle: {:?}",
        started.elapsed()
    );

    let mut slow = common::client::connect(stack.gw.port, stack.ca());
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        stack.gw.port
    );
    slow.write_all(&request.as_bytes()[..1]).unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for byte in &request.as_bytes()[1..] {
        slow.write_all(&[*byte]).unwrap();
        slow.flush().unwrap();
    }
    let answer = common::client::read_response(&mut slow);
    assert_eq!(answer.status, 200, "{}", answer.body_text());
}
