//! Loading and checking the server certificate chain and key.
//!
//! pingora's own loader panics on a bad file, so every file is read and checked here first;
//! each failure is a [`Problem`] naming the config key and the fix, never a panic.

use crate::clock::{format_time, unix_now};
use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::problem::Problem;

/// A certificate expiring sooner than this is reported as a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// What `portcullis check` prints about one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
}

/// A loaded, checked server identity: the chain rustls serves and what was found about it.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub certified_key: Arc<CertifiedKey>,
    /// Leaf first, as in the file.
    pub chain: Vec<CertInfo>,
    /// Things that work but deserve attention (near expiry, no SAN).
    pub warnings: Vec<String>,
}

/// Reads every PEM block of type `T` (named `block` in messages) in a file, in file order;
/// a file with none is an error.
pub fn read_pem_items<T: PemObject>(path: &Path, block: &str) -> Result<Vec<T>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let items = T::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if items.is_empty() {
        return Err(format!("{} holds no PEM \"{block}\" block", path.display()));
    }
    Ok(items)
}

/// Reads every certificate in a PEM file, in file order.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    read_pem_items(path, "CERTIFICATE")
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "{} holds no PEM private key (\"PRIVATE KEY\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")",
            path.display()
        ),
        other => format!("{} is not a valid PEM private key: {other}", path.display()),
    })
}

/// Loads and checks `tls.certificate` and `tls.key`. Every problem found is returned.
pub fn load_server_identity(
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerIdentity, Vec<Problem>> {
    let certs = read_certificates(cert_path).map_err(|m| Problem::new("tls.certificate", m));
    let key = read_private_key(key_path).map_err(|m| Problem::new("tls.key", m));
    let (certs, key) = match (certs, key) {
        (Ok(c), Ok(k)) => (c, k),
        (c, k) => return Err(c.err().into_iter().chain(k.err()).collect()),
    };
    let mut problems = Vec::new();
    let (chain, warnings) = inspect_chain(&certs, unix_now(), &mut problems);
    let certified_key = match certify(certs, &key) {
        Ok(ck) => Some(ck),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    match certified_key {
        Some(ck) if problems.is_empty() => Ok(ServerIdentity {
            certified_key: Arc::new(ck),
            chain,
            warnings,
        }),
        _ => Err(problems),
    }
}

/// Pairs the chain with its key, refusing a key that does not belong to the first certificate.
fn certify(
    certs: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<CertifiedKey, Problem> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key).map_err(|e| {
        Problem::new("tls.key", format!("the key cannot be used for TLS: {e}; use an RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519 key"))
    })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|_| {
        Problem::new(
            "tls.key",
            "the key does not belong to the first certificate in tls.certificate; point tls.key at the key that certificate was issued for, and put the server's own certificate first in the file",
        )
    })?;
    Ok(certified)
}

/// Parses every certificate, checks order and validity; problems go to `problems`.
fn inspect_chain(
    certs: &[CertificateDer<'_>],
    now: i64,
    problems: &mut Vec<Problem>,
) -> (Vec<CertInfo>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut parsed = Vec::new();
    for (index, der) in certs.iter().enumerate() {
        match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => parsed.push(cert),
            Err(e) => {
                problems.push(Problem::new(
                    "tls.certificate",
                    format!("certificate #{} cannot be parsed: {e}", index + 1),
                ));
                return (Vec::new(), warnings);
            }
        }
    }
    for (index, pair) in parsed.windows(2).enumerate() {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            problems.push(Problem::new("tls.certificate", format!(
                "certificate #{} ({}) was not issued by certificate #{} ({}); put the server certificate first, then the intermediate that signed it, and so on",
                index + 1, pair[0].subject(), index + 2, pair[1].subject()
            )));
        }
    }
    let infos: Vec<CertInfo> = parsed.iter().map(cert_info).collect();
    for (index, info) in infos.iter().enumerate() {
        check_validity(index, info, now, problems, &mut warnings);
    }
    if let Some(leaf) = infos.first() {
        if leaf.names.is_empty() {
            warnings.push("the server certificate has no subjectAltName; docker, skopeo and other Go clients refuse such certificates".to_string());
        }
    }
    (infos, warnings)
}

fn check_validity(
    index: usize,
    info: &CertInfo,
    now: i64,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) {
    let which = format!("certificate #{} ({})", index + 1, info.subject);
    if now > info.not_after {
        problems.push(Problem::new(
            "tls.certificate",
            format!(
                "{which} expired on {}; renew it",
                format_time(info.not_after)
            ),
        ));
    } else if now < info.not_before {
        problems.push(Problem::new(
            "tls.certificate",
            format!(
                "{which} is not valid before {}; check the clock or reissue it",
                format_time(info.not_before)
            ),
        ));
    } else if (info.not_after - now) / 86_400 < EXPIRY_WARNING_DAYS {
        warnings.push(format!(
            "{which} expires on {}",
            format_time(info.not_after)
        ));
    }
}

/// The facts about one certificate that `check` shows.
fn cert_info(cert: &X509Certificate<'_>) -> CertInfo {
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(general_name)
            .collect(),
        _ => Vec::new(),
    };
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
    }
}

fn general_name(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
        GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| format!("IP:{ip}")),
        GeneralName::RFC822Name(mail) => Some(format!("email:{mail}")),
        GeneralName::URI(uri) => Some(format!("URI:{uri}")),
        _ => None,
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}
