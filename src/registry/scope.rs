//! Which access a registry request needs, and the token scope grammar (pure).
//!
//! The path is matched the way distribution's router does (`registry/api/v2/routes.go`):
//! routes tried in order base, catalog, tags, manifests, blobs, upload, upload chunk, each
//! anchored, with repository names from the distribution spec grammar. Anything that is not
//! exactly one of those routes is refused here and never reaches the registry, so that
//! `..`, percent-encoding, doubled or trailing slashes and upper case cannot make the
//! gateway authorize one repository while the registry serves another.

use std::fmt;

use crate::registry::params::Params;

/// An action on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Pull,
    Push,
    Delete,
    /// `*`: every action (the catalog's only action).
    All,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "*" => Some(Action::All),
            _ => None,
        }
    }
}

/// What access is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Repository(String),
    /// `registry:catalog`.
    Catalog,
}

impl Resource {
    /// `(type, name)` as in token scopes and JWT access claims.
    pub fn type_and_name(&self) -> (&'static str, &str) {
        match self {
            Resource::Repository(name) => ("repository", name),
            Resource::Catalog => ("registry", "catalog"),
        }
    }
}

/// A resource and the actions wanted on it: `repository:team/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub resource: Resource,
    pub actions: Vec<Action>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = self.resource.type_and_name();
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        write!(f, "{kind}:{name}:{}", actions.join(","))
    }
}

/// The API call a `/v2/` request is, by distribution's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCall {
    Base,
    Catalog,
    Tags(String),
    Manifest(String),
    Blob(String),
    UploadStart(String),
    UploadChunk(String),
    Referrers(String),
}

impl ApiCall {
    /// The repository the call is about (`None` for `/v2/` and the catalog).
    pub fn repository(&self) -> Option<&str> {
        match self {
            ApiCall::Base | ApiCall::Catalog => None,
            ApiCall::Tags(n)
            | ApiCall::Manifest(n)
            | ApiCall::Blob(n)
            | ApiCall::UploadStart(n)
            | ApiCall::UploadChunk(n)
            | ApiCall::Referrers(n) => Some(n),
        }
    }
}

/// Why a request cannot be mapped to a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("not a registry API path")]
    UnknownPath,
    #[error("the method is not allowed on this path")]
    Method,
    /// A cross-repository mount whose `from` is not a repository name.
    #[error("the mount source is not a valid repository name")]
    MountSource,
}

/// Longest repository name distribution accepts.
const MAX_NAME: usize = 255;

/// Matches a `/v2/...` path to its route. The path must be exactly as distribution's router
/// would match it: no query, no percent-encoding, no empty, `.` or `..` segments.
pub fn api_call(path: &str) -> Result<ApiCall, RouteError> {
    let rest = path.strip_prefix("/v2/").ok_or(RouteError::UnknownPath)?;
    if rest.is_empty() {
        return Ok(ApiCall::Base);
    }
    if rest == "_catalog" {
        return Ok(ApiCall::Catalog);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let named = |tail: usize| -> Option<String> {
        let name = &segments[..segments.len().checked_sub(tail)?];
        let name = name.join("/");
        is_repository_name(&name).then_some(name)
    };
    let n = segments.len();
    let last = |i: usize| segments.get(n.wrapping_sub(i)).copied().unwrap_or("");
    if n >= 3 && last(2) == "tags" && last(1) == "list" {
        if let Some(name) = named(2) {
            return Ok(ApiCall::Tags(name));
        }
    }
    if n >= 3 && last(2) == "manifests" && is_reference(last(1)) {
        if let Some(name) = named(2) {
            return Ok(ApiCall::Manifest(name));
        }
    }
    if n >= 3 && last(2) == "blobs" && is_digest(last(1)) {
        if let Some(name) = named(2) {
            return Ok(ApiCall::Blob(name));
        }
    }
    if n >= 4 && last(3) == "blobs" && last(2) == "uploads" && last(1).is_empty() {
        if let Some(name) = named(3) {
            return Ok(ApiCall::UploadStart(name));
        }
    }
    if n >= 4 && last(3) == "blobs" && last(2) == "uploads" && is_upload_id(last(1)) {
        if let Some(name) = named(3) {
            return Ok(ApiCall::UploadChunk(name));
        }
    }
    if n >= 3 && last(2) == "referrers" && is_digest(last(1)) {
        if let Some(name) = named(2) {
            return Ok(ApiCall::Referrers(name));
        }
    }
    Err(RouteError::UnknownPath)
}

/// The scopes a request needs: empty for the base `/v2/` (authentication only).
/// `params` is the parsed query (the one forwarded), for a cross-repository mount's `from`.
pub fn required_scopes(
    method: &str,
    path: &str,
    params: &Params,
) -> Result<Vec<Scope>, RouteError> {
    scopes_of(&api_call(path)?, method, params)
}

/// The scopes `method` on the API call `call` needs (see [`required_scopes`]).
pub fn scopes_of(call: &ApiCall, method: &str, params: &Params) -> Result<Vec<Scope>, RouteError> {
    use Action::*;
    let read = matches!(method, "GET" | "HEAD");
    let scope = |name: String, actions: &[Action]| Scope {
        resource: Resource::Repository(name),
        actions: actions.to_vec(),
    };
    let scopes = match (call.clone(), method) {
        (ApiCall::Base, _) if read => vec![],
        (ApiCall::Catalog, "GET") => vec![Scope {
            resource: Resource::Catalog,
            actions: vec![All],
        }],
        (ApiCall::Tags(name) | ApiCall::Referrers(name), _) if read => vec![scope(name, &[Pull])],
        (ApiCall::Manifest(name) | ApiCall::Blob(name), _) if read => vec![scope(name, &[Pull])],
        (ApiCall::Manifest(name), "PUT") => vec![scope(name, &[Pull, Push])],
        (ApiCall::Manifest(name) | ApiCall::Blob(name), "DELETE") => vec![scope(name, &[Delete])],
        (ApiCall::UploadStart(name), "POST") => {
            let mut scopes = vec![scope(name, &[Pull, Push])];
            if let Some(from) = mount_source(params)? {
                scopes.push(scope(from, &[Pull]));
            }
            scopes
        }
        (ApiCall::UploadChunk(name), "GET" | "PATCH" | "PUT" | "DELETE") => {
            vec![scope(name, &[Pull, Push])]
        }
        _ => return Err(RouteError::Method),
    };
    Ok(scopes)
}

/// The `from` repository of `?mount=DIGEST&from=NAME`, when both are present. A `from`
/// that is not a repository name is refused: distribution would start a plain upload, but
/// another registry may read the name differently than the gateway authorized it.
fn mount_source(params: &Params) -> Result<Option<String>, RouteError> {
    match (params.get("mount"), params.get("from")) {
        (Some(_), Some(from)) if is_repository_name(from) => Ok(Some(from.to_string())),
        (Some(_), Some(_)) => Err(RouteError::MountSource),
        _ => Ok(None),
    }
}

/// Distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most 255 characters.
pub fn is_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-", between alphanumerics.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a digest.
fn is_reference(text: &str) -> bool {
    is_tag(text) || is_digest(text)
}

fn is_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
}

/// `algorithm:encoded`: `[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
pub fn is_digest(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    let alg_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let enc_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b'_' || b == b'-');
    alg_ok && enc_ok
}

/// Upload ids: `[a-zA-Z0-9-_.=]+` (distribution's `uuid` route variable).
fn is_upload_id(text: &str) -> bool {
    // `.` and `..` match distribution's pattern too, but are path segments, never ids.
    !text.is_empty()
        && text.bytes().any(|b| b != b'.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
}

/// Parses token scopes: each `type[(class)]:name:action[,action]`, several separated by
/// spaces. The name may hold `host:port`, so the actions follow the last colon. Unknown
/// types and actions are dropped (the spec: grant what is understood, ignore the rest).
pub fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .filter_map(parse_scope)
        .collect()
}

/// The inverse of [`parse_scopes`]: scopes as a challenge's or a token answer's `scope`
/// value, separated by spaces.
pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_scope(text: &str) -> Option<Scope> {
    let (kind, rest) = text.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
    let resource = match (kind, name) {
        ("repository", name) if is_repository_name(name) => Resource::Repository(name.to_string()),
        ("registry", "catalog") => Resource::Catalog,
        _ => return None,
    };
    let mut actions: Vec<Action> = actions.split(',').filter_map(Action::parse).collect();
    actions.sort();
    actions.dedup();
    Some(Scope { resource, actions })
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
