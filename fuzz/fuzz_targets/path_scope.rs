//! `Params::parse(query)`, `required_scopes(method, path, params)` and `route(path)` on
//! arbitrary requests.
//!
//! Input: `method \0 path \0 query` (lossy UTF-8; without a second `\0` there is no query).
//! A method of zero or one byte picks one of the real methods, so the fuzzer need not
//! spell them. Invariants when a repository scope is granted:
//! * every repository name (the path's and a mount's `from`) is a valid distribution name;
//! * the path has no `%`, `//`, `/./`, `/../` or `\` (nothing the registry could decode or
//!   normalise into another repository), and only characters distribution's routes allow;
//! * the path routes, and the first scope names the route's repository;
//! * the query forwarded parses back to the same parameters, and a mount it carries has its
//!   source among the scopes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::registry::scope::{
    is_repository_name, required_scopes, route, Action, Resource, Route, RouteError,
};
use portcullis::registry::params::Params;

const METHODS: [&str; 8] = [
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "get",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let method_bytes = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().map(String::from_utf8_lossy);
    let method = match method_bytes {
        [] => METHODS[0].to_string(),
        [b] => METHODS[usize::from(*b) % METHODS.len()].to_string(),
        _ => String::from_utf8_lossy(method_bytes).into_owned(),
    };

    let Ok(params) = Params::parse(query.as_deref()) else {
        return;
    };
    let forwarded = params.encode();
    assert_eq!(
        Params::parse(forwarded.as_deref()).as_ref(),
        Ok(&params),
        "{query:?} is forwarded as {forwarded:?}"
    );
    let routed = route(&path);
    let scopes = match required_scopes(&method, &path, &params) {
        Ok(scopes) => scopes,
        Err(RouteError::UnknownPath) => {
            assert!(routed.is_err(), "{path:?} routes but has no scopes");
            return;
        }
        Err(RouteError::Method | RouteError::MountSource) => return,
    };
    if let (Some(_), Some(from), Route::UploadStart(_)) =
        (params.get("mount"), params.get("from"), routed.as_ref().unwrap())
    {
        let source = Resource::Repository(from.to_string());
        assert!(
            scopes
                .iter()
                .any(|s| s.resource == source && s.actions.contains(&Action::Pull)),
            "{query:?} mounts from {from:?} without pull on it: {scopes:?}"
        );
    }
    let routed = routed.unwrap_or_else(|e| panic!("{path:?} has scopes but no route: {e}"));

    let mut repositories = 0;
    for scope in &scopes {
        if let Resource::Repository(name) = &scope.resource {
            repositories += 1;
            assert!(is_repository_name(name), "invalid repository name {name:?}");
            assert!(name.len() <= 255, "{} bytes long name", name.len());
        }
        assert!(
            !scope.actions.is_empty(),
            "a scope without actions: {scope}"
        );
    }
    if repositories == 0 {
        return;
    }
    for bad in ["%", "//", "/./", "/../", "\\"] {
        assert!(
            !path.contains(bad),
            "{method} {path:?} was granted {scopes:?} though it contains {bad:?}"
        );
    }
    assert!(
        path.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._=+:-".contains(&b)),
        "{method} {path:?} was granted {scopes:?} with a character no route allows"
    );
    let name = match &routed {
        Route::Tags(n)
        | Route::Manifest(n)
        | Route::Blob(n)
        | Route::UploadStart(n)
        | Route::UploadChunk(n)
        | Route::Referrers(n) => n,
        Route::Base | Route::Catalog => panic!("{path:?} routes to {routed:?} with {scopes:?}"),
    };
    assert_eq!(
        scopes[0].resource,
        Resource::Repository(name.clone()),
        "{method} {path:?}"
    );
    assert!(
        path.starts_with(&format!("/v2/{name}/")),
        "{path:?} is not under /v2/{name}/"
    );
});
