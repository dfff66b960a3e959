//! Validating `[auth.ldap]`: the directory's address, TLS, service account and filters.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::file::FileLdap;
use super::{resolve_path, Problem};
use crate::auth::ldap::filter::Template;
use crate::auth::ldap::{GroupLookup, LdapSettings, Secret};
use crate::tls::certs::read_certificates;

/// Every problem of `[auth.ldap]`, each naming its key.
pub fn parse_ldap(file: &FileLdap, base: &Path) -> Result<LdapSettings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem::new(format!("auth.ldap.{key}"), message))
    };
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let url = text(&file.url).unwrap_or_else(|| {
        problem(
            "url",
            "is missing; give the directory, e.g. \"ldaps://ldap.example.com\"".into(),
        );
        String::new()
    });
    let secure = check_url(&url, file, &mut problem);
    let bind_dn = text(&file.bind_dn).unwrap_or_else(|| {
        problem("bind_dn", "is missing; give the service account that searches users, e.g. \"cn=registry,ou=services,dc=example,dc=com\"".into());
        String::new()
    });
    let bind_password = bind_password(file, base, &mut problem);
    let base_dn = text(&file.base_dn).unwrap_or_else(|| {
        problem(
            "base_dn",
            "is missing; give where users are, e.g. \"ou=people,dc=example,dc=com\"".into(),
        );
        String::new()
    });
    let user_filter = Template::parse(&file.user_filter, &["user"], &["user"])
        .map_err(|e| problem("user_filter", e))
        .ok();
    let groups = group_lookup(file, &text, &mut problem);
    if !is_attribute_name(&file.user_attribute) {
        problem(
            "user_attribute",
            format!(
                "\"{}\" is not an attribute name (letters, digits and -)",
                file.user_attribute
            ),
        );
    }
    if !is_attribute_name(&file.group_attribute) {
        problem(
            "group_attribute",
            format!(
                "\"{}\" is not an attribute name (letters, digits and -)",
                file.group_attribute
            ),
        );
    }
    if file.timeout == 0 {
        problem("timeout", "must be at least 1 second".into());
    }
    if file.pool_size == 0 {
        problem("pool_size", "must be at least 1".into());
    }
    let tls = match secure {
        true => tls_config(file, base, &mut problem).map(Arc::new),
        false => None,
    };
    match (user_filter, groups) {
        (Some(user_filter), Some(groups)) if problems.is_empty() => Ok(LdapSettings {
            url,
            start_tls: file.start_tls,
            tls,
            bind_dn,
            bind_password: Secret::new(bind_password.unwrap_or_default()),
            base_dn,
            user_filter,
            user_attribute: file.user_attribute.clone(),
            groups,
            group_attribute: file.group_attribute.clone(),
            timeout: Duration::from_secs(file.timeout),
            pool_size: file.pool_size,
        }),
        _ => Err(problems),
    }
}

/// Checks the scheme against `start_tls` and `allow_insecure`; whether TLS is used.
fn check_url(url: &str, file: &FileLdap, problem: &mut dyn FnMut(&str, String)) -> bool {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if !url.is_empty() && (host.is_empty() || host.starts_with(':')) {
        problem(
            "url",
            format!("\"{url}\" names no host; e.g. \"ldaps://ldap.example.com\""),
        );
    }
    match scheme.to_ascii_lowercase().as_str() {
        "ldaps" if file.start_tls => {
            problem("start_tls", "is for ldap:// URLs; an ldaps:// connection is TLS from the start (remove start_tls)".into());
            true
        }
        "ldaps" => true,
        "ldap" if file.start_tls => true,
        "ldap" if file.allow_insecure => false,
        "ldap" => {
            problem("url", format!("\"{url}\" would send passwords unencrypted: use ldaps://, or set start_tls = true (allow_insecure = true only for a test lab)"));
            false
        }
        _ if url.is_empty() => false,
        _ => {
            problem("url", format!("\"{url}\" is not an LDAP URL: use ldaps://HOST[:PORT] or ldap://HOST[:PORT] with start_tls = true"));
            false
        }
    }
}

/// The service account's password: from the file, the key, or the environment.
fn bind_password(
    file: &FileLdap,
    base: &Path,
    problem: &mut dyn FnMut(&str, String),
) -> Option<String> {
    match (&file.bind_password, &file.bind_password_file) {
        (Some(_), Some(_)) => {
            problem(
                "bind_password",
                "and bind_password_file are both set; keep one".into(),
            );
            None
        }
        (Some(p), None) if !p.is_empty() => Some(p.clone()),
        (None, Some(path)) => {
            let path = resolve_path(base, path);
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim_end_matches(['\r', '\n']).is_empty() => {
                    Some(text.trim_end_matches(['\r', '\n']).to_string())
                }
                Ok(_) => {
                    problem("bind_password_file", format!("{} is empty", path.display()));
                    None
                }
                Err(e) => {
                    problem(
                        "bind_password_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            }
        }
        _ => {
            problem(
                "bind_password",
                "is missing; give bind_password_file, or set PORTCULLIS_AUTH_LDAP_BIND_PASSWORD"
                    .into(),
            );
            None
        }
    }
}

/// `group_base_dn` with `group_filter`, or `member_of_attribute`, or neither.
fn group_lookup(
    file: &FileLdap,
    text: &dyn Fn(&Option<String>) -> Option<String>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<GroupLookup> {
    match (text(&file.group_base_dn), text(&file.member_of_attribute)) {
        (Some(_), Some(_)) => {
            problem("member_of_attribute", "and group_base_dn are both set: groups come from a search under group_base_dn or from the user's member_of_attribute, not both".into());
            None
        }
        (Some(base_dn), None) => {
            Template::parse(&file.group_filter, &["dn", "user"], &["dn", "user"])
                .map(|filter| GroupLookup::Search { base_dn, filter })
                .map_err(|e| problem("group_filter", e))
                .ok()
        }
        (None, Some(attribute)) if is_attribute_name(&attribute) => {
            Some(GroupLookup::MemberOf { attribute })
        }
        (None, Some(attribute)) => {
            problem(
                "member_of_attribute",
                format!("\"{attribute}\" is not an attribute name"),
            );
            None
        }
        (None, None) => Some(GroupLookup::None),
    }
}

fn is_attribute_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// rustls with ring, TLS 1.2 and 1.3, trusting `ca` or else the system's CAs.
fn tls_config(
    file: &FileLdap,
    base: &Path,
    problem: &mut dyn FnMut(&str, String),
) -> Option<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates = match &file.ca {
        Some(ca) => match read_certificates(&resolve_path(base, ca)) {
            Ok(certs) => certs,
            Err(e) => {
                problem("ca", e);
                return None;
            }
        },
        None => rustls_native_certs::load_native_certs().unwrap_or_default(),
    };
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        let key = if file.ca.is_some() { "ca" } else { "url" };
        problem(
            key,
            "no usable CA certificate to check the directory's certificate: give auth.ldap.ca"
                .into(),
        );
        return None;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => Some(builder.with_root_certificates(roots).with_no_client_auth()),
        Err(e) => {
            problem("url", format!("TLS set-up failed: {e}"));
            None
        }
    }
}

#[cfg(test)]
#[path = "ldap_tests.rs"]
mod tests;
