//! TLS termination: the chain served, ALPN, and the lowest protocol version.

use crate::common;

use std::net::TcpStream;
use std::sync::Arc;

use common::{Pki, Stack};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion};

/// Completes a handshake with `config` and returns the connection, or the handshake error.
fn handshake(port: u16, config: Arc<ClientConfig>) -> Result<ClientConnection, rustls::Error> {
    let mut conn =
        ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) => {
                return Err(e
                    .into_inner()
                    .and_then(|inner| inner.downcast::<rustls::Error>().ok())
                    .map(|b| *b)
                    .unwrap_or(rustls::Error::General("io error".into())))
            }
        }
    }
    Ok(conn)
}

fn client(
    pki: &Pki,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_file_iter(
            &pki.set.ca_cert,
        )
        .unwrap()
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

#[test]
fn serves_leaf_and_intermediate_and_negotiates_h2() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("");
    let all = rustls::ALL_VERSIONS;

    let conn = handshake(gw.port, client(&pki, &[b"h2", b"http/1.1"], all))
        .expect("handshake with only the root CA trusted");
    assert_eq!(
        conn.peer_certificates().unwrap().len(),
        2,
        "leaf + intermediate are sent"
    );
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    let tls12 = handshake(
        gw.port,
        client(&pki, &[b"http/1.1"], &[&rustls::version::TLS12]),
    )
    .expect("TLS 1.2 accepted by default");
    assert_eq!(tls12.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(tls12.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn http2_can_be_turned_off() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start_with_tls("", "http2 = false");
    let conn = handshake(
        gw.port,
        client(&pki, &[b"h2", b"http/1.1"], rustls::ALL_VERSIONS),
    )
    .unwrap();
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn min_version_1_3_refuses_tls_1_2() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start_with_tls("", "min_version = \"1.3\"");
    let refused = handshake(
        gw.port,
        client(&pki, &[b"http/1.1"], &[&rustls::version::TLS12]),
    );
    assert!(refused.is_err(), "a TLS 1.2-only client must be refused");
    let ok = handshake(gw.port, client(&pki, &[b"http/1.1"], rustls::ALL_VERSIONS)).unwrap();
    assert_eq!(ok.protocol_version(), Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn a_client_that_does_not_trust_our_ca_fails_and_the_gateway_keeps_serving() {
    let Stack {
        registry: _registry,
        pki,
        gw,
    } = Stack::start("");
    let stranger = Pki::new();
    assert!(handshake(
        gw.port,
        client(&stranger, &[b"http/1.1"], rustls::ALL_VERSIONS)
    )
    .is_err());
    // Garbage instead of a ClientHello.
    {
        use std::io::Write;
        let mut tcp = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    let r = common::client::request(gw.port, &pki.set.ca_cert, "GET", "/v2/", &[]);
    assert_eq!(r.status, 200);
}
