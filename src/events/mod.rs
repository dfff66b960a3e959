//! Events for other systems (`[[events.webhook]]`): who pushed, deleted, pulled or was
//! refused what, sent as HTTP POSTs in CloudEvents 1.0 or registry:2 notification format.
//!
//! Delivery never blocks a request: [`Events::emit`] renders the event and puts it on each
//! subscribed webhook's bounded queue ([`delivery`]), whose own thread sends it with
//! retries. A full queue drops its oldest event (counted). Delivery is at least once while
//! the process runs, and nothing survives a restart.

pub mod delivery;
pub mod format;

use std::sync::Arc;
use std::time::{Duration, Instant};

use delivery::Webhook;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Push,
    Delete,
    Pull,
    Denied,
    TagOverwrite,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Push,
        Kind::Delete,
        Kind::Pull,
        Kind::Denied,
        Kind::TagOverwrite,
    ];

    /// Its name in `events = [...]`, headers and formats.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::Delete => "delete",
            Kind::Pull => "pull",
            Kind::Denied => "denied",
            Kind::TagOverwrite => "tag-overwrite",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == text)
    }
}

/// How a webhook's bodies are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CloudEvents 1.0, structured JSON (`application/cloudevents+json`).
    CloudEvents,
    /// registry:2's notification envelope (`application/vnd.docker.distribution.events.v1+json`).
    Distribution,
}

/// `[[events.webhook]]`, checked.
#[derive(Clone)]
pub struct WebhookSettings {
    pub name: String,
    pub url: String,
    pub kinds: Vec<Kind>,
    pub format: Format,
    /// HMAC-SHA256 key of the signature header.
    pub secret: Option<String>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub queue: usize,
    /// Extra CA certificates (DER) for an `https://` receiver.
    pub ca: Vec<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "webhook {} {} {:?} {:?} secret={} {:?} {} {}",
            self.name,
            self.url,
            self.kinds,
            self.format,
            self.secret.is_some(),
            self.timeout,
            self.max_retries,
            self.queue
        )
    }
}

impl PartialEq for WebhookSettings {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
            && self.secret == other.secret
            && self.ca == other.ca
    }
}

/// One event, with everything a format may show.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Record {
    #[serde(skip)]
    pub kind: Option<Kind>,
    pub user: String,
    /// How the user authenticated (`basic`, `ldap`, `token`, ...).
    pub auth: String,
    pub client: Option<String>,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub size: Option<u64>,
    #[serde(rename = "mediaType")]
    pub media_type: Option<String>,
    /// For `tag-overwrite`: the digest the tag pointed to before.
    pub previous: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    #[serde(rename = "userAgent")]
    pub user_agent: Option<String>,
    /// The host the client addressed (for URLs in the distribution format).
    pub host: Option<String>,
}

/// Every configured webhook.
pub struct Events {
    hooks: Vec<Arc<Webhook>>,
}

impl Events {
    /// Starts one delivery thread per webhook.
    pub fn start(settings: &[WebhookSettings]) -> Events {
        Events {
            hooks: settings.iter().map(|s| Webhook::start(s.clone())).collect(),
        }
    }

    /// No webhooks.
    pub fn off() -> Events {
        Events { hooks: Vec::new() }
    }

    /// Whether no webhook is configured (so callers can skip building records).
    pub fn is_off(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Whether any webhook wants `kind`.
    pub fn wants(&self, kind: Kind) -> bool {
        self.hooks.iter().any(|h| h.settings.kinds.contains(&kind))
    }

    /// Queues `record` for every webhook that wants its kind; never waits.
    pub fn emit(&self, record: &Record) {
        let Some(kind) = record.kind else { return };
        for hook in self
            .hooks
            .iter()
            .filter(|h| h.settings.kinds.contains(&kind))
        {
            hook.enqueue(format::render(hook.settings.format, kind, record));
        }
    }

    /// Waits until every queue is empty and nothing is being sent, or `deadline`.
    pub fn drain(&self, deadline: Instant) {
        let waiting: usize = self.hooks.iter().map(|h| h.pending()).sum();
        if waiting > 0 {
            tracing::info!(events = waiting, "delivering queued events before exiting");
        }
        while Instant::now() < deadline && self.hooks.iter().any(|h| h.pending() > 0) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left: usize = self.hooks.iter().map(|h| h.pending()).sum();
        if left > 0 {
            tracing::warn!(events = left, "exiting with events not delivered");
        }
    }

    /// The webhooks' metrics, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        delivery::render_metrics(&self.hooks, out);
    }
}
