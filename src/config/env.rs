//! Environment overrides, as registry:2's `REGISTRY_*`: `PORTCULLIS_TLS_CERTIFICATE` sets
//! `tls.certificate`, `PORTCULLIS_AUTH_HTPASSWD_PATH` sets `auth.htpasswd.path`, and so on
//! for every key in [`KEYS`]. Relative paths resolve against the config file's folder.

use toml::{Table, Value};

use super::Problem;

/// How an environment value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Boolean,
    /// Comma-separated, or a TOML array such as `["a", "b"]`.
    List,
}

use Kind::*;

/// Every key that can be set from the environment, with its kind.
const KEYS: &[(&str, Kind)] = &[
    ("listen", List),
    ("upstream", Text),
    ("trusted_proxies", List),
    ("threads", Integer),
    ("read_only", Boolean),
    ("watch", Boolean),
    ("tls.certificate", Text),
    ("tls.key", Text),
    ("tls.min_version", Text),
    ("tls.http2", Boolean),
    ("tls.acme.directory", Text),
    ("tls.acme.domains", List),
    ("tls.acme.contact", Text),
    ("tls.acme.storage", Text),
    ("tls.acme.challenge", Text),
    ("tls.acme.http_listen", Text),
    ("tls.acme.ca", Text),
    ("tls.acme.renew_before", Integer),
    ("tls.client_auth.cas", List),
    ("tls.client_auth.mode", Text),
    ("tls.client_auth.crls", List),
    ("tls.client_auth.user_from", Text),
    ("timeouts.idle", Integer),
    ("timeouts.connect", Integer),
    ("timeouts.keepalive", Integer),
    ("shutdown.grace_period", Integer),
    ("log.format", Text),
    ("log.level", Text),
    ("log.access", Boolean),
    ("auth.require", Text),
    ("auth.allow_unauthenticated", Boolean),
    ("auth.forward_authorization", Boolean),
    ("auth.htpasswd.path", Text),
    ("auth.htpasswd.realm", Text),
    ("auth.htpasswd.workers", Integer),
    ("auth.robots.path", Text),
    ("auth.ldap.url", Text),
    ("auth.ldap.start_tls", Boolean),
    ("auth.ldap.allow_insecure", Boolean),
    ("auth.ldap.ca", Text),
    ("auth.ldap.bind_dn", Text),
    ("auth.ldap.bind_password", Text),
    ("auth.ldap.bind_password_file", Text),
    ("auth.ldap.base_dn", Text),
    ("auth.ldap.user_filter", Text),
    ("auth.ldap.user_attribute", Text),
    ("auth.ldap.group_base_dn", Text),
    ("auth.ldap.group_filter", Text),
    ("auth.ldap.member_of_attribute", Text),
    ("auth.ldap.group_attribute", Text),
    ("auth.ldap.timeout", Integer),
    ("auth.ldap.pool_size", Integer),
    ("auth.throttle.max_failures", Integer),
    ("auth.throttle.window", Integer),
    ("auth.cache.ttl", Integer),
    ("auth.cache.capacity", Integer),
    ("auth.token.realm", Text),
    ("auth.token.service", Text),
    ("auth.token.issuer", Text),
    ("auth.token.key", Text),
    ("auth.token.certificate", Text),
    ("auth.token.expiration", Integer),
    ("auth.token.refresh_expiration", Integer),
    ("acl.include", Text),
    ("admin.enabled", Boolean),
    ("admin.listen", Text),
    ("audit.path", Text),
    ("audit.pulls", Boolean),
    ("state.backend", Text),
    ("state.url", Text),
    ("state.password", Text),
    ("state.password_file", Text),
    ("state.prefix", Text),
    ("state.timeout_ms", Integer),
    ("state.ca", Text),
    ("limits.max_concurrent_uploads", Integer),
    ("limits.max_connections", Integer),
];

/// Prefix of override variables.
pub const PREFIX: &str = "PORTCULLIS_";

/// The variable that overrides `key`: `tls.min_version` → `PORTCULLIS_TLS_MIN_VERSION`.
pub fn variable_for(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The documented keys, for the README's table.
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// Applies every `PORTCULLIS_*` variable of `vars` to `table`. An unknown variable or a
/// value of the wrong kind is a problem naming the variable.
pub fn apply(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (name, raw) in vars.into_iter().filter(|(n, _)| n.starts_with(PREFIX)) {
        let Some((key, kind)) = KEYS.iter().find(|(k, _)| variable_for(k) == name) else {
            problems.push(Problem::new(
                name.clone(),
                "is not a Portcullis setting; see the environment table in README.md",
            ));
            continue;
        };
        match parse(&raw, *kind) {
            Some(value) => set(table, key, value),
            None => problems.push(Problem::new(
                name,
                format!("\"{raw}\" is not a valid {} for {key}", describe(*kind)),
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Text => "text",
        Integer => "whole number",
        Boolean => "true or false",
        List => "comma-separated list",
    }
}

fn parse(raw: &str, kind: Kind) -> Option<Value> {
    let raw = raw.trim();
    match kind {
        Text => Some(Value::String(raw.to_string())),
        Integer => raw.parse::<i64>().ok().map(Value::Integer),
        Boolean => raw.parse::<bool>().ok().map(Value::Boolean),
        List if raw.starts_with('[') => format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(Value::is_array),
        List => Some(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
    }
}

/// Sets a dotted key, creating tables on the way.
fn set(table: &mut Table, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_nested_keys_with_their_kinds() {
        let mut table: Table = "upstream = \"http://a:1\"\n[tls]\ncertificate = \"a.crt\"\n"
            .parse()
            .unwrap();
        apply(
            &mut table,
            vars(&[
                ("PORTCULLIS_TLS_CERTIFICATE", "b.crt"),
                ("PORTCULLIS_TLS_MIN_VERSION", "1.3"),
                ("PORTCULLIS_AUTH_HTPASSWD_PATH", "/etc/htpasswd"),
                ("PORTCULLIS_LISTEN", "0.0.0.0:443, [::]:443"),
                ("PORTCULLIS_TIMEOUTS_IDLE", "60"),
                ("PORTCULLIS_AUTH_ALLOW_UNAUTHENTICATED", "true"),
                ("PORTCULLIS_TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(table["tls"]["certificate"].as_str(), Some("b.crt"));
        assert_eq!(table["tls"]["min_version"].as_str(), Some("1.3"));
        assert_eq!(
            table["auth"]["htpasswd"]["path"].as_str(),
            Some("/etc/htpasswd")
        );
        assert_eq!(table["listen"].as_array().unwrap().len(), 2);
        assert_eq!(table["timeouts"]["idle"].as_integer(), Some(60));
        assert_eq!(table["auth"]["allow_unauthenticated"].as_bool(), Some(true));
        assert_eq!(table["trusted_proxies"][0].as_str(), Some("10.0.0.0/8"));
    }

    #[test]
    fn unknown_variables_and_bad_values_are_named() {
        let mut table = Table::new();
        let problems = apply(
            &mut table,
            vars(&[
                ("PORTCULLIS_TLS_CERTIFCATE", "x"),
                ("PORTCULLIS_THREADS", "many"),
            ]),
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["PORTCULLIS_TLS_CERTIFCATE", "PORTCULLIS_THREADS"]);
    }

    #[test]
    fn variable_names() {
        assert_eq!(
            variable_for("tls.min_version"),
            "PORTCULLIS_TLS_MIN_VERSION"
        );
        assert_eq!(
            variable_for("auth.htpasswd.path"),
            "PORTCULLIS_AUTH_HTPASSWD_PATH"
        );
    }
}
