//! What the gateway records about each request, beyond the access log: metric labels and
//! audit events (pure decisions; the writing is in `metrics` and `audit`).

use std::net::IpAddr;

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
    let repository = match req.call {
        Some(
            ApiCall::Manifest(n)
            | ApiCall::Blob(n)
            | ApiCall::Tags(n)
            | ApiCall::UploadStart(n)
            | ApiCall::UploadChunk(n)
            | ApiCall::Referrers(n),
        ) => Some(n.as_str()),
        _ => None,
    };
    audit.record(&req.event("denied", repository));
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
