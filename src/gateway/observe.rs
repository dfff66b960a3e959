//! What the gateway records about each request, beyond the access log: metric labels and
//! audit events (pure decisions; the writing is in `metrics` and `audit`).

use std::net::IpAddr;

use crate::auth::{AuthMethod, Principal};
use crate::registry::answers::GatewayError;
use crate::registry::scope::{api_call, ApiCall};
use crate::registry::Endpoint;
use crate::telemetry::audit::{Audit, Event};

/// The route class label of a request: manifest, blob, upload, tags, catalog, token, other.
pub fn route_class(route_kind: Endpoint, path: &str) -> &'static str {
    match route_kind {
        Endpoint::Token => "token",
        Endpoint::RegistryApi => match api_call(path) {
            Ok(ApiCall::Manifest(_)) => "manifest",
            Ok(ApiCall::Blob(_)) => "blob",
            Ok(ApiCall::UploadStart(_) | ApiCall::UploadChunk(_)) => "upload",
            Ok(ApiCall::Tags(_)) => "tags",
            Ok(ApiCall::Catalog) => "catalog",
            _ => "other",
        },
        Endpoint::Health | Endpoint::Other => "other",
    }
}

/// `(method, outcome)` labels for an access decision.
pub fn auth_labels(
    result: &Result<Principal, GatewayError>,
    authorization: Option<&[u8]>,
) -> (&'static str, &'static str) {
    match result {
        Ok(p) => (method_label(p.method), "ok"),
        Err(e) => {
            let scheme = match authorization.map(|a| {
                a.iter()
                    .take(7)
                    .map(u8::to_ascii_lowercase)
                    .collect::<Vec<_>>()
            }) {
                Some(s) if s.starts_with(b"basic") => "basic",
                Some(s) if s.starts_with(b"bearer") => "token",
                Some(_) => "other",
                None => "anonymous",
            };
            let outcome = match e.status().as_u16() {
                401 | 403 | 405 => "denied",
                429 => "throttled",
                503 => "unavailable",
                _ => "bad_request",
            };
            (scheme, outcome)
        }
    }
}

fn method_label(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::None => "none",
        AuthMethod::Anonymous => "anonymous",
        AuthMethod::Basic => "basic",
        AuthMethod::Certificate => "certificate",
        AuthMethod::Token => "token",
    }
}

/// Whether a refusal the ACL did not make belongs in the audit log: not the plain challenge
/// of a client that sent no credentials (every docker login starts with one), and not an
/// ACL refusal of a known user (the ACL records those itself, with the user).
pub fn audited_refusal(error: &GatewayError, authorization: Option<&[u8]>) -> bool {
    !matches!(error, GatewayError::Denied(_) | GatewayError::ReadOnly)
        && (authorization.is_some() || error.status().as_u16() == 429)
}

/// Records a manifest push (201 to `PUT .../manifests/REF`) or a delete (202 to `DELETE`).
pub fn audit_write(
    audit: &Audit,
    method: &str,
    path: &str,
    status: u16,
    digest: Option<&str>,
    user: &str,
    client: Option<IpAddr>,
) {
    // Only writes are audited: the path is parsed for those alone (this runs per response).
    if !matches!((method, status), ("PUT", 201) | ("DELETE", 202)) {
        return;
    }
    let (event, name) = match (method, status, api_call(path)) {
        ("PUT", 201, Ok(ApiCall::Manifest(name))) => ("push", name),
        ("DELETE", 202, Ok(ApiCall::Manifest(name) | ApiCall::Blob(name))) => ("delete", name),
        _ => return,
    };
    let reference = path.rsplit('/').next();
    audit.record(&Event {
        event,
        repository: Some(&name),
        reference,
        digest,
        user,
        client,
        method,
        path,
        status,
    });
}

/// Records a refused request.
pub fn audit_refusal(
    audit: &Audit,
    method: &str,
    path: &str,
    status: u16,
    user: &str,
    client: Option<IpAddr>,
) {
    let repository = match api_call(path) {
        Ok(
            ApiCall::Manifest(n)
            | ApiCall::Blob(n)
            | ApiCall::Tags(n)
            | ApiCall::UploadStart(n)
            | ApiCall::UploadChunk(n)
            | ApiCall::Referrers(n),
        ) => Some(n),
        _ => None,
    };
    audit.record(&Event {
        event: "denied",
        repository: repository.as_deref(),
        reference: None,
        digest: None,
        user,
        client,
        method,
        path,
        status,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        assert_eq!(
            route_class(Endpoint::RegistryApi, "/v2/a/manifests/v1"),
            "manifest"
        );
        assert_eq!(
            route_class(Endpoint::RegistryApi, "/v2/a/blobs/sha256:ab"),
            "blob"
        );
        assert_eq!(
            route_class(Endpoint::RegistryApi, "/v2/a/blobs/uploads/"),
            "upload"
        );
        assert_eq!(
            route_class(Endpoint::RegistryApi, "/v2/a/tags/list"),
            "tags"
        );
        assert_eq!(
            route_class(Endpoint::RegistryApi, "/v2/_catalog"),
            "catalog"
        );
        assert_eq!(route_class(Endpoint::RegistryApi, "/v2/"), "other");
        assert_eq!(route_class(Endpoint::Token, "/auth/token"), "token");
    }

    #[test]
    fn auth_outcomes() {
        let ok = Ok(Principal {
            user: "a".into(),
            method: AuthMethod::Basic,
        });
        assert_eq!(auth_labels(&ok, Some(b"Basic x")), ("basic", "ok"));
        let throttled = Err(GatewayError::TooManyRequests { retry_after: 3 });
        assert_eq!(
            auth_labels(&throttled, Some(b"Basic x")),
            ("basic", "throttled")
        );
        let denied = Err(GatewayError::Denied("no"));
        assert_eq!(auth_labels(&denied, Some(b"bearer t")), ("token", "denied"));
        assert!(!audited_refusal(
            &GatewayError::Unauthorized { realm: "r".into() },
            None
        ));
        assert!(audited_refusal(
            &GatewayError::Unauthorized { realm: "r".into() },
            Some(b"Basic x")
        ));
        assert!(
            !audited_refusal(&GatewayError::Denied("acl"), Some(b"Basic x")),
            "the ACL records its own"
        );
    }
}
