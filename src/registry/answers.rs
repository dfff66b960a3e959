//! Every answer the gateway gives by itself, in one place.
//!
//! A [`GatewayError`] names *what* went wrong; [`GatewayError::response`] decides the HTTP
//! status, the registry error code, the headers and the body. Registry clients parse these
//! bodies (an HTML error page makes docker print `invalid character '<'`), so under `/v2/`
//! every answer is the registry's JSON error shape and carries the API-version header.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use super::scope::{format_scopes, Scope};

/// Header that marks a v2 registry; clients check it on the `/v2/` answer (distribution#460).
pub const API_VERSION_HEADER: &str = "Docker-Distribution-API-Version";
/// Value of [`API_VERSION_HEADER`].
pub const API_VERSION: &str = "registry/2.0";

/// Something the gateway answers itself instead of (or after failing to) proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The backend registry refused the connection or broke it mid-response.
    BackendUnreachable,
    /// The backend registry did not answer within the configured timeout.
    BackendTimeout,
    /// The gateway is shutting down or otherwise cannot take the request now.
    Unavailable,
    /// The LDAP directory that checks passwords cannot be reached (not a wrong password).
    DirectoryUnavailable,
    /// A path outside `/v2/` that the gateway does not serve.
    NotFound,
    /// A method the path does not support; carries the `Allow` value.
    MethodNotAllowed(&'static str),
    /// The request itself is malformed (e.g. an unusable Host).
    BadRequest(&'static str),
    /// A repository name in the request (a mount's `from`) is not a valid name.
    NameInvalid,
    /// No or wrong credentials: 401 with a Basic challenge for `realm`.
    Unauthorized { realm: String },
    /// Authenticated (or identified by certificate) but not allowed.
    Denied(&'static str),
    /// A move or delete of an immutable tag; the message names the tag and the rule.
    ImmutableTag(String),
    /// Too many failed logins from this address; try again after `retry_after` seconds.
    TooManyRequests { retry_after: u64 },
    /// A rate limit (`[limits]`) is reached; `rate` is the `RateLimit-Limit` and
    /// `RateLimit-Remaining` values, when a pull limit.
    RateLimited {
        message: String,
        retry_after: u64,
        rate: Option<(String, String)>,
    },
    /// Token authentication needed: 401 with a Bearer challenge. `scopes` are the scopes
    /// the request needs (none for `/v2/`); `error` says what was wrong with a token that
    /// was presented.
    BearerChallenge {
        realm: String,
        service: String,
        scopes: Vec<Scope>,
        error: Option<BearerError>,
    },
    /// A push or delete while `read_only = true`.
    ReadOnly,
    /// An OAuth2 error at the token endpoint (`invalid_request`, `unsupported_grant_type`, ...).
    TokenRequest(OAuthError),
}

/// What was wrong with a presented Bearer token (the challenge's `error`, RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// Expired, malformed, badly signed or for another service.
    InvalidToken,
    /// Valid, but it does not grant what the request needs.
    InsufficientScope,
}

impl BearerError {
    pub fn code(self) -> &'static str {
        match self {
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// Why a token request is refused: the OAuth2 `error` codes the endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
}

impl OAuthError {
    /// The `error` value of the answer (RFC 6749 §5.2).
    pub fn code(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

/// The complete answer for a [`GatewayError`]: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayResponse {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl GatewayError {
    /// Status, registry error code and message for this error.
    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            Self::BackendUnreachable => (
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                "the backend registry is unreachable",
            ),
            Self::BackendTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "UNAVAILABLE",
                "the backend registry did not answer in time",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "service unavailable",
            ),
            Self::DirectoryUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the user directory is unavailable; try again later",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "not found"),
            Self::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "the operation is unsupported",
            ),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "UNSUPPORTED", message),
            Self::NameInvalid => (
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
                "invalid repository name",
            ),
            Self::Unauthorized { .. } => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            ),
            Self::Denied(message) => (StatusCode::FORBIDDEN, "DENIED", message),
            Self::ImmutableTag(message) => (StatusCode::FORBIDDEN, "DENIED", message),
            Self::BearerChallenge { .. } => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            ),
            Self::ReadOnly => (
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "the registry is in read-only mode",
            ),
            Self::TokenRequest(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED", "bad token request"),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "too many failed login attempts; try again later",
            ),
            Self::RateLimited { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message)
            }
        }
    }

    /// HTTP status of this error's answer.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The `detail` of the error body: for a Bearer challenge on repositories, the access
    /// records distribution puts there (`[{"Type":"repository","Name":..,"Action":..}]`).
    fn detail(&self) -> serde_json::Value {
        match self {
            Self::BearerChallenge { scopes, .. } if !scopes.is_empty() => {
                let records: Vec<serde_json::Value> = scopes
                    .iter()
                    .flat_map(|s| {
                        let (kind, name) = s.resource.type_and_name();
                        s.actions.iter().map(move |a| {
                            serde_json::json!({"Type": kind, "Class": "", "Name": name, "Action": a.as_str()})
                        })
                    })
                    .collect();
                serde_json::Value::Array(records)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// The full answer. `under_v2` adds the registry API-version header, which every
    /// response under `/v2/` must carry, errors included.
    pub fn response(&self, under_v2: bool) -> GatewayResponse {
        let (status, code, message) = self.parts();
        let body = match self {
            Self::TokenRequest(error) => {
                let mut text = serde_json::json!({ "error": error.code() }).to_string();
                text.push('\n');
                Bytes::from(text)
            }
            _ => error_body_with_detail(code, message, self.detail()),
        };
        let mut headers = vec![
            (
                "Content-Type",
                "application/json; charset=utf-8".to_string(),
            ),
            ("Content-Length", body.len().to_string()),
            ("Cache-Control", "no-store".to_string()),
        ];
        if under_v2 {
            headers.push((API_VERSION_HEADER, API_VERSION.to_string()));
        }
        match self {
            Self::MethodNotAllowed(allow) => headers.push(("Allow", (*allow).to_string())),
            Self::Unauthorized { realm } => {
                headers.push(("WWW-Authenticate", format!("Basic realm=\"{realm}\"")))
            }
            Self::DirectoryUnavailable => headers.push(("Retry-After", "5".to_string())),
            Self::TooManyRequests { retry_after } => {
                headers.push(("Retry-After", retry_after.to_string()))
            }
            Self::RateLimited {
                retry_after, rate, ..
            } => {
                headers.push(("Retry-After", retry_after.to_string()));
                if let Some((limit, remaining)) = rate {
                    headers.push(("RateLimit-Limit", limit.clone()));
                    headers.push(("RateLimit-Remaining", remaining.clone()));
                }
            }
            Self::BearerChallenge {
                realm,
                service,
                scopes,
                error,
            } => {
                let mut value = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
                if !scopes.is_empty() {
                    value.push_str(&format!(",scope=\"{}\"", format_scopes(scopes)));
                }
                if let Some(error) = error {
                    value.push_str(&format!(",error=\"{}\"", error.code()));
                }
                headers.push(("WWW-Authenticate", value));
            }
            _ => {}
        }
        GatewayResponse {
            status,
            headers,
            body,
        }
    }
}

/// The registry's error body: `{"errors":[{"code":..,"message":..,"detail":null}]}` and a
/// newline, as distribution's `errcode` package writes it.
pub fn error_body(code: &str, message: &str) -> Bytes {
    error_body_with_detail(code, message, serde_json::Value::Null)
}

/// [`error_body`] with a `detail` value.
pub fn error_body_with_detail(code: &str, message: &str, detail: serde_json::Value) -> Bytes {
    #[derive(Serialize)]
    struct Body<'a> {
        errors: [Entry<'a>; 1],
    }
    #[derive(Serialize)]
    struct Entry<'a> {
        code: &'a str,
        message: &'a str,
        detail: serde_json::Value,
    }
    let body = Body {
        errors: [Entry {
            code,
            message,
            detail,
        }],
    };
    let mut text = serde_json::to_vec(&body).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a GatewayResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn backend_unreachable_is_a_registry_shaped_502() {
        let r = GatewayError::BackendUnreachable.response(true);
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert_eq!(header(&r, API_VERSION_HEADER), Some("registry/2.0"));
        assert_eq!(
            header(&r, "content-type"),
            Some("application/json; charset=utf-8")
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["errors"][0]["code"], "UNAVAILABLE");
        assert!(v["errors"][0]["detail"].is_null());
        assert_eq!(
            header(&r, "content-length"),
            Some(r.body.len().to_string().as_str())
        );
    }

    #[test]
    fn status_and_code_map_is_pinned() {
        let cases = [
            (GatewayError::BackendUnreachable, 502, "UNAVAILABLE"),
            (GatewayError::BackendTimeout, 504, "UNAVAILABLE"),
            (GatewayError::Unavailable, 503, "UNAVAILABLE"),
            (GatewayError::DirectoryUnavailable, 503, "UNAVAILABLE"),
            (GatewayError::ImmutableTag("x".into()), 403, "DENIED"),
            (GatewayError::NotFound, 404, "NOT_FOUND"),
            (
                GatewayError::MethodNotAllowed("GET, HEAD"),
                405,
                "UNSUPPORTED",
            ),
            (GatewayError::BadRequest("bad host"), 400, "UNSUPPORTED"),
            (GatewayError::NameInvalid, 400, "NAME_INVALID"),
            (
                GatewayError::Unauthorized { realm: "R".into() },
                401,
                "UNAUTHORIZED",
            ),
            (GatewayError::Denied("no"), 403, "DENIED"),
            (
                GatewayError::TooManyRequests { retry_after: 5 },
                429,
                "TOOMANYREQUESTS",
            ),
        ];
        for (err, status, code) in cases {
            let r = err.response(false);
            assert_eq!(r.status.as_u16(), status, "{err:?}");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["errors"][0]["code"], code, "{err:?}");
        }
    }

    #[test]
    fn unauthorized_is_exactly_what_registry_clients_expect() {
        let r = GatewayError::Unauthorized {
            realm: "Registry Realm".into(),
        }
        .response(true);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Basic realm=\"Registry Realm\"")
        );
        assert_eq!(header(&r, API_VERSION_HEADER), Some("registry/2.0"));
        assert_eq!(
            &r.body[..],
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}\n"
        );
        let t = GatewayError::TooManyRequests { retry_after: 42 }.response(true);
        assert_eq!(header(&t, "retry-after"), Some("42"));
    }

    #[test]
    fn bearer_challenges_are_shaped_like_registry_2() {
        let mut challenge = GatewayError::BearerChallenge {
            realm: "https://r.example/auth/token".into(),
            service: "r.example".into(),
            scopes: Vec::new(),
            error: None,
        };
        let r = challenge.response(true);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"https://r.example/auth/token\",service=\"r.example\"")
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["errors"][0]["detail"].is_null());
        if let GatewayError::BearerChallenge { scopes, error, .. } = &mut challenge {
            *scopes = crate::registry::scope::parse_scopes("repository:a/b:pull,push");
            *error = Some(BearerError::InsufficientScope);
        }
        let r = challenge.response(true);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"https://r.example/auth/token\",service=\"r.example\",scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\"")
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["errors"][0]["detail"],
            serde_json::json!([
                {"Type": "repository", "Class": "", "Name": "a/b", "Action": "pull"},
                {"Type": "repository", "Class": "", "Name": "a/b", "Action": "push"}
            ])
        );
        let token = GatewayError::TokenRequest(OAuthError::UnsupportedGrantType).response(false);
        assert_eq!(&token.body[..], b"{\"error\":\"unsupported_grant_type\"}\n");
        assert_eq!(GatewayError::ReadOnly.status().as_u16(), 405);
    }

    #[test]
    fn api_header_only_under_v2() {
        let outside = GatewayError::NotFound.response(false);
        assert_eq!(header(&outside, API_VERSION_HEADER), None);
        let allow = GatewayError::MethodNotAllowed("GET, HEAD").response(false);
        assert_eq!(header(&allow, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn body_is_exactly_the_registry_shape() {
        assert_eq!(
            &error_body("UNAVAILABLE", "x")[..],
            b"{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"x\",\"detail\":null}]}\n"
        );
    }
}
