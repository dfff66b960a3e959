//! The validated `[auth]` settings (built by `config/`, used by authentication and access).

use std::path::PathBuf;
use std::time::Duration;

use super::htpasswd::HtpasswdDb;
use super::robots::RobotsDb;
use super::token::{Signer, TrustedKey, Verifier};
use super::Require;

/// `[auth.htpasswd]`, checked: the file parsed.
#[derive(Debug, Clone)]
pub struct HtpasswdConfig {
    pub path: PathBuf,
    pub realm: String,
    pub db: HtpasswdDb,
    pub workers: usize,
}

/// `[auth.robots]`, checked: the file parsed.
#[derive(Debug, Clone)]
pub struct RobotsConfig {
    pub path: PathBuf,
    pub db: RobotsDb,
}

/// `[auth]`, checked.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub require: Require,
    pub allow_unauthenticated: bool,
    pub forward_authorization: bool,
    pub htpasswd: Option<HtpasswdConfig>,
    pub robots: Option<RobotsConfig>,
    /// `[[auth.oidc]]`: trusted workload-identity issuers.
    pub oidc: Vec<super::oidc::OidcIssuerSettings>,
    /// `[auth.ldap]`: the directory.
    pub ldap: Option<super::ldap::LdapSettings>,
    pub throttle_max_failures: u32,
    pub throttle_window: Duration,
    pub cache_ttl: Duration,
    pub cache_capacity: usize,
    pub token: Option<TokenConfig>,
}

/// `[auth.token]`, checked: keys loaded, signer and verifier built.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub realm: String,
    /// The realm URL's path, where the gateway serves the token endpoint.
    pub path: String,
    pub service: String,
    pub signer: Signer,
    /// Portcullis' own key, for refresh tokens.
    pub own_key: TrustedKey,
    /// Own key and trusted issuers, for `/v2/` Bearer tokens.
    pub verifier: Verifier,
}
