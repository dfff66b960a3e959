//! Outgoing HTTP(S) for the gateway's own requests (OIDC key sets, webhooks): ureq on the
//! rustls and ring already linked, trusting the system's CAs plus any given ones.

use std::sync::Arc;
use std::time::Duration;

/// A client with a total time limit per request; `https_only` refuses `http://` URLs.
/// Answers with error statuses are errors when `status_as_error`.
pub fn agent(
    extra_roots: &[Vec<u8>],
    timeout: Duration,
    https_only: bool,
    status_as_error: bool,
) -> Result<ureq::Agent, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let system = rustls_native_certs::load_native_certs().unwrap_or_default();
    let roots: Vec<Certificate<'static>> = system
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .chain(
            extra_roots
                .iter()
                .map(|c| Certificate::from_der(c).to_owned()),
        )
        .collect();
    if roots.is_empty() && https_only {
        return Err("no CA certificates: the system has none and no ca file is given".into());
    }
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&roots))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .https_only(https_only)
        .timeout_global(Some(timeout))
        .http_status_as_error(status_as_error)
        .build()
        .into())
}
