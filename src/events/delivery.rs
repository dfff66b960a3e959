//! One webhook's queue and the thread that delivers it.
//!
//! The queue is bounded (`queue`); when it is full the oldest event is dropped and counted,
//! so a receiver that is down costs memory for `queue` events and nothing else. Each event
//! is POSTed with its signature; a failure (no connection, timeout, an answer other than
//! 2xx) is retried `max_retries` times, 1 s after the first failure and twice as long after
//! each next one (at most 60 s), with the same body and id.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::format::{signature, Rendered, SIGNATURE_HEADER};
use super::WebhookSettings;
use crate::stats::{render_counter, Histogram};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Queue {
    events: VecDeque<Rendered>,
    /// An event taken off the queue is being delivered.
    sending: bool,
}

/// Counters of one webhook.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    given_up: AtomicU64,
    dropped: AtomicU64,
}

/// A webhook: its settings, queue and counters.
pub struct Webhook {
    pub settings: WebhookSettings,
    queue: Mutex<Queue>,
    ready: Condvar,
    counts: Counts,
    latency: Histogram,
}

impl Webhook {
    /// The webhook, with its delivery thread running.
    pub fn start(settings: WebhookSettings) -> Arc<Webhook> {
        let hook = Arc::new(Webhook {
            settings,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            counts: Counts::default(),
            latency: Histogram::default(),
        });
        let worker = Arc::clone(&hook);
        let spawned = std::thread::Builder::new()
            .name(format!("webhook-{}", hook.settings.name))
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            tracing::error!(webhook = %hook.settings.name, "cannot start the delivery thread; its events will be dropped: {e}");
        }
        hook
    }

    /// Queues `event`, dropping the oldest one when the queue is full.
    pub fn enqueue(&self, event: Rendered) {
        let mut queue = self.lock();
        if queue.events.len() >= self.settings.queue.max(1) {
            queue.events.pop_front();
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(webhook = %self.settings.name, "queue full: the oldest event was dropped");
        }
        queue.events.push_back(event);
        self.ready.notify_one();
    }

    /// Events queued or being delivered.
    pub fn pending(&self) -> usize {
        let queue = self.lock();
        queue.events.len() + usize::from(queue.sending)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let agent = match crate::tls::http_client::agent(
            &self.settings.ca,
            self.settings.timeout,
            false,
            false,
        ) {
            Ok(agent) => agent,
            Err(e) => {
                return tracing::error!(webhook = %self.settings.name, "cannot deliver events: {e}")
            }
        };
        loop {
            let event = {
                let mut queue = self.lock();
                loop {
                    if let Some(event) = queue.events.pop_front() {
                        queue.sending = true;
                        break event;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            self.deliver(&agent, &event);
            self.lock().sending = false;
        }
    }

    /// Sends `event` until it is accepted or the retries are used up.
    fn deliver(&self, agent: &ureq::Agent, event: &Rendered) {
        let mut backoff = Duration::from_secs(1);
        for attempt in 0..=self.settings.max_retries {
            let started = Instant::now();
            let result = self.post(agent, event);
            self.latency.observe(started.elapsed());
            match result {
                Ok(()) => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(why) => {
                    self.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    let last = attempt == self.settings.max_retries;
                    tracing::warn!(webhook = %self.settings.name, event = event.kind.name(), id = %event.id, attempt = attempt + 1, "event delivery failed{}: {why}", if last { "; giving up" } else { "; will retry" });
                    if last {
                        self.counts.given_up.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn post(&self, agent: &ureq::Agent, event: &Rendered) -> Result<(), String> {
        let mut request = agent
            .post(&self.settings.url)
            .header("Content-Type", event.content_type)
            .header("X-Portcullis-Event", event.kind.name())
            .header("X-Portcullis-Delivery", &event.id);
        if let Some(secret) = &self.settings.secret {
            request = request.header(SIGNATURE_HEADER, &signature(secret, &event.body));
        }
        let response = request.send(&event.body[..]).map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(format!("the receiver answered {status}")),
        }
    }
}

/// Every webhook's counters, and one delivery latency histogram.
pub fn render_metrics(hooks: &[Arc<Webhook>], out: &mut String) {
    if hooks.is_empty() {
        return;
    }
    let label = |h: &Webhook| {
        format!(
            "webhook=\"{}\"",
            crate::stats::escape_label(&h.settings.name)
        )
    };
    let dropped: Vec<(String, u64)> = hooks
        .iter()
        .map(|h| (label(h), h.counts.dropped.load(Ordering::Relaxed)))
        .collect();
    render_counter(
        out,
        "portcullis_events_dropped_total",
        "Events dropped because a webhook's queue was full.",
        &dropped,
    );
    let mut deliveries = Vec::new();
    for h in hooks {
        for (outcome, n) in [
            ("ok", &h.counts.delivered),
            ("error", &h.counts.failed_attempts),
            ("given_up", &h.counts.given_up),
        ] {
            deliveries.push((
                format!("{},outcome=\"{outcome}\"", label(h)),
                n.load(Ordering::Relaxed),
            ));
        }
    }
    render_counter(
        out,
        "portcullis_events_deliveries_total",
        "Webhook delivery attempts by outcome (given_up: events whose retries ran out).",
        &deliveries,
    );
    let _ = std::fmt::Write::write_str(out, "# HELP portcullis_events_queued Events waiting for each webhook.\n# TYPE portcullis_events_queued gauge\n");
    for h in hooks {
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!("portcullis_events_queued{{{}}} {}\n", label(h), h.pending()),
        );
    }
    let combined = Histogram::default();
    for h in hooks {
        combined.absorb(&h.latency);
    }
    combined.render(
        out,
        "portcullis_events_delivery_seconds",
        "Time of each webhook delivery attempt.",
    );
}
