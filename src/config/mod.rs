//! The validated configuration the gateway runs on.
//!
//! [`Config::load`] reads the TOML ([`file`]), resolves relative paths against the config
//! file's folder, loads and checks certificates, and returns either a complete [`Config`] or
//! every [`Problem`] found, each naming its TOML key and the fix.

pub mod acl;
mod acme;
pub mod auth;
pub mod boot;
pub mod env;
mod events;
pub mod file;
mod file_auth;
mod ldap;
mod limits;
pub mod oidc;
mod parse;
mod tls;
pub mod token;
mod unknown;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::auth::settings::{AuthConfig, HtpasswdConfig, TokenConfig};
use crate::registry::forwarding::TrustedProxies;
pub use crate::tls::settings::{ClientAuthConfig, ServerCert, TlsConfig, TlsVersion};
use file::FileConfig;
pub use file::LogFormat;
use parse::{default_threads, parse_admin, parse_cidrs, parse_listen, parse_upstreams};

pub use crate::problem::Problem;

/// The realm of Basic challenges unless `auth.htpasswd.realm` says otherwise.
pub const DEFAULT_REALM: &str = "Registry Realm";

/// Every problem found in one configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{} has {} problem(s):\n{}", path.display(), problems.len(), list(problems))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The backend registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// As configured, e.g. `http://127.0.0.1:5000`.
    pub url: String,
    /// Resolved once at start-up.
    pub addr: SocketAddr,
}

/// Timeouts, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Duration,
    pub connect: Duration,
    pub keepalive: Duration,
}

/// Logging choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
    pub access: bool,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    /// The registry replicas; the first is used when none passes its health check.
    pub upstreams: Vec<Upstream>,
    pub trusted_proxies: TrustedProxies,
    pub threads: usize,
    pub tls: TlsConfig,
    pub timeouts: Timeouts,
    pub grace_period: Duration,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub acl: crate::auth::acl::Acl,
    /// The admin listener's address, unless turned off.
    pub admin: Option<SocketAddr>,
    /// Audit log file, or `-` for standard output.
    pub audit: Option<PathBuf>,
    /// `[audit] pulls`: manifest fetches are audited too.
    pub audit_pulls: bool,
    /// `[[events.webhook]]`.
    pub webhooks: Vec<crate::events::WebhookSettings>,
    /// `[state]`: where counters shared by replicas live.
    pub state: crate::store::StateSettings,
    /// `[limits]`.
    pub limits: crate::auth::limits::Limits,
    /// Reload on changes to the config file or any file it names (`watch`).
    pub watch: bool,
    /// Every file the configuration names, for `watch`.
    pub files: Vec<PathBuf>,
}

impl Config {
    /// Set-ups that are valid but will surprise: printed by `portcullis check` and logged
    /// at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let anonymous_rules = self.acl.rules.iter().any(|r| r.who.anonymous);
        if anonymous_rules && self.auth.htpasswd.is_some() && self.auth.token.is_none() {
            warnings.push(
                "acl.rules: anonymous rules with [auth.htpasswd] but no [auth.token]: docker \
                 never pulls anonymously after a Basic challenge (\"no basic auth \
                 credentials\"); add [auth.token] so docker clients can pull anonymously \
                 (skopeo, podman and buildah work either way)"
                    .to_string(),
            );
        }
        if !self.acl.immutable.is_empty() && self.acl.rules.is_empty() {
            warnings.push(
                "acl.immutable: [acl] has no [[acl.rules]], so every request is refused; \
                 add rules (e.g. users = [\"*\"]) to say who may pull and push"
                    .to_string(),
            );
        }
        if self.auth.ldap.as_ref().is_some_and(|l| l.tls.is_none()) {
            warnings.push(
                "auth.ldap.allow_insecure: directory passwords cross the network unencrypted; \
                 use ldaps:// or start_tls = true outside a test lab"
                    .to_string(),
            );
        }
        warnings
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |problems| ConfigError {
            path: path.to_path_buf(),
            problems,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(vec![Problem::new(
                "(file)",
                format!("cannot read the config file: {e}"),
            )])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_with_env(&text, base, std::env::vars()).map_err(fail)
    }

    /// Parses and validates TOML text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
        let file: FileConfig = match toml::from_str(text) {
            Ok(file) => file,
            Err(e) if e.message().starts_with("unknown field") => {
                // Name every unknown key by its real table, all in one run.
                let table: toml::Table = text.parse().map_err(|e| vec![toml_problem(&e, text)])?;
                unknown::deserialize(table, text)?
            }
            Err(e) => return Err(vec![toml_problem(&e, text)]),
        };
        Self::from_file(file, base)
    }

    /// [`Config::from_toml`] with `PORTCULLIS_*` overrides from `vars` applied first.
    pub fn from_toml_with_env(
        text: &str,
        base: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Vec<Problem>> {
        let overrides: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(env::PREFIX))
            .collect();
        if overrides.is_empty() {
            return Self::from_toml(text, base);
        }
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| vec![toml_problem(&e, text)])?;
        env::apply(&mut table, overrides)?;
        let file = unknown::deserialize(table, text)?;
        Self::from_file(file, base)
    }

    /// Validates parsed file structs, collecting every problem.
    pub fn from_file(file: FileConfig, base: &Path) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let listen = collect(parse_listen(&file.listen), &mut problems);
        let upstream = collect(parse_upstreams(file.upstream.as_ref()), &mut problems);
        let trusted = collect(parse_cidrs(&file.trusted_proxies), &mut problems);
        let tls = collect(tls::parse_tls(file.tls.as_ref(), base), &mut problems);
        let threads = file.threads.unwrap_or_else(default_threads);
        let files = named_files(&file, base);
        let admin = collect(parse_admin(&file), &mut problems);
        let audit = match file.audit.as_ref().map(|a| a.path.as_deref()) {
            Some(Some("-")) => Some(PathBuf::from("-")),
            Some(Some(p)) if !p.trim().is_empty() => Some(resolve_path(base, p)),
            Some(_) => {
                problems.push(Problem::new(
                    "audit.path",
                    "is missing; give a file or \"-\" for standard output",
                ));
                None
            }
            None => None,
        };
        let webhooks = collect(
            events::parse_webhooks(&file.events.webhook, base),
            &mut problems,
        );
        let state = collect(limits::parse_state(&file.state, base), &mut problems);
        let issuers: Vec<&str> = file
            .auth
            .oidc
            .iter()
            .filter_map(|o| o.name.as_deref())
            .collect();
        let acl_groups = file
            .acl
            .as_ref()
            .map(|a| a.groups.clone())
            .unwrap_or_default();
        let rate_limits = collect(
            limits::parse_limits(
                &file.limits,
                &acl_groups,
                &issuers,
                file.auth.ldap.is_some(),
            ),
            &mut problems,
        );
        let client_auth_file = file.tls.as_ref().and_then(|t| t.client_auth.as_ref());
        let auth = collect(
            auth::parse_auth(
                &file.auth,
                base,
                client_auth_file,
                threads.max(1),
                file.acl.is_some(),
            ),
            &mut problems,
        );
        let acl = collect(
            acl::parse_acl(
                file.acl.as_ref(),
                file.read_only,
                file.auth.allow_unauthenticated,
                file.auth.ldap.is_some(),
                base,
                &file
                    .auth
                    .oidc
                    .iter()
                    .filter_map(|o| o.name.as_deref())
                    .collect::<Vec<_>>(),
            ),
            &mut problems,
        );
        if threads == 0 {
            problems.push(Problem::new(
                "threads",
                "must be at least 1; leave it out to use one per CPU",
            ));
        }
        check_timeouts(&file, &mut problems);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&file.log.level) {
            problems.push(Problem::new("log.level", format!("{e}; use a level such as \"info\" or a filter such as \"portcullis=debug,info\"")));
        }
        match (listen, upstream, trusted, tls, auth) {
            (Some(listen), Some(upstream), Some(trusted), Some(tls), Some(auth))
                if problems.is_empty() =>
            {
                Ok(Config {
                    listen,
                    upstreams: upstream,
                    trusted_proxies: trusted,
                    threads,
                    tls,
                    timeouts: Timeouts {
                        idle: Duration::from_secs(file.timeouts.idle),
                        connect: Duration::from_secs(file.timeouts.connect),
                        keepalive: Duration::from_secs(file.timeouts.keepalive),
                    },
                    grace_period: Duration::from_secs(file.shutdown.grace_period),
                    log: LogConfig {
                        format: file.log.format,
                        level: file.log.level,
                        access: file.log.access,
                    },
                    auth,
                    acl: acl.unwrap_or_default(),
                    watch: file.watch,
                    admin: admin.flatten(),
                    audit,
                    audit_pulls: file.audit.as_ref().is_some_and(|a| a.pulls),
                    webhooks: webhooks.unwrap_or_default(),
                    state: state.unwrap_or(crate::store::StateSettings::Memory),
                    limits: rate_limits.unwrap_or_default(),
                    files,
                })
            }
            _ => Err(problems),
        }
    }
}

/// The files a configuration reads, resolved, for `watch`.
fn named_files(file: &FileConfig, base: &Path) -> Vec<PathBuf> {
    let mut names: Vec<&String> = Vec::new();
    if let Some(tls) = &file.tls {
        names.extend(tls.certificate.iter().chain(tls.key.iter()));
        if let Some(c) = &tls.client_auth {
            names.extend(c.cas.iter().chain(c.crls.iter()));
        }
    }
    if let Some(t) = &file.auth.token {
        names.extend(t.key.iter().chain(t.certificate.iter()));
        names.extend(
            t.trust
                .iter()
                .flat_map(|t| t.certificates.iter().chain(t.jwks.iter())),
        );
    }
    names.extend(file.acl.iter().flat_map(|a| a.include.iter()));
    names.into_iter().map(|n| resolve_path(base, n)).collect()
}

/// Moves an `Err`'s problems into `problems`, keeping the value of an `Ok`.
fn collect<T>(result: Result<T, Vec<Problem>>, problems: &mut Vec<Problem>) -> Option<T> {
    result.map_err(|mut p| problems.append(&mut p)).ok()
}

/// A TOML syntax or type error, named by the dotted key on the line it points at.
fn toml_problem(e: &toml::de::Error, text: &str) -> Problem {
    let message = e.message().trim().to_string();
    let hint = if message.starts_with("unknown field") {
        "; remove it or fix its spelling (see the key reference in README.md)"
    } else {
        ""
    };
    let Some(offset) = e.span().map(|s| s.start.min(text.len())) else {
        return Problem::new("(file)", format!("{message}{hint}"));
    };
    let line_no = text[..offset].matches('\n').count() + 1;
    Problem::new(
        key_at(text, offset),
        format!("{message}{hint} (line {line_no})"),
    )
}

/// The dotted key written on the line holding byte `offset`: the last `[table]` header
/// before it, joined with the text left of `=` on that line.
fn key_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim());
    let key = line.split('=').next().unwrap_or_default().trim();
    match (table, key.is_empty() || key.starts_with('[')) {
        (_, true) => table.unwrap_or("(file)").to_string(),
        (Some(table), false) => format!("{table}.{key}"),
        (None, false) => key.to_string(),
    }
}

/// Resolves `value` against the config file's folder unless it is absolute.
/// A required text key's trimmed value, or the problem "`key`: is missing; `what`".
fn required(
    value: &Option<String>,
    key: String,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Some(v.to_string()),
        _ => {
            problems.push(Problem::new(key, format!("is missing; {what}")));
            None
        }
    }
}

pub fn resolve_path(base: &Path, value: &str) -> PathBuf {
    let path = Path::new(value);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn check_timeouts(file: &FileConfig, problems: &mut Vec<Problem>) {
    let t = &file.timeouts;
    for (key, value) in [("timeouts.idle", t.idle), ("timeouts.connect", t.connect)] {
        if value == 0 {
            problems.push(Problem::new(key, "must be at least 1 second"));
        }
    }
}

#[cfg(test)]
mod tests;
