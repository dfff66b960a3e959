//! A test OIDC issuer: HTTPS on a loopback port serving a discovery document and a JWKS
//! (whose keys the test can rotate), counting key-set fetches; and the signing keys
//! (ES256 from rcgen, RS256 from `openssl genpkey`) that mint its tokens.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{free_port, require_tool, Pki};

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: EncodingKey,
    pub jwk: serde_json::Value,
}

impl SigningKey {
    /// A new ES256 (P-256) key.
    pub fn es256(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate().unwrap();
        let point = pair.public_key_raw();
        SigningKey {
            kid: kid.into(),
            algorithm: Algorithm::ES256,
            key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
        }
    }

    /// A new RS256 key (2048 bits, by `openssl genpkey`).
    pub fn rs256(kid: &str) -> SigningKey {
        let openssl = require_tool("openssl");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsa.pem");
        let made = std::process::Command::new(&openssl)
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let modulus = std::process::Command::new(&openssl)
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8(modulus.stdout).unwrap();
        let hex = text.trim().strip_prefix("Modulus=").unwrap();
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let pem = std::fs::read(&path).unwrap();
        SigningKey {
            kid: kid.into(),
            algorithm: Algorithm::RS256,
            key: EncodingKey::from_rsa_pem(&pem).unwrap(),
            jwk: serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"}),
        }
    }

    /// A token with `claims`, signed by this key, naming `kid`.
    pub fn mint_as(&self, kid: &str, claims: &serde_json::Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.into());
        portcullis::auth::jwt_crypto::install();
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    pub fn mint(&self, claims: &serde_json::Value) -> String {
        self.mint_as(&self.kid, claims)
    }
}

/// The running issuer.
pub struct Issuer {
    pub url: String,
    jwks: Arc<Mutex<serde_json::Value>>,
    fetches: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
    port: u16,
}

impl Issuer {
    /// Serves `keys` at `https://127.0.0.1:PORT` with `pki`'s server certificate.
    pub fn start(pki: &Pki, keys: &[&SigningKey]) -> Issuer {
        let (port, listener) = (0..20)
            .find_map(|_| {
                let port = free_port();
                TcpListener::bind(("127.0.0.1", port))
                    .ok()
                    .map(|l| (port, l))
            })
            .expect("a loopback port for the issuer");
        let url = format!("https://127.0.0.1:{port}");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&pki.set.server_cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(&pki.set.server_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let issuer = Issuer {
            url: url.clone(),
            jwks: Arc::new(Mutex::new(serde_json::Value::Null)),
            fetches: Arc::new(AtomicUsize::new(0)),
            stopped: Arc::new(AtomicBool::new(false)),
            port,
        };
        issuer.set_keys(keys);
        let (jwks, fetches, stopped) = (
            issuer.jwks.clone(),
            issuer.fetches.clone(),
            issuer.stopped.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (config, jwks, fetches, url) =
                    (config.clone(), jwks.clone(), fetches.clone(), url.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut line = String::new();
                    let mut reader = BufReader::new(&mut tls);
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    drop(reader);
                    let path = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    let (status, body) = match path.as_str() {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            serde_json::json!({
                                "issuer": url, "jwks_uri": format!("{url}/jwks"),
                            })
                            .to_string(),
                        ),
                        "/jwks" => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", jwks.lock().unwrap().to_string())
                        }
                        _ => ("404 Not Found", "{}".to_string()),
                    };
                    let _ = write!(tls, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        issuer
    }

    /// Serves `keys` from now on (a rotation).
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        let jwks: Vec<_> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = serde_json::json!({ "keys": jwks });
    }

    /// Key-set fetches so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops answering: the port is closed.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
