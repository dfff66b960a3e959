//! Validating `[tls]`: the certificate files or `[tls.acme]`, and client certificates.

use std::path::{Path, PathBuf};

use super::file::FileTls;
use super::{acme, auth, resolve_path, Problem};
use crate::tls::certs::load_server_identity;
use crate::tls::settings::{ServerCert, TlsConfig};

/// `[tls]`, with every problem found.
pub fn parse_tls(tls: Option<&FileTls>, base: &Path) -> Result<TlsConfig, Vec<Problem>> {
    let tls = tls.ok_or_else(|| {
        vec![Problem::new(
            "tls",
            "section is missing; add [tls] with certificate and key (or [tls.acme])",
        )]
    })?;
    let server = server_cert(tls, base);
    let client_auth = tls
        .client_auth
        .as_ref()
        .map(|c| auth::parse_client_auth(c, base))
        .transpose();
    let (server, client_auth) = match (server, client_auth) {
        (Ok(s), Ok(c)) => (s, c),
        (s, c) => return Err(s.err().into_iter().chain(c.err()).flatten().collect()),
    };
    Ok(TlsConfig {
        server,
        min_version: tls.min_version,
        http2: tls.http2,
        client_auth,
    })
}

/// The certificate files, or `[tls.acme]`: exactly one of them.
fn server_cert(tls: &FileTls, base: &Path) -> Result<ServerCert, Vec<Problem>> {
    if let Some(acme) = &tls.acme {
        if tls.certificate.is_some() || tls.key.is_some() {
            return Err(vec![Problem::new(
                "tls.acme",
                "cannot be used with tls.certificate and tls.key; remove the two files to have the certificate obtained by ACME, or remove [tls.acme]",
            )]);
        }
        return acme::parse_acme(acme, base).map(ServerCert::Acme);
    }
    let mut problems = Vec::new();
    let certificate = required_path(
        tls.certificate.as_deref(),
        "tls.certificate",
        base,
        &mut problems,
    );
    let key = required_path(tls.key.as_deref(), "tls.key", base, &mut problems);
    let (Some(certificate), Some(key)) = (certificate, key) else {
        return Err(problems);
    };
    let identity = load_server_identity(&certificate, &key)?;
    Ok(ServerCert::Files {
        certificate,
        key,
        identity,
    })
}

/// A path key that must be set; relative paths resolve against the config file's folder.
fn required_path(
    value: Option<&str>,
    key: &str,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Option<PathBuf> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(resolve_path(base, v)),
        _ => {
            problems.push(Problem::new(key, "is missing; give the path of a PEM file"));
            None
        }
    }
}
