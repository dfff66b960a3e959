//! Validating `[tls.acme]`: the ACME server, the names, the challenge and the storage.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::file::FileAcme;
use super::{resolve_path, Problem};
use crate::tls::acme::{AcmeSettings, ChallengeKind, LETS_ENCRYPT};
use crate::tls::certs::read_certificates;

/// Every problem of `[tls.acme]`, each naming its key.
pub fn parse_acme(file: &FileAcme, base: &Path) -> Result<AcmeSettings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem::new(format!("tls.acme.{key}"), message))
    };
    let directory = file
        .directory
        .as_deref()
        .map(str::trim)
        .unwrap_or(LETS_ENCRYPT)
        .to_string();
    if !is_https_url(&directory) {
        problem("directory", format!("\"{directory}\" is not an https:// URL; give the ACME server's directory, e.g. \"{LETS_ENCRYPT}\""));
    }
    let domains = domains(&file.domains, &mut problem);
    let contact = match file.contact.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(c) => match contact_uri(c) {
            Some(uri) => vec![uri],
            None => {
                problem(
                    "contact",
                    format!("\"{c}\" is not an e-mail address, e.g. \"ops@example.com\""),
                );
                Vec::new()
            }
        },
    };
    let storage = match file.storage.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => resolve_path(base, s),
        _ => {
            problem("storage", "is missing; give a folder for the account key and certificates, e.g. \"/var/lib/portcullis/acme\"".into());
            Default::default()
        }
    };
    let http_listen = match file.http_listen.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => a
            .parse::<SocketAddr>()
            .map_err(|_| {
                problem(
                    "http_listen",
                    format!("\"{a}\" is not an address:port, e.g. \"0.0.0.0:80\""),
                );
            })
            .ok(),
    };
    if file.challenge == ChallengeKind::Http01
        && file
            .http_listen
            .as_deref()
            .is_none_or(|a| a.trim().is_empty())
    {
        problem("http_listen", "is missing; the http-01 challenge is answered on a plain-HTTP listener, e.g. \"0.0.0.0:80\" (or use challenge = \"tls-alpn-01\")".into());
    }
    let ca = match file.ca.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(path) => match read_certificates(&resolve_path(base, path)) {
            Ok(certs) => certs.into_iter().map(|c| c.to_vec()).collect(),
            Err(e) => {
                problem(
                    "ca",
                    format!("{e}; give the PEM root of the ACME server's HTTPS certificate"),
                );
                Vec::new()
            }
        },
    };
    if file.renew_before == Some(0) {
        problem(
            "renew_before",
            "must be at least 1 second (or left out: renew when a third of the lifetime is left)"
                .into(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(AcmeSettings {
        directory,
        domains,
        contact,
        storage,
        challenge: file.challenge,
        http_listen,
        ca,
        renew_before: file.renew_before.map(Duration::from_secs),
    })
}

fn is_https_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace))
}

/// The names, lower-cased, each a DNS name an ACME server can validate by http-01 or
/// tls-alpn-01 (no wildcards, no IP addresses), none twice.
fn domains(names: &[String], problem: &mut impl FnMut(&str, String)) -> Vec<String> {
    if names.is_empty() {
        problem(
            "domains",
            "is missing; give the names clients use, e.g. [\"registry.example.com\"]".into(),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let why = if lower.starts_with("*.") {
            Some("is a wildcard; wildcards need the dns-01 challenge, which Portcullis does not answer; list each name")
        } else if lower.parse::<std::net::IpAddr>().is_ok() {
            Some("is an IP address; give a DNS name")
        } else if !is_dns_name(&lower) {
            Some("is not a DNS name (letters, digits and - in dot-separated labels, at least two labels)")
        } else if out.contains(&lower) {
            Some("is listed twice")
        } else {
            None
        };
        match why {
            Some(why) => problem("domains", format!("\"{name}\" {why}")),
            None => out.push(lower),
        }
    }
    out
}

fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `ops@example.com` or `mailto:ops@example.com` as a `mailto:` URI.
fn contact_uri(contact: &str) -> Option<String> {
    let address = contact.strip_prefix("mailto:").unwrap_or(contact);
    let (user, host) = address.split_once('@')?;
    let plain =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || ",;<>@".contains(c));
    (plain(user) && plain(host) && host.contains('.')).then(|| format!("mailto:{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml: &str) -> FileAcme {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn defaults_and_normalised_values() {
        let s = parse_acme(
            &file("domains = [\"Registry.Example.com.\"]\nstorage = \"acme\"\ncontact = \"ops@example.com\""),
            Path::new("/etc/portcullis"),
        )
        .unwrap();
        assert_eq!(s.directory, LETS_ENCRYPT);
        assert_eq!(s.domains, ["registry.example.com"]);
        assert_eq!(s.contact, ["mailto:ops@example.com"]);
        assert_eq!(s.storage, Path::new("/etc/portcullis/acme"));
        assert_eq!(s.challenge, ChallengeKind::TlsAlpn01);
        assert_eq!(s.http_listen, None);
        assert_eq!(s.renew_before, None);
    }

    #[test]
    fn every_problem_is_named() {
        let problems = parse_acme(
            &file(
                "directory = \"http://acme.test/dir\"\n\
                 domains = [\"*.example.com\", \"10.0.0.1\", \"bad_name.example.com\", \"a.example.com\", \"A.example.com\", \"localhost\"]\n\
                 contact = \"not an address\"\n\
                 challenge = \"http-01\"\n\
                 ca = \"/nonexistent/ca.pem\"\n\
                 renew_before = 0",
            ),
            Path::new("/"),
        )
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tls.acme.directory",
                "tls.acme.domains",
                "tls.acme.domains",
                "tls.acme.domains",
                "tls.acme.domains",
                "tls.acme.domains",
                "tls.acme.contact",
                "tls.acme.storage",
                "tls.acme.http_listen",
                "tls.acme.ca",
                "tls.acme.renew_before",
            ],
            "{text:#?}"
        );
        assert!(text[1].contains("wildcard"), "{}", text[1]);
        assert!(text[2].contains("IP address"), "{}", text[2]);
        assert!(text[4].contains("listed twice"), "{}", text[4]);
        assert!(text[8].contains("http-01"), "{}", text[8]);
    }

    #[test]
    fn http_listen_must_be_an_address() {
        let problems = parse_acme(
            &file("domains = [\"r.example.com\"]\nstorage = \"/x\"\nhttp_listen = \"port 80\""),
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "tls.acme.http_listen");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileAcme>("domain = [\"a.b\"]").is_err());
        assert!(toml::from_str::<FileAcme>("challenge = \"dns-01\"").is_err());
    }
}
