//! The token endpoint's requests and answers (pure): `GET` with Basic credentials as the
//! Docker token spec describes, and the OAuth2 `POST` form docker and containerd use.

use bytes::Bytes;
use serde::Serialize;

use super::basic::Credentials;
use crate::registry::answers::OAuthError;
use crate::registry::scope::{parse_scopes, Scope};

/// Largest POST form accepted.
pub const MAX_FORM: usize = 64 * 1024;

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantKind {
    /// GET: the `Authorization` header (or client certificate, or nothing: anonymous).
    Header,
    /// POST `grant_type=password`.
    Password(Credentials),
    /// POST `grant_type=refresh_token`.
    Refresh(String),
}

/// A parsed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant: GrantKind,
    pub service: Option<String>,
    pub scopes: Vec<Scope>,
    /// A refresh token was asked for (`offline_token=true` or `access_type=offline`).
    pub offline: bool,
    /// POST answers also list the granted `scope`.
    pub is_post: bool,
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `GET /auth/token?service=..&scope=..&scope=..&offline_token=true`.
pub fn parse_get(query: Option<&str>) -> TokenRequest {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    let scopes = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| parse_scopes(v))
        .collect();
    TokenRequest {
        grant: GrantKind::Header,
        service: first(&pairs, "service").map(str::to_string),
        scopes,
        offline: first(&pairs, "offline_token") == Some("true"),
        is_post: false,
    }
}

/// The OAuth2 form of `POST /auth/token`.
pub fn parse_post(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    if body.len() > MAX_FORM {
        return Err(OAuthError::InvalidRequest);
    }
    let pairs = pairs(body);
    let grant = match first(&pairs, "grant_type") {
        Some("password") => {
            let user = first(&pairs, "username")
                .filter(|u| !u.is_empty())
                .ok_or(OAuthError::InvalidRequest)?;
            let password = first(&pairs, "password").ok_or(OAuthError::InvalidRequest)?;
            GrantKind::Password(Credentials {
                user: user.to_string(),
                password: password.to_string(),
            })
        }
        Some("refresh_token") => GrantKind::Refresh(
            first(&pairs, "refresh_token")
                .ok_or(OAuthError::InvalidRequest)?
                .to_string(),
        ),
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
        None => return Err(OAuthError::InvalidRequest),
    };
    Ok(TokenRequest {
        grant,
        service: first(&pairs, "service").map(str::to_string),
        scopes: first(&pairs, "scope").map(parse_scopes).unwrap_or_default(),
        offline: first(&pairs, "access_type") == Some("offline"),
        is_post: true,
    })
}

/// The JSON answer.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenResponse {
    pub fn body(&self) -> Bytes {
        let mut text = serde_json::to_vec(self).unwrap_or_default();
        text.push(b'\n');
        Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::scope::{Action, Resource};

    #[test]
    fn get_collects_every_scope() {
        let r = parse_get(Some("service=reg&scope=repository:a:pull&scope=repository:b:pull,push%20registry:catalog:*&offline_token=true&account=alice"));
        assert_eq!(r.service.as_deref(), Some("reg"));
        assert_eq!(r.scopes.len(), 3);
        assert_eq!(r.scopes[1].actions, vec![Action::Pull, Action::Push]);
        assert_eq!(r.scopes[2].resource, Resource::Catalog);
        assert!(r.offline && !r.is_post);
        assert!(parse_get(None).scopes.is_empty());
    }

    #[test]
    fn post_grants() {
        let r = parse_post(b"grant_type=password&username=alice&password=p%26ss%3Aw&client_id=docker&access_type=offline&scope=repository%3Aa%3Apull").unwrap();
        assert_eq!(
            r.grant,
            GrantKind::Password(Credentials {
                user: "alice".into(),
                password: "p&ss:w".into()
            })
        );
        assert!(r.offline && r.is_post);
        assert_eq!(r.scopes.len(), 1);
        let refresh =
            parse_post(b"grant_type=refresh_token&refresh_token=abc&service=reg").unwrap();
        assert_eq!(refresh.grant, GrantKind::Refresh("abc".into()));
        assert_eq!(
            parse_post(b"grant_type=client_credentials"),
            Err(OAuthError::UnsupportedGrantType)
        );
        assert_eq!(
            parse_post(b"grant_type=password&username=alice"),
            Err(OAuthError::InvalidRequest)
        );
        assert_eq!(
            parse_post(b"grant_type=password&username=&password=x"),
            Err(OAuthError::InvalidRequest)
        );
        assert_eq!(parse_post(b""), Err(OAuthError::InvalidRequest));
        assert_eq!(
            parse_post(&vec![b'a'; MAX_FORM + 1]),
            Err(OAuthError::InvalidRequest)
        );
    }
}
