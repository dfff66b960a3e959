//! Publishing challenge answers while an order is validated, and the tls-alpn-01
//! validation certificate (RFC 8737 §3).

use std::sync::Arc;

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Acme;

/// A self-signed certificate for `name` carrying the critical `acmeIdentifier` extension
/// with the SHA-256 digest of the key authorization, served only to handshakes that offer
/// ALPN `acme-tls/1` for `name`.
pub fn validation_certificate(name: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    if digest.len() != 32 {
        return Err("the key authorization digest is not SHA-256".into());
    }
    let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let mut params =
        CertificateParams::new(vec![name.to_string()]).map_err(|e| format!("{name}: {e}"))?;
    params.distinguished_name = DistinguishedName::new();
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the validation certificate: {e}"))?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("cannot use the validation key: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

/// The answers of one order, withdrawn when it is dropped (validated, failed or
/// abandoned), so no stale answer stays published.
pub struct Published<'a> {
    acme: &'a Acme,
    names: Vec<String>,
    tokens: Vec<String>,
}

impl<'a> Published<'a> {
    pub fn new(acme: &'a Acme) -> Self {
        Self {
            acme,
            names: Vec::new(),
            tokens: Vec::new(),
        }
    }

    /// Answers tls-alpn-01 handshakes for `name` with `certificate`.
    pub fn alpn(&mut self, name: &str, certificate: CertifiedKey) {
        let mut answers = self
            .acme
            .alpn_answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        answers.insert(name.to_ascii_lowercase(), Arc::new(certificate));
        self.names.push(name.to_ascii_lowercase());
    }

    /// Answers `GET /.well-known/acme-challenge/TOKEN` with `key_authorization`.
    pub fn http(&mut self, token: &str, key_authorization: &str) {
        let mut answers = self
            .acme
            .http_answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        answers.insert(token.to_string(), key_authorization.to_string());
        self.tokens.push(token.to_string());
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        let mut alpn = self
            .acme
            .alpn_answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for name in &self.names {
            alpn.remove(name);
        }
        drop(alpn);
        let mut http = self
            .acme
            .http_answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for token in &self.tokens {
            http.remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn validation_certificate_carries_the_digest_in_a_critical_extension() {
        let digest = [7u8; 32];
        let key = validation_certificate("registry.example.com", &digest).unwrap();
        let (_, cert) = X509Certificate::from_der(key.cert[0].as_ref()).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        // DER OCTET STRING of 32 bytes: 0x04 0x20 then the digest.
        assert_eq!(ext.value, [&[0x04u8, 0x20][..], &digest[..]].concat());
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", san.value.general_names),
            "[DNSName(\"registry.example.com\")]"
        );
        assert!(validation_certificate("a.example.com", &[1u8; 20]).is_err());
    }
}
