//! The storage folder: the account and the certificate, per ACME directory, owner-only.
//!
//! Layout: `STORAGE/<directory>/account.json` (the account key and URL) and
//! `STORAGE/<directory>/certificate.pem` (the chain, then its private key), where
//! `<directory>` is the directory URL made a file name, so staging and production never mix.
//! Files are written whole to a temporary name and renamed, with mode 0600; folders are 0700.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;

use super::AcmeSettings;
use crate::tls::certs::{load_server_identity, ServerIdentity};

const ACCOUNT: &str = "account.json";
const CERTIFICATE: &str = "certificate.pem";

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    domains: Vec<String>,
}

impl Store {
    /// Creates the folders owner-only (tightening the storage folder if others could read
    /// it, with a warning).
    pub fn open(settings: &AcmeSettings) -> Result<Self, String> {
        let root = &settings.storage;
        make_private_dir(root)
            .map_err(|e| format!("tls.acme.storage: cannot create {}: {e}", root.display()))?;
        let dir = root.join(directory_folder(&settings.directory));
        make_private_dir(&dir)
            .map_err(|e| format!("tls.acme.storage: cannot create {}: {e}", dir.display()))?;
        Ok(Self {
            dir,
            domains: settings.domains.clone(),
        })
    }

    /// The stored certificate, if there is one that is valid now. One that does not cover
    /// every configured name is still served (until its replacement arrives).
    pub fn load_certificate(&self) -> Result<Option<ServerIdentity>, String> {
        let path = self.dir.join(CERTIFICATE);
        if !path.exists() {
            return Ok(None);
        }
        let identity = load_server_identity(&path, &path).map_err(|problems| {
            let why: Vec<String> = problems.into_iter().map(|p| p.message).collect();
            why.join("; ")
        })?;
        Ok(Some(identity))
    }

    /// Whether `identity` names every configured domain.
    pub fn covers(&self, identity: &ServerIdentity) -> bool {
        let names = identity
            .chain
            .first()
            .map(|c| c.names.as_slice())
            .unwrap_or_default();
        self.domains.iter().all(|d| {
            names.iter().any(|n| {
                n.strip_prefix("DNS:")
                    .is_some_and(|n| n.eq_ignore_ascii_case(d))
            })
        })
    }

    /// Stores a new chain and key, then loads them back as they will be served.
    pub fn save_certificate(
        &self,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<ServerIdentity, String> {
        let both = format!("{}\n{key_pem}", chain_pem.trim_end());
        write_private(&self.dir.join(CERTIFICATE), both.as_bytes())?;
        self.load_certificate()?
            .ok_or_else(|| "the certificate just stored is missing".to_string())
    }

    pub fn load_account(&self) -> Result<Option<AccountCredentials>, String> {
        let path = self.dir.join(ACCOUNT);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is not an account file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Removes the stored account (the server no longer knows it).
    pub fn forget_account(&self) {
        let _ = std::fs::remove_file(self.dir.join(ACCOUNT));
    }

    pub fn save_account(&self, credentials: &AccountCredentials) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(credentials).map_err(|e| e.to_string())?;
        write_private(&self.dir.join(ACCOUNT), &json)
    }
}

/// `https://acme-v02.api.letsencrypt.org/directory` → `acme-v02.api.letsencrypt.org-directory`.
fn directory_folder(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let name: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = name.split('-').filter(|p| !p.is_empty()).collect();
    parts.join("-").trim_matches('.').to_string()
}

fn make_private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "tls.acme.storage: {} was readable by others (mode {:o}); made it owner-only",
            path.display(),
            mode & 0o777
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file, mode 0600, so a reader sees the old
/// file or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let temporary = path.with_extension("new");
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&temporary);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::acme::ChallengeKind;

    fn settings(storage: &Path) -> AcmeSettings {
        AcmeSettings {
            directory: "https://127.0.0.1:14000/dir".into(),
            domains: vec!["registry.test".into()],
            contact: Vec::new(),
            storage: storage.to_path_buf(),
            challenge: ChallengeKind::TlsAlpn01,
            http_listen: None,
            ca: Vec::new(),
            renew_before: None,
        }
    }

    #[test]
    fn folders_and_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::open(&settings(&root)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(store.dir, root.join("127.0.0.1-14000-dir"));
        assert_eq!(mode(&store.dir), 0o700);
        assert_eq!(store.load_certificate().unwrap().map(|_| ()), None);
        assert!(store.load_account().unwrap().is_none());
        write_private(&store.dir.join(ACCOUNT), b"{}").unwrap();
        assert_eq!(mode(&store.dir.join(ACCOUNT)), 0o600);
        let Err(e) = store.load_account() else {
            panic!("an empty object is not an account");
        };
        assert!(e.contains("not an account file"), "{e}");
    }

    #[test]
    fn a_broken_certificate_file_is_reported_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&settings(dir.path())).unwrap();
        write_private(&store.dir.join(CERTIFICATE), b"garbage").unwrap();
        assert!(store.load_certificate().is_err());
    }

    #[test]
    fn directory_folder_names() {
        assert_eq!(
            directory_folder("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org-directory"
        );
        assert_eq!(directory_folder("https://[::1]:14000/dir/"), "1-14000-dir");
    }
}
