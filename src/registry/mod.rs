//! Classifying request paths: what the gateway answers itself and what goes to the registry.

pub mod answers;
pub mod forwarding;
pub mod hop_by_hop;
pub mod params;
pub mod scope;

use crate::registry::answers::{GatewayResponse, API_VERSION, API_VERSION_HEADER};

/// Where a request path belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/`: the load-balancer health check, answered by the gateway without the backend.
    Health,
    /// `/v2` and everything under `/v2/`: the registry API, proxied to the backend.
    RegistryApi,
    /// The token endpoint (`auth.token.realm`'s path), answered by the gateway.
    Token,
    /// Anything else: the gateway answers 404 and never exposes it from the backend.
    Other,
}

/// Classifies the path part of a request target (no query string).
///
/// Only the exact `/v2` prefix counts: `/v2x` or `/V2/` are not the registry API.
pub fn classify(path: &str) -> Endpoint {
    if path == "/" {
        Endpoint::Health
    } else if path == "/v2" || path.starts_with("/v2/") {
        Endpoint::RegistryApi
    } else {
        Endpoint::Other
    }
}

/// Whether this is the API version check (`GET` or `HEAD` of `/v2/`), which an allowed
/// client may have answered by the gateway itself (see [`version_check_response`]).
pub fn is_version_check(method: &http::Method, path: &str) -> bool {
    (method == http::Method::GET || method == http::Method::HEAD) && path == "/v2/"
}

/// The registry's own answer to an allowed version check: 200, `{}` as JSON and the API
/// version header, exactly what distribution sends once its auth passes.
///
/// Every docker, containerd or skopeo session starts with this request; answering it at the
/// gateway, after the gateway's own authentication, saves the registry a round trip per
/// client session. It is only correct while the registry has no auth of its own
/// (`forward_authorization` off) and is up, which the caller checks.
pub fn version_check_response() -> GatewayResponse {
    GatewayResponse {
        status: http::StatusCode::OK,
        headers: vec![
            (
                "Content-Type",
                "application/json; charset=utf-8".to_string(),
            ),
            ("Content-Length", "2".to_string()),
            (API_VERSION_HEADER, API_VERSION.to_string()),
        ],
        body: bytes::Bytes::from_static(b"{}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_check_is_get_or_head_of_v2_slash_only() {
        use http::Method;
        assert!(is_version_check(&Method::GET, "/v2/"));
        assert!(is_version_check(&Method::HEAD, "/v2/"));
        assert!(!is_version_check(&Method::POST, "/v2/"));
        assert!(!is_version_check(&Method::GET, "/v2"));
        assert!(!is_version_check(&Method::GET, "/v2/_catalog"));
        let r = version_check_response();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"{}");
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| *n == API_VERSION_HEADER && v == API_VERSION));
    }

    #[test]
    fn classifies_paths() {
        assert_eq!(classify("/"), Endpoint::Health);
        assert_eq!(classify("/v2/"), Endpoint::RegistryApi);
        assert_eq!(classify("/v2"), Endpoint::RegistryApi);
        assert_eq!(
            classify("/v2/library/alpine/manifests/3"),
            Endpoint::RegistryApi
        );
        assert_eq!(classify("/v2x"), Endpoint::Other);
        assert_eq!(classify("/V2/"), Endpoint::Other);
        assert_eq!(classify("/debug/vars"), Endpoint::Other);
        assert_eq!(classify(""), Endpoint::Other);
        assert_eq!(classify("//"), Endpoint::Other);
    }
}
