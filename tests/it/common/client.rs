//! A deliberately small HTTPS/1.1 client: sends exactly the bytes a test writes, so tests can
//! spoof and malform headers, and returns the raw answer parsed.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body_text()))
    }
}

/// A client certificate: PEM chain and PEM key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub chain_pem: String,
    pub key_pem: String,
}

/// A TLS client configuration trusting `ca_pem`, offering only `alpn`.
pub fn tls_config(ca_pem: &Path, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    tls_config_with(ca_pem, alpn, None)
}

/// [`tls_config`] presenting `client` when the server asks for a certificate.
pub fn tls_config_with(
    ca_pem: &Path,
    alpn: &[&[u8]],
    client: Option<&ClientCert>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(c) => {
            let chain = CertificateDer::pem_slice_iter(c.chain_pem.as_bytes())
                .map(Result::unwrap)
                .collect();
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Sends `request` (a complete HTTP/1.1 request; it should say `Connection: close`) over TLS
/// to 127.0.0.1:`port`, verifying the server as `localhost`, and reads the answer to EOF.
pub fn send(port: u16, ca_pem: &Path, request: &[u8]) -> Response {
    let mut tls = connect(port, ca_pem);
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    read_response(&mut tls)
}

/// Sends `request` (complete, saying `Connection: close`) over plain TCP to 127.0.0.1:`port`
/// and parses what comes back until the server closes.
pub fn send_plain(port: u16, request: &[u8]) -> Response {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    parse(&raw)
}

/// A TLS connection to 127.0.0.1:`port` offering `alpn`, the server verified as `name`,
/// with the handshake done: `Err` with rustls' error when it fails.
pub fn connect_as(
    port: u16,
    ca_pem: &Path,
    name: &str,
    alpn: &[&[u8]],
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let config = tls_config(ca_pem, alpn);
    let server = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(config, server).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// A TLS connection (HTTP/1.1 by ALPN) to 127.0.0.1:`port`, the server verified as `localhost`.
pub fn connect(port: u16, ca_pem: &Path) -> StreamOwned<ClientConnection, TcpStream> {
    let config = tls_config(ca_pem, &[b"http/1.1"]);
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Reads an answer to EOF (the request said `Connection: close`) and parses it.
pub fn read_response(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> Response {
    parse(&read_raw(tls).unwrap_or_else(|e| panic!("reading the response: {e}")))
}

/// Reads to EOF; an error (such as a refused TLS handshake) before any byte is an `Err`.
fn read_raw(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if !raw.is_empty()
                    && matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ) =>
            {
                return Ok(raw)
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The bytes of `method path` with `Host: localhost:PORT`, `Connection: close` and extra lines.
fn request_text(port: u16, method: &str, path: &str, extra_headers: &[&str]) -> String {
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n");
    for line in extra_headers {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text
}

/// `GET`/`HEAD`/... `path` with `Host: localhost:PORT` and extra header lines.
pub fn request(
    port: u16,
    ca_pem: &Path,
    method: &str,
    path: &str,
    extra_headers: &[&str],
) -> Response {
    send(
        port,
        ca_pem,
        request_text(port, method, path, extra_headers).as_bytes(),
    )
}

/// Parses status line, headers and a Content-Length, chunked or read-to-end body.
pub fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Like [`request`], presenting `client` (or no certificate), and returning transport or
/// TLS errors (such as a refused client certificate) instead of panicking.
pub fn try_request(
    port: u16,
    ca_pem: &Path,
    client: Option<&ClientCert>,
    method: &str,
    path: &str,
    extra_headers: &[&str],
) -> Result<Response, String> {
    let text = request_text(port, method, path, extra_headers);
    try_send(port, ca_pem, client, text.as_bytes())
}

/// Sends the complete `request` over TLS (HTTP/1.1), presenting `client` if asked; an
/// `Err` when the handshake fails or no answer comes.
pub fn try_send(
    port: u16,
    ca_pem: &Path,
    client: Option<&ClientCert>,
    request: &[u8],
) -> Result<Response, String> {
    let config = tls_config_with(ca_pem, &[b"http/1.1"], client);
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(request)
        .and_then(|_| tls.flush())
        .map_err(|e| e.to_string())?;
    let raw = read_raw(&mut tls)?;
    if raw.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok(parse(&raw))
}
