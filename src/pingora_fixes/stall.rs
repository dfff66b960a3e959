//! When a transfer counts as stalled: no byte moving on a connection for `timeouts.idle`.
//!
//! pingora's write timeout bounds each whole body write, and a write waits for the kernel to
//! wake it, which with an autotuned send buffer (4 MiB on loopback) happens only after a
//! large part of that buffer has drained: a client reading at 100 KiB/s was cut after 5 s
//! with `idle = 5` although bytes kept moving. `TCP_USER_TIMEOUT` is no better for clients:
//! a slow reader's receive window stays shut for seconds between openings (the receiver
//! opens it in large steps), and the kernel counted that as a stall (cut after 8.6 s).
//!
//! So client sends are not timed by pingora. Every client connection is wrapped in
//! [`Watched`], which lets a send wait as long as the connection makes progress: while a
//! write or flush is blocked it looks every `idle / 4` at the kernel's count of bytes the
//! client acknowledged or sent, and fails the write only when neither moved for `idle`.
//! Reads keep pingora's per-read timeout of `idle`, which any arriving byte (under TLS, any
//! whole record) ends. Registry sockets get `TCP_USER_TIMEOUT` = `idle` in place of a
//! per-write timeout: the registry reads as fast as its storage allows.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::ext::TcpKeepalive;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::Stream;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Silence before the first keepalive probe on a registry socket, at most.
const PROBE_AFTER: Duration = Duration::from_secs(60);
/// Between keepalive probes.
const PROBE_EVERY: Duration = Duration::from_secs(15);
/// Unanswered probes before the connection is given up.
const PROBES: usize = 4;

/// Keepalive probes and `TCP_USER_TIMEOUT` = `idle`, for registry sockets.
pub fn upstream_keepalive(idle: Duration) -> TcpKeepalive {
    TcpKeepalive {
        idle: PROBE_AFTER.min(idle).max(Duration::from_secs(1)),
        interval: PROBE_EVERY.min(idle).max(Duration::from_secs(1)),
        count: PROBES,
        user_timeout: idle,
    }
}

/// How often a blocked send looks for progress: four times per `idle`.
fn look_every(idle: Duration) -> Duration {
    (idle / 4).max(Duration::from_millis(50))
}

/// The kernel's counts for a socket: bytes acknowledged by and received from the peer.
fn moved(socket: Option<&SocketDigest>) -> Option<(u64, u64)> {
    let info = socket?.tcp_info()?;
    Some((info.tcpi_bytes_acked, info.tcpi_bytes_received))
}

/// The client address for log lines, `-` when unknown.
fn show_peer(socket: Option<&SocketDigest>) -> String {
    crate::clock::or_dash(socket.and_then(|s| s.peer_addr()))
}

/// A server app whose client connections are counted against `limits.max_connections`,
/// handshaken ([`super::handshake`]) and [`Watched`].
pub struct WatchedApp<A> {
    inner: Arc<A>,
    idle: Duration,
    /// `limits.max_connections`, when set.
    limit: Option<Arc<super::conn_limit::ConnectionLimit>>,
    handshake: super::handshake::Handshake,
}

impl<A> WatchedApp<A> {
    pub fn new(
        inner: A,
        idle: Duration,
        max_connections: Option<u32>,
        handshake: super::handshake::Handshake,
    ) -> Self {
        Self {
            inner: Arc::new(inner),
            idle,
            limit: max_connections.map(super::conn_limit::ConnectionLimit::new),
            handshake,
        }
    }

    /// The wrapped app, for set-up before the service starts.
    pub fn inner_mut(&mut self) -> Option<&mut A> {
        Arc::get_mut(&mut self.inner)
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for WatchedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive connection comes back already handshaken and wrapped.
        if stream.as_any().is::<Watched>() {
            return self.inner.process_new(stream, shutdown).await;
        }
        let socket = stream.get_socket_digest();
        let mut slot = None;
        if let Some(limit) = &self.limit {
            let ip = socket
                .as_ref()
                .and_then(|s| s.peer_addr())
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            match ip.map(|ip| limit.take(ip)) {
                Some(None) => {
                    tracing::info!(client = %show_peer(socket.as_deref()), "connection refused: limits.max_connections reached for this address");
                    if let Some(metrics) = crate::telemetry::metrics::global() {
                        metrics.limited("connections".into());
                    }
                    return None;
                }
                Some(taken) => slot = taken,
                None => {}
            }
        }
        // Boxed: the handshake's state (several KiB) is freed once it is done instead of
        // sizing this future, which lives as long as the connection.
        let stream = Box::pin(self.handshake.accept(stream)).await?;
        let mut watched = Watched::new(stream, self.idle);
        watched.slot = slot;
        // No HTTP session (header buffer, timers, pingora's session future: about 20 KiB)
        // for a connection until its first byte arrives (see `Watched::read_ahead`).
        match tokio::time::timeout(self.idle, watched.read_ahead()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Ok(Err(_)) => return None,
            Err(_) => {
                tracing::debug!(client = %show_peer(socket.as_deref()), "no request within timeouts.idle; closed");
                return None;
            }
        }
        let stream: Stream = Box::new(watched);
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// A client connection whose blocked sends fail only after `idle` without progress.
#[derive(Debug)]
pub struct Watched {
    inner: Stream,
    idle: Duration,
    socket: Option<Arc<SocketDigest>>,
    /// The latest blocked send's stall, if any.
    stall: Option<Stall>,
    /// This connection's place under `limits.max_connections`.
    slot: Option<super::conn_limit::Slot>,
    /// The first byte, read before the HTTP session exists; handed out by the first read.
    first: Option<u8>,
}

#[derive(Debug)]
struct Stall {
    /// Bytes the client had acknowledged and sent when progress was last seen.
    seen: Option<(u64, u64)>,
    since: Instant,
    /// The latest blocked send.
    last_block: Instant,
    next_look: Pin<Box<Sleep>>,
}

impl Watched {
    pub fn new(inner: Stream, idle: Duration) -> Self {
        let socket = inner.get_socket_digest();
        Self {
            inner,
            idle,
            socket,
            stall: None,
            slot: None,
            first: None,
        }
    }

    /// Waits for the client's first byte (the rest stays in rustls' buffer) and keeps it
    /// for the first read: `false` when the client closed without sending anything.
    ///
    /// pingora builds a connection's HTTP session as soon as it gets the connection, so an
    /// idle connection held its header buffer, timers and session future from the start
    /// (bench/README.md, "Idle connection memory"); waiting here holds only this.
    pub async fn read_ahead(&mut self) -> std::io::Result<bool> {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        let n = self.inner.read(&mut byte).await?;
        self.first = (n == 1).then_some(byte[0]);
        Ok(n == 1)
    }

    /// Called when a send is blocked: `Pending` while the connection still moves (with a
    /// wake-up to look again), an error once nothing moved for `idle`.
    ///
    /// A send that completes does not end a stall: under TLS a write can complete into
    /// rustls' buffer while nothing reaches the client. Only the kernel's counts moving
    /// do. A block after a pause in sending (no block for two looks) starts afresh, so time
    /// spent waiting on the registry never counts against the client.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let every = look_every(self.idle);
        let socket = self.socket.as_deref();
        let now = Instant::now();
        let moved = moved(socket);
        let stall = match &mut self.stall {
            Some(stall) if now.duration_since(stall.last_block) <= every * 2 => stall,
            slot => slot.insert(Stall {
                seen: moved,
                since: now,
                last_block: now,
                next_look: Box::pin(tokio::time::sleep(every)),
            }),
        };
        stall.last_block = now;
        if moved != stall.seen {
            stall.seen = moved;
            stall.since = now;
        }
        while stall.next_look.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now.duration_since(stall.since) >= self.idle {
                tracing::info!(
                    client = %show_peer(socket),
                    idle_s = self.idle.as_secs(),
                    "client connection stalled: nothing moved for timeouts.idle; closing it"
                );
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no bytes moved for {} s", self.idle.as_secs()),
                )));
            }
            stall.next_look.as_mut().reset((now + every).into());
        }
        Poll::Pending
    }

    /// The outcome of a send: a blocked one may be a stall.
    fn sent<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Pending => self.blocked(cx),
            ready => ready,
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if buf.remaining() > 0 {
            if let Some(byte) = self.first.take() {
                buf.put_slice(&[byte]);
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.sent(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.sent(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.sent(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.sent(cx, poll)
    }
}

#[async_trait]
impl Shutdown for Watched {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for Watched {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Watched {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Watched {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Watched {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Watched {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
        self.socket = self.inner.get_socket_digest();
    }
}

#[async_trait]
impl Peek for Watched {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        if self.first.is_some() {
            // A byte was already taken off the stream: a peek below it would miss it.
            return Ok(false);
        }
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
#[path = "stall_tests.rs"]
mod tests;
