//! What the gateway records about each request, beyond the access log: metric labels and
//! audit events (pure decisions; the writing is in `metrics` and `audit`).

use std::net::IpAddr;

use crate::auth::immutable::is_digest;
use crate::events::{Kind, Record};
use crate::registry::scope::ApiCall;
use crate::registry::Endpoint;
use crate::telemetry::audit::{Audit, Event};

/// The route class label of a request: manifest, blob, upload, tags, catalog, token, other.
pub fn route_class(route_kind: Endpoint, call: Option<&ApiCall>) -> &'static str {
    match (route_kind, call) {
        (Endpoint::Token, _) => "token",
        (Endpoint::RegistryApi, Some(ApiCall::Manifest(_))) => "manifest",
        (Endpoint::RegistryApi, Some(ApiCall::Blob(_))) => "blob",
        (Endpoint::RegistryApi, Some(ApiCall::UploadStart(_) | ApiCall::UploadChunk(_))) => {
            "upload"
        }
        (Endpoint::RegistryApi, Some(ApiCall::Tags(_))) => "tags",
        (Endpoint::RegistryApi, Some(ApiCall::Catalog)) => "catalog",
        _ => "other",
    }
}

/// The request an audit event is about.
pub struct Audited<'a> {
    pub call: Option<&'a ApiCall>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub user: &'a str,
    pub client: Option<IpAddr>,
}

/// An override of an immutable tag.
pub struct Overwrite<'a> {
    pub tag: &'a str,
    pub previous: &'a str,
    pub rule: usize,
}

impl Audited<'_> {
    fn event<'e>(&'e self, event: &'e str, repository: Option<&'e str>) -> Event<'e> {
        Event {
            event,
            repository,
            reference: None,
            digest: None,
            user: self.user,
            client: self.client,
            method: self.method,
            path: self.path,
            status: self.status,
            auth: None,
            user_agent: None,
            previous: None,
            rule: None,
        }
    }
}

/// Records an override of an immutable tag that the registry carried out (201 or 202).
pub fn audit_overwrite(
    audit: &Audit,
    req: &Audited<'_>,
    digest: Option<&str>,
    overwrite: &Overwrite<'_>,
) {
    let (Some(ApiCall::Manifest(name)), 201 | 202) = (req.call, req.status) else {
        return;
    };
    audit.record(&Event {
        reference: Some(overwrite.tag),
        digest,
        previous: Some(overwrite.previous),
        rule: Some(overwrite.rule),
        ..req.event("tag-overwrite", Some(name))
    });
}

/// Records a manifest fetched (`GET`, 200), with how the user authenticated and the
/// digest the registry answered with.
pub fn audit_pull(
    audit: &Audit,
    req: &Audited<'_>,
    digest: Option<&str>,
    auth: &str,
    user_agent: Option<&str>,
) {
    let ("GET", 200, Some(ApiCall::Manifest(name))) = (req.method, req.status, req.call) else {
        return;
    };
    audit.record(&Event {
        reference: req.path.rsplit('/').next(),
        digest,
        auth: Some(auth),
        user_agent,
        ..req.event("pull", Some(name))
    });
}

/// Records a manifest push (201 to `PUT .../manifests/REF`) or a delete (202 to `DELETE`).
pub fn audit_write(audit: &Audit, req: &Audited<'_>, digest: Option<&str>) {
    let (event, name) = match (req.method, req.status, req.call) {
        ("PUT", 201, Some(ApiCall::Manifest(name))) => ("push", name),
        ("DELETE", 202, Some(ApiCall::Manifest(name) | ApiCall::Blob(name))) => ("delete", name),
        _ => return,
    };
    audit.record(&Event {
        reference: req.path.rsplit('/').next(),
        digest,
        ..req.event(event, Some(name))
    });
}

/// Records a refused request.
pub fn audit_refusal(audit: &Audit, req: &Audited<'_>) {
    let repository = req.call.and_then(ApiCall::repository);
    audit.record(&req.event("denied", repository));
}

/// What a finished request tells other systems (see [`records`]).
pub struct Happened<'a> {
    pub req: Audited<'a>,
    /// Refused, and audited as `req.user`.
    pub refused: bool,
    /// The digest the registry answered with.
    pub digest: Option<&'a str>,
    pub auth: &'a str,
    pub user_agent: Option<&'a str>,
    pub host: Option<&'a str>,
    /// The manifest's media type: the request's for a push, the answer's for a pull.
    pub media_type: Option<&'a str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// An immutable tag moved or deleted by an `overwrite` rule: the tag and its previous
    /// digest.
    pub overwrite: Option<(&'a str, &'a str)>,
}

/// The events a finished request makes: a manifest push (201), a delete (202), a manifest
/// fetched (200), a refusal, and an immutable tag's override.
pub fn records(h: &Happened<'_>) -> Vec<Record> {
    let r = &h.req;
    let name = r.call.and_then(ApiCall::repository).map(str::to_string);
    let reference = r
        .path
        .rsplit('/')
        .next()
        .filter(|_| matches!(r.call, Some(ApiCall::Manifest(_))));
    let base = Record {
        kind: None,
        user: r.user.to_string(),
        auth: h.auth.to_string(),
        client: r.client.map(|c| c.to_string()),
        repository: name,
        tag: reference.filter(|r| !is_digest(r)).map(str::to_string),
        digest: h
            .digest
            .map(str::to_string)
            .or_else(|| reference.filter(|r| is_digest(r)).map(str::to_string)),
        size: None,
        media_type: h.media_type.map(str::to_string),
        previous: None,
        method: r.method.to_string(),
        path: r.path.to_string(),
        status: r.status,
        user_agent: h.user_agent.map(str::to_string),
        host: h.host.map(str::to_string),
    };
    let with = |kind: Kind, size: Option<u64>| Record {
        kind: Some(kind),
        size,
        ..base.clone()
    };
    let mut out = Vec::new();
    if h.refused {
        out.push(Record {
            media_type: None,
            ..with(Kind::Denied, None)
        });
        return out;
    }
    match (r.method, r.status, r.call) {
        ("PUT", 201, Some(ApiCall::Manifest(_))) => out.push(with(Kind::Push, Some(h.bytes_in))),
        ("DELETE", 202, Some(ApiCall::Manifest(_) | ApiCall::Blob(_))) => {
            out.push(with(Kind::Delete, None))
        }
        ("GET", 200, Some(ApiCall::Manifest(_))) => out.push(with(Kind::Pull, Some(h.bytes_out))),
        _ => return out,
    }
    if let (Some((tag, previous)), "PUT" | "DELETE") = (h.overwrite, r.method) {
        out.push(Record {
            tag: Some(tag.to_string()),
            previous: Some(previous.to_string()),
            ..with(Kind::TagOverwrite, None)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::scope::api_call;

    #[test]
    fn route_classes() {
        let class = |path: &str| route_class(Endpoint::RegistryApi, api_call(path).ok().as_ref());
        assert_eq!(class("/v2/a/manifests/v1"), "manifest");
        assert_eq!(class("/v2/a/blobs/sha256:ab"), "blob");
        assert_eq!(class("/v2/a/blobs/uploads/"), "upload");
        assert_eq!(class("/v2/a/tags/list"), "tags");
        assert_eq!(class("/v2/_catalog"), "catalog");
        assert_eq!(class("/v2/"), "other");
        assert_eq!(class("/v2/a/nothing"), "other");
        assert_eq!(route_class(Endpoint::Token, None), "token");
    }
}
