//! Development and test certificates (rcgen): a CA, an intermediate, and leaves it signs.
//!
//! For local runs and the test suite only; production certificates come from a real CA.
//! Keys are ECDSA P-256.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// What kind of certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// May sign other certificates.
    Ca,
    /// TLS server (serverAuth).
    Server,
    /// TLS client (clientAuth).
    Client,
    /// Signs tokens: digital signature only.
    Signing,
}

/// One certificate to issue.
#[derive(Debug, Clone)]
pub struct Spec {
    pub common_name: String,
    /// Subject alternative names; strings that parse as IP addresses become IP SANs.
    pub names: Vec<String>,
    pub kind: Kind,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Serial number; random when `None`. Set it to revoke the certificate in a CRL.
    pub serial: Option<u64>,
}

impl Spec {
    /// A certificate valid from an hour ago for `days` days.
    pub fn new(common_name: &str, names: &[&str], kind: Kind, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: common_name.to_string(),
            names: names.iter().map(|n| n.to_string()).collect(),
            kind,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
            serial: None,
        }
    }
}

/// An issued certificate with its key, able to sign further certificates if a CA.
pub struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// What it was made from; an issuer signs with its own name and key identifier.
    params: CertificateParams,
}

impl Issued {
    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }
    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
    /// What signs the certificates this one issues.
    fn issuer(&self) -> rcgen::Issuer<'_, &KeyPair> {
        rcgen::Issuer::from_params(&self.params, &self.key)
    }
}

/// Issues `spec`, self-signed when `issuer` is `None`.
pub fn issue(spec: &Spec, issuer: Option<&Issued>) -> Result<Issued, rcgen::Error> {
    let mut params = CertificateParams::new(spec.names.clone())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.common_name.as_str());
    params.distinguished_name = dn;
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.serial_number = spec.serial.map(rcgen::SerialNumber::from);
    match spec.kind {
        Kind::Ca => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        }
        Kind::Server => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Kind::Client => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Kind::Signing => params.key_usages = vec![KeyUsagePurpose::DigitalSignature],
    }
    let key = KeyPair::generate()?;
    let cert = match issuer {
        Some(parent) => params.signed_by(&key, &parent.issuer())?,
        None => params.self_signed(&key)?,
    };
    Ok(Issued { cert, key, params })
}

/// A CRL, PEM, signed by `issuer`, revoking the certificates with `serials`.
pub fn revocation_list(issuer: &Issued, serials: &[u64]) -> Result<String, rcgen::Error> {
    let now = OffsetDateTime::now_utc();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - Duration::minutes(5),
        next_update: now + Duration::days(7),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(*serial),
                revocation_time: now - Duration::minutes(1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    params.signed_by(&issuer.issuer())?.pem()
}

/// The files of a development certificate set.
#[derive(Debug, Clone)]
pub struct DevSet {
    /// Root CA certificate; what clients trust (`/etc/docker/certs.d/HOST:PORT/ca.crt`).
    pub ca_cert: PathBuf,
    /// Server certificate followed by the intermediate that signed it (`tls.certificate`).
    pub server_cert: PathBuf,
    /// Server key (`tls.key`).
    pub server_key: PathBuf,
    /// A folder holding only `ca.crt`: what `skopeo --cert-dir` or
    /// `/etc/docker/certs.d/HOST:PORT/` should contain. (Those folders must not hold a
    /// `.key` without its `.cert`, so the CA folder itself is not fit for that.)
    pub trust_dir: PathBuf,
}

/// Writes a CA, an intermediate and a server certificate for `names` into `dir`:
/// `ca.crt`, `ca.key`, `intermediate.crt`, `intermediate.key`, `server.crt` (leaf +
/// intermediate), `server.key`, and `trust/ca.crt`. Keys are written readable by the owner only.
pub fn write_dev_set(dir: &Path, names: &[&str]) -> Result<DevSet, String> {
    write_dev_set_with_clients(dir, names, &[])
}

/// [`write_dev_set`], plus a client certificate (signed by the root CA, so
/// `tls.client_auth.cas = ["ca.crt"]` accepts it) for each of `clients`, each in
/// `clients/NAME/` as a ready certs.d folder: `ca.crt`, `client.cert`, `client.key`.
pub fn write_dev_set_with_clients(
    dir: &Path,
    names: &[&str],
    clients: &[&str],
) -> Result<DevSet, String> {
    let issue_err = |e: rcgen::Error| format!("cannot issue a certificate: {e}");
    let ca = issue(
        &Spec::new("Portcullis development CA", &[], Kind::Ca, 3650),
        None,
    )
    .map_err(issue_err)?;
    let intermediate = issue(
        &Spec::new("Portcullis development intermediate", &[], Kind::Ca, 3650),
        Some(&ca),
    )
    .map_err(issue_err)?;
    let common_name = names.first().copied().unwrap_or("localhost");
    let server = issue(
        &Spec::new(common_name, names, Kind::Server, 825),
        Some(&intermediate),
    )
    .map_err(issue_err)?;

    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let chain = format!("{}{}", server.cert_pem(), intermediate.cert_pem());
    write_file(&dir.join("ca.crt"), &ca.cert_pem(), false)?;
    write_file(&dir.join("ca.key"), &ca.key_pem(), true)?;
    write_file(
        &dir.join("intermediate.crt"),
        &intermediate.cert_pem(),
        false,
    )?;
    write_file(&dir.join("intermediate.key"), &intermediate.key_pem(), true)?;
    write_file(&dir.join("server.crt"), &chain, false)?;
    write_file(&dir.join("server.key"), &server.key_pem(), true)?;
    let trust_dir = dir.join("trust");
    fs::create_dir_all(&trust_dir)
        .map_err(|e| format!("cannot create {}: {e}", trust_dir.display()))?;
    write_file(&trust_dir.join("ca.crt"), &ca.cert_pem(), false)?;
    for client in clients {
        let folder = dir.join("clients").join(client);
        fs::create_dir_all(&folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let issued =
            issue(&Spec::new(client, &[], Kind::Client, 825), Some(&ca)).map_err(issue_err)?;
        write_file(&folder.join("ca.crt"), &ca.cert_pem(), false)?;
        write_file(&folder.join("client.cert"), &issued.cert_pem(), false)?;
        write_file(&folder.join("client.key"), &issued.key_pem(), true)?;
    }
    Ok(DevSet {
        trust_dir,
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    })
}

/// Writes a token signing key (`token.key`, EC P-256, PKCS#8) and its self-signed
/// certificate (`token.crt`, valid `days` days) into `dir`.
pub fn write_token_key(
    dir: &Path,
    common_name: &str,
    days: i64,
) -> Result<(PathBuf, PathBuf), String> {
    let issued = issue(&Spec::new(common_name, &[], Kind::Signing, days), None)
        .map_err(|e| format!("cannot make a key: {e}"))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
    write_file(&key, &issued.key_pem(), true)?;
    write_file(&cert, &issued.cert_pem(), false)?;
    Ok((key, cert))
}

/// Writes `contents` to `path`; `secret` files get mode 0600 from creation on.
pub fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = secret;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
