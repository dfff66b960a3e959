//! Event bodies and their signature (pure, but for the random event id).
//!
//! CloudEvents 1.0 in structured JSON mode, type `io.portcullis.registry.KIND`; or the
//! notification envelope registry:2 sends (`{"events":[{action, target, request, actor,
//! source}]}`), so its consumers work unchanged and now see who acted.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

use super::{Format, Kind, Record};
use crate::clock::{format_time, unix_now};

/// The signature header: `sha256=` and the hex HMAC-SHA256 of the body under the secret.
pub const SIGNATURE_HEADER: &str = "X-Portcullis-Signature";

/// A rendered event, sent as it is on every attempt.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Unique per event; receivers deduplicate retried deliveries by it.
    pub id: String,
    pub kind: Kind,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// `record` as `format` shapes it.
pub fn render(format: Format, kind: Kind, record: &Record) -> Rendered {
    let id = event_id();
    let time = format_time(unix_now());
    let (content_type, body) = match format {
        Format::CloudEvents => (
            "application/cloudevents+json",
            cloud_event(&id, &time, kind, record),
        ),
        Format::Distribution => (
            "application/vnd.docker.distribution.events.v1+json",
            envelope(&id, &time, kind, record),
        ),
    };
    Rendered {
        id,
        kind,
        content_type,
        body: body.to_string().into_bytes(),
    }
}

fn cloud_event(id: &str, time: &str, kind: Kind, record: &Record) -> Value {
    let subject = match (&record.repository, &record.tag, &record.digest) {
        (Some(repo), Some(tag), _) => Some(format!("{repo}:{tag}")),
        (Some(repo), None, Some(digest)) => Some(format!("{repo}@{digest}")),
        (Some(repo), None, None) => Some(repo.clone()),
        _ => None,
    };
    json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("portcullis://{}", record.host.as_deref().unwrap_or("localhost")),
        "type": format!("io.portcullis.registry.{}", kind.name()),
        "time": time,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": record,
    })
}

fn envelope(id: &str, time: &str, kind: Kind, record: &Record) -> Value {
    let host = record.host.as_deref().unwrap_or("localhost");
    let repository = record.repository.as_deref().unwrap_or_default();
    let url = record
        .digest
        .as_ref()
        .map(|d| format!("https://{host}/v2/{repository}/manifests/{d}"));
    json!({"events": [{
        "id": id,
        "timestamp": time,
        "action": kind.name(),
        "target": {
            "mediaType": record.media_type,
            "size": record.size,
            "length": record.size,
            "digest": record.digest,
            "repository": repository,
            "url": url,
            "tag": record.tag,
        },
        "request": {
            "id": id,
            "addr": record.client,
            "host": host,
            "method": record.method,
            "useragent": record.user_agent,
        },
        "actor": { "name": record.user },
        "source": { "addr": host, "instanceID": "portcullis" },
    }]})
}

/// `sha256=HEX` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body);
    format!("sha256={}", hex(tag.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn event_id() -> String {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0))
        .to_le_bytes();
    }
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Record {
        Record {
            kind: Some(Kind::Push),
            user: "alice".into(),
            auth: "basic".into(),
            client: Some("10.0.0.1".into()),
            repository: Some("prod/app".into()),
            tag: Some("v1".into()),
            digest: Some("sha256:ab".into()),
            size: Some(528),
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            method: "PUT".into(),
            path: "/v2/prod/app/manifests/v1".into(),
            status: 201,
            host: Some("registry.example.com".into()),
            ..Record::default()
        }
    }

    #[test]
    fn cloud_events_carry_the_actor_and_the_target() {
        let r = render(Format::CloudEvents, Kind::Push, &push());
        assert_eq!(r.content_type, "application/cloudevents+json");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "io.portcullis.registry.push");
        assert_eq!(v["id"], r.id.as_str());
        assert_eq!(v["subject"], "prod/app:v1");
        assert_eq!(v["source"], "portcullis://registry.example.com");
        assert_eq!(v["data"]["user"], "alice");
        assert_eq!(v["data"]["digest"], "sha256:ab");
        assert_eq!(v["data"]["size"], 528);
        assert_eq!(r.id.len(), 32);
        assert_ne!(render(Format::CloudEvents, Kind::Push, &push()).id, r.id);
    }

    #[test]
    fn the_distribution_envelope_is_registry_shaped_with_the_actor() {
        let r = render(Format::Distribution, Kind::Push, &push());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let e = &v["events"][0];
        assert_eq!(e["action"], "push");
        assert_eq!(e["actor"]["name"], "alice");
        assert_eq!(e["target"]["repository"], "prod/app");
        assert_eq!(e["target"]["tag"], "v1");
        assert_eq!(e["target"]["digest"], "sha256:ab");
        assert_eq!(
            e["target"]["url"],
            "https://registry.example.com/v2/prod/app/manifests/sha256:ab"
        );
        assert_eq!(e["request"]["method"], "PUT");
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
