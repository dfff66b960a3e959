//! The audit log: one JSON line per manifest push, per delete, per refused request, per
//! override of an immutable tag and (with `pulls = true`) per manifest fetched, to a file or
//! standard output, apart from the access log.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::{format_time, unix_now};

/// One audit event.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// `push`, `delete`, `denied`, `tag-overwrite` or `pull`.
    pub event: &'a str,
    pub repository: Option<&'a str>,
    /// The tag or digest in the request path.
    pub reference: Option<&'a str>,
    /// The content digest the registry confirmed.
    pub digest: Option<&'a str>,
    pub user: &'a str,
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// How the user authenticated (`basic`, `ldap`, `token`, ...), on pulls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// On `tag-overwrite`: the digest the tag pointed to before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<&'a str>,
    /// On `tag-overwrite`: the `[[acl.rules]]` rule that allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
}

/// Where audit lines go; `None` when `[audit]` is not configured.
pub struct Audit {
    out: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Audit {
    /// No audit log.
    pub fn off() -> Self {
        Audit { out: None }
    }

    /// `-` is standard output; anything else a file, appended to.
    pub fn open(path: &Path) -> Result<Self, String> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            Box::new(file)
        };
        Ok(Audit {
            out: Some(Mutex::new(out)),
        })
    }

    /// Writes one line: `{"time":...,"event":...,...}`.
    pub fn record(&self, event: &Event<'_>) {
        let Some(out) = &self.out else { return };
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            #[serde(flatten)]
            event: &'a Event<'a>,
        }
        let Ok(mut text) = serde_json::to_string(&Line {
            time: format_time(unix_now()),
            event,
        }) else {
            return;
        };
        text.push('\n');
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}
