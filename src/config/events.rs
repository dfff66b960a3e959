//! Validating `[[events.webhook]]`.

use std::path::Path;
use std::time::Duration;

use super::file::FileWebhook;
use super::{resolve_path, Problem};
use crate::events::{Format, Kind, WebhookSettings};
use crate::tls::certs::read_certificates;

/// Every webhook checked; every problem named by `events.webhook[N].KEY`.
pub fn parse_webhooks(
    files: &[FileWebhook],
    base: &Path,
) -> Result<Vec<WebhookSettings>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut hooks: Vec<WebhookSettings> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let key = |name: &str| format!("events.webhook[{}].{name}", index + 1);
        let before = problems.len();
        let mut problem =
            |name: &str, message: String| problems.push(Problem::new(key(name), message));
        let name = file
            .name
            .clone()
            .unwrap_or_else(|| format!("webhook-{}", index + 1));
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            problem("name", format!("\"{name}\": use letters, digits, - _ ."));
        }
        let url = file.url.clone().unwrap_or_default();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.split("://").nth(1).is_none_or(|rest| rest.is_empty())
        {
            problem(
                "url",
                format!("\"{url}\" is not an http:// or https:// URL"),
            );
        }
        let kinds = match &file.events {
            None => Kind::ALL.to_vec(),
            Some(list) => list
                .iter()
                .filter_map(|e| {
                    Kind::parse(e)
                        .ok_or_else(|| problem("events", format!("unknown event \"{e}\"; use push, delete, pull, denied or tag-overwrite")))
                        .ok()
                })
                .collect(),
        };
        if kinds.is_empty() && file.events.as_ref().is_some_and(Vec::is_empty) {
            problem(
                "events",
                "is empty: the webhook would get nothing; leave it out for every event".into(),
            );
        }
        let format = match file.format.as_str() {
            "cloudevents" => Format::CloudEvents,
            "distribution" => Format::Distribution,
            other => {
                problem(
                    "format",
                    format!("\"{other}\": use \"cloudevents\" or \"distribution\""),
                );
                Format::CloudEvents
            }
        };
        let secret = match (&file.secret, &file.secret_file) {
            (Some(_), Some(_)) => {
                problem("secret", "and secret_file are both set; keep one".into());
                None
            }
            (Some(s), None) => Some(s.clone()),
            (None, Some(path)) => {
                let path = resolve_path(base, path);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some(text.trim_end_matches(['\r', '\n']).to_string()),
                    Err(e) => {
                        problem(
                            "secret_file",
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        if secret.as_ref().is_some_and(|s| s.len() < 16) {
            problem(
                "secret",
                "is shorter than 16 characters; use a long random string".into(),
            );
        }
        if file.timeout == 0 {
            problem("timeout", "must be at least 1 second".into());
        }
        if file.queue == 0 {
            problem("queue", "must be at least 1".into());
        }
        let ca = match &file.ca {
            Some(ca) => read_certificates(&resolve_path(base, ca))
                .map(|certs| certs.into_iter().map(|c| c.to_vec()).collect())
                .unwrap_or_else(|e| {
                    problem("ca", e);
                    Vec::new()
                }),
            None => Vec::new(),
        };
        if hooks.iter().any(|h| h.name == name) {
            problem("name", format!("\"{name}\" names two webhooks"));
        }
        if problems.len() == before {
            hooks.push(WebhookSettings {
                name,
                url,
                kinds,
                format,
                secret,
                timeout: Duration::from_secs(file.timeout),
                max_retries: file.max_retries,
                queue: file.queue,
                ca,
            });
        }
    }
    match problems.is_empty() {
        true => Ok(hooks),
        false => Err(problems),
    }
}

#[cfg(test)]
#[path = "governance_tests.rs"]
mod tests;
