//! Classifying request paths: what the gateway answers itself and what goes to the registry.

/// Where a request path belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
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
pub fn classify(path: &str) -> Route {
    if path == "/" {
        Route::Health
    } else if path == "/v2" || path.starts_with("/v2/") {
        Route::RegistryApi
    } else {
        Route::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(classify("/"), Route::Health);
        assert_eq!(classify("/v2/"), Route::RegistryApi);
        assert_eq!(classify("/v2"), Route::RegistryApi);
        assert_eq!(
            classify("/v2/library/alpine/manifests/3"),
            Route::RegistryApi
        );
        assert_eq!(classify("/v2x"), Route::Other);
        assert_eq!(classify("/V2/"), Route::Other);
        assert_eq!(classify("/debug/vars"), Route::Other);
        assert_eq!(classify(""), Route::Other);
        assert_eq!(classify("//"), Route::Other);
    }
}
