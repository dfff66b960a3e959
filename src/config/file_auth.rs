//! The `[auth]` tables of the configuration file (serde mirror with documented defaults).

use serde::Deserialize;

use crate::auth::Require;
/// `[auth]`
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    /// With Basic auth and client certificates both configured: `"all"` (default, both
    /// needed) or `"any"` (either is enough).
    #[serde(default)]
    pub require: Require,
    /// Without any method configured Portcullis refuses to start unless this is `true`
    /// ("TLS only, no auth", for a network where every client is trusted). Default `false`.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// Pass the client's `Authorization` header on to the registry. Default `false`.
    #[serde(default)]
    pub forward_authorization: bool,
    pub htpasswd: Option<FileHtpasswd>,
    /// Robot accounts (`portcullis robot add`).
    pub robots: Option<FileRobots>,
    /// Trusted OIDC issuers of workload identity tokens.
    #[serde(default)]
    pub oidc: Vec<FileOidc>,
    /// People and groups from an LDAP directory.
    pub ldap: Option<FileLdap>,
    #[serde(default)]
    pub throttle: FileThrottle,
    #[serde(default)]
    pub cache: FileCache,
    /// The built-in token service (Docker token authentication).
    pub token: Option<FileToken>,
}

/// `[auth.token]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileToken {
    /// The token endpoint as clients reach it, e.g. `https://registry.example.com/auth/token`.
    /// Portcullis serves it at that URL's path. Required.
    pub realm: Option<String>,
    /// The service name tokens are for (their audience). Required.
    pub service: Option<String>,
    /// `iss` of issued tokens. Default `"portcullis"`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// PEM private key that signs tokens (EC P-256 → ES256, or RSA → RS256). Required.
    pub key: Option<String>,
    /// PEM certificate of that key (`portcullis keygen` writes both); registry:2's
    /// `rootcertbundle` is this file. Required.
    pub certificate: Option<String>,
    /// Seconds an access token lives. Default 300.
    #[serde(default = "default_expiration")]
    pub expiration: u64,
    /// Seconds a refresh token (docker login) lives. Default 604800 (7 days).
    #[serde(default = "default_refresh_expiration")]
    pub refresh_expiration: u64,
    /// Other issuers whose tokens `/v2/` accepts.
    #[serde(default)]
    pub trust: Vec<FileTrustedIssuer>,
}

/// `[[auth.token.trust]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTrustedIssuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// PEM certificates of its signing keys.
    pub certificates: Option<String>,
    /// Or a JWKS file with its keys.
    pub jwks: Option<String>,
}

fn default_issuer() -> String {
    "portcullis".to_string()
}
fn default_expiration() -> u64 {
    300
}
fn default_refresh_expiration() -> u64 {
    604_800
}

/// `[auth.htpasswd]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHtpasswd {
    /// Apache htpasswd file with bcrypt hashes. Required. Re-read when it changes.
    pub path: Option<String>,
    /// Realm of the Basic challenge. Default `"Registry Realm"`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// bcrypt checks run at once, off the request threads. Default: one per CPU.
    pub workers: Option<usize>,
}

/// `[auth.robots]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRobots {
    /// The robots file `portcullis robot add` writes (hashes only). Required. Re-read when
    /// it changes.
    pub path: Option<String>,
}

/// `[[auth.oidc]]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileOidc {
    /// Used in rules (`oidc = { issuer = NAME }`), logs and principals. Required.
    pub name: Option<String>,
    /// The exact `iss` of its tokens, an `https://` URL. Required.
    pub issuer: Option<String>,
    /// The `aud` its tokens must carry. Required.
    pub audience: Option<String>,
    /// The key set's URL. Default: `jwks_uri` of the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// A JWKS file instead of fetching (read at start-up).
    pub jwks_file: Option<String>,
    /// PEM CA certificates trusted for fetching, besides the system's.
    pub ca: Option<String>,
    /// Default `["RS256", "ES256"]`; nothing else is accepted.
    #[serde(default = "default_oidc_algorithms")]
    pub algorithms: Vec<String>,
    /// Seconds of clock skew allowed. Default 60.
    #[serde(default = "default_oidc_leeway")]
    pub leeway: u64,
    /// Longest token lifetime (`exp - iat`) accepted, seconds. Default 3600.
    #[serde(default = "default_oidc_max_lifetime")]
    pub max_lifetime: u64,
    /// Seconds between key refreshes. Default 3600.
    #[serde(default = "default_oidc_jwks_refresh")]
    pub jwks_refresh: u64,
    /// Fewest seconds between two fetches, whatever asks (an unknown `kid`). Default 30.
    #[serde(default = "default_oidc_jwks_min_refresh")]
    pub jwks_min_refresh: u64,
}

fn default_oidc_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_oidc_leeway() -> u64 {
    60
}
fn default_oidc_max_lifetime() -> u64 {
    3600
}
fn default_oidc_jwks_refresh() -> u64 {
    3600
}
fn default_oidc_jwks_min_refresh() -> u64 {
    30
}

/// `oidc = {...}` of a rule.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FileOidcMatch {
    /// An `[[auth.oidc]] name`. Required.
    pub issuer: Option<String>,
    /// Claim name → glob (`*` any run); every one must match a string claim.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
}

/// `[auth.ldap]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileLdap {
    /// `ldaps://host:636`, or `ldap://host:389` with `start_tls`. Required.
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS. Default `false`.
    #[serde(default)]
    pub start_tls: bool,
    /// Allow `ldap://` without StartTLS (passwords in clear text; a test lab only).
    /// Default `false`.
    #[serde(default)]
    pub allow_insecure: bool,
    /// PEM CA certificates the directory's certificate is checked against. Default: the
    /// system's.
    pub ca: Option<String>,
    /// The service account that searches users and groups. Required.
    pub bind_dn: Option<String>,
    /// Its password (or `bind_password_file`, or `PORTCULLIS_AUTH_LDAP_BIND_PASSWORD`).
    pub bind_password: Option<String>,
    /// A file holding its password (one line).
    pub bind_password_file: Option<String>,
    /// Where users are searched (subtree). Required.
    pub base_dn: Option<String>,
    /// Finds the user; `{user}` is the login name, escaped. Default
    /// `(&(objectClass=person)(uid={user}))`.
    #[serde(default = "default_ldap_user_filter")]
    pub user_filter: String,
    /// The attribute of the user's entry that is their name from then on (logs, rules,
    /// tokens). Default `uid`; Active Directory: `sAMAccountName`.
    #[serde(default = "default_ldap_user_attribute")]
    pub user_attribute: String,
    /// Where groups are searched (subtree), with `group_filter`.
    pub group_base_dn: Option<String>,
    /// Finds the user's groups; `{dn}` is the user's DN, `{user}` the login name. Default
    /// `(member={dn})`.
    #[serde(default = "default_ldap_group_filter")]
    pub group_filter: String,
    /// Instead of a group search: the user attribute listing group DNs (`memberOf`).
    pub member_of_attribute: Option<String>,
    /// The attribute that names a group in rules (`ldap:NAME`). Default `cn`.
    #[serde(default = "default_ldap_group_attribute")]
    pub group_attribute: String,
    /// Seconds for each connect, bind or search. Default 5.
    #[serde(default = "default_ldap_timeout")]
    pub timeout: u64,
    /// Most connections open to the directory. Default 4.
    #[serde(default = "default_ldap_pool_size")]
    pub pool_size: usize,
}

fn default_ldap_user_filter() -> String {
    "(&(objectClass=person)(uid={user}))".into()
}
fn default_ldap_user_attribute() -> String {
    "uid".into()
}
fn default_ldap_group_filter() -> String {
    "(member={dn})".into()
}
fn default_ldap_group_attribute() -> String {
    "cn".into()
}
fn default_ldap_timeout() -> u64 {
    5
}
fn default_ldap_pool_size() -> usize {
    4
}

/// `[auth.throttle]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileThrottle {
    /// Failed logins from one address within `window` before it gets 429. Default 10;
    /// 0 turns throttling off.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Seconds. Default 60.
    #[serde(default = "default_window")]
    pub window: u64,
}

/// `[auth.cache]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCache {
    /// Seconds a verified user/password pair is trusted without bcrypt. Default 60; 0 off.
    #[serde(default = "default_cache_ttl")]
    pub ttl: u64,
    /// Most pairs remembered. Default 10000.
    #[serde(default = "default_cache_capacity")]
    pub capacity: usize,
}

fn default_realm() -> String {
    super::DEFAULT_REALM.to_string()
}
fn default_max_failures() -> u32 {
    10
}
fn default_window() -> u64 {
    60
}
fn default_cache_ttl() -> u64 {
    60
}
fn default_cache_capacity() -> usize {
    10_000
}

impl Default for FileThrottle {
    fn default() -> Self {
        Self {
            max_failures: default_max_failures(),
            window: default_window(),
        }
    }
}

impl Default for FileCache {
    fn default() -> Self {
        Self {
            ttl: default_cache_ttl(),
            capacity: default_cache_capacity(),
        }
    }
}
