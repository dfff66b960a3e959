//! The admin listener (plain HTTP, loopback by default, off the public port):
//! `/metrics`, `/healthz` (the process answers) and `/readyz` (the registry answers `/v2/`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clock::unix_now;
use crate::gateway::backends::{states, Pool};
use crate::gateway::state::State;
use crate::telemetry::metrics::{label, Metrics};
use crate::tls::certs::read_certificates;

/// Serves the admin paths.
pub struct AdminApp {
    pub metrics: Arc<Metrics>,
    /// Read for the certificate gauges: what is served.
    pub state: Arc<State>,
    pub pool: Arc<Pool>,
    /// The webhooks, for their delivery metrics.
    pub events: Arc<crate::events::Events>,
    /// With `[tls.acme]`: the certificate it serves, for readiness and the gauges.
    pub acme: Option<Arc<crate::tls::acme::Acme>>,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => text(200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => match self.readiness().await {
                Ok(()) => text(200, "text/plain", b"ready\n".to_vec()),
                Err(why) => text(
                    503,
                    "text/plain",
                    format!("not ready: {why}\n").into_bytes(),
                ),
            },
            "/metrics" => text(
                200,
                "text/plain; version=0.0.4",
                self.metrics_text().into_bytes(),
            ),
            _ => text(404, "text/plain", b"not found\n".to_vec()),
        }
    }
}

impl AdminApp {
    /// Ready: a certificate to serve, then a registry answering; the registry is asked only
    /// once there is a certificate.
    async fn readiness(&self) -> Result<(), String> {
        self.has_certificate()?;
        self.any_backend_ready().await
    }

    /// Ready only once there is a certificate to serve (with `[tls.acme]`, after the first
    /// order).
    fn has_certificate(&self) -> Result<(), String> {
        match &self.acme {
            Some(acme) if acme.current().is_none() => {
                Err("no certificate yet: the first ACME order has not succeeded".into())
            }
            _ => Ok(()),
        }
    }

    /// `/metrics`: the counters, the gauges, and the directory client's own metrics.
    fn metrics_text(&self) -> String {
        let mut text = self.metrics.render(&self.gauges());
        if let Some(basic) = &self.state.live().access.authn.basic {
            basic.checker.render_metrics(&mut text);
        }
        if let Some(directory) = &self.state.live().access.authn.ldap {
            directory.render_metrics(&mut text);
        }
        if let Some(acme) = &self.acme {
            acme.render_metrics(&mut text);
        }
        self.events.render_metrics(&mut text);
        self.state
            .live()
            .access
            .authn
            .store
            .render_metrics(&mut text);
        text
    }

    /// Ready when any replica answers `/v2/` now.
    async fn any_backend_ready(&self) -> Result<(), String> {
        let mut why = Vec::new();
        for (addr, _) in states(&self.pool) {
            match backend_ready(addr).await {
                Ok(()) => return Ok(()),
                Err(e) => why.push(format!("{addr}: {e}")),
            }
        }
        Err(why.join("; "))
    }

    /// Build info and certificate expiry gauges, from the TLS settings being served.
    fn gauges(&self) -> Vec<(&'static str, &'static str, String, f64)> {
        let tls = Arc::clone(&self.state.live().tls);
        let now = unix_now();
        let mut gauges = vec![(
            "portcullis_build_info",
            "Build information.",
            format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            1.0,
        )];
        for (addr, healthy) in states(&self.pool) {
            let up = if healthy { 1.0 } else { 0.0 };
            gauges.push((
                "portcullis_backend_up",
                "Whether each registry replica passed its last health check.",
                format!("{{backend=\"{addr}\"}}"),
                up,
            ));
        }
        let acme_cert = self.acme.as_ref().and_then(|a| a.current());
        let serving = tls.identity().or(acme_cert.as_deref());
        if let Some(leaf) = serving.and_then(|i| i.chain.first()) {
            gauges.push((
                "portcullis_certificate_expiry_seconds",
                "Seconds until the serving certificate expires.",
                format!("{{subject=\"{}\"}}", label(&leaf.subject)),
                (leaf.not_after - now) as f64,
            ));
        }
        if let Some(oidc) = &self.state.live().access.authn.oidc {
            for issuer in &oidc.issuers {
                let store = &issuer.keys;
                let name = label(store.name());
                gauges.push((
                    "portcullis_oidc_keys",
                    "Signing keys held for each OIDC issuer.",
                    format!("{{issuer=\"{name}\"}}"),
                    store.keys().len() as f64,
                ));
                for (outcome, count) in [("ok", &store.counts.ok), ("error", &store.counts.error)] {
                    gauges.push((
                        "portcullis_oidc_jwks_fetches",
                        "Key set fetches of each OIDC issuer since start, by outcome.",
                        format!("{{issuer=\"{name}\",outcome=\"{outcome}\"}}"),
                        count.load(std::sync::atomic::Ordering::Relaxed) as f64,
                    ));
                }
            }
        }
        for path in tls.client_auth.iter().flat_map(|c| c.cas.iter()) {
            for der in read_certificates(path).unwrap_or_default() {
                use x509_parser::prelude::FromDer;
                if let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(&der) {
                    let expiry = cert.validity().not_after.timestamp() - now;
                    gauges.push((
                        "portcullis_client_ca_expiry_seconds",
                        "Seconds until each client CA certificate expires.",
                        format!("{{subject=\"{}\"}}", label(&cert.subject().to_string())),
                        expiry as f64,
                    ));
                }
            }
        }
        gauges
    }
}

/// Whether the registry answers `GET /v2/` with 200 or 401 within two seconds.
pub async fn backend_ready(addr: SocketAddr) -> Result<(), String> {
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /v2/ HTTP/1.0\r\nHost: portcullis-readyz\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        stream
            .read_exact(&mut head)
            .await
            .map_err(|e| e.to_string())?;
        match &head[9..12] {
            b"200" | b"401" => Ok(()),
            other => Err(format!(
                "the registry answered {}",
                String::from_utf8_lossy(other)
            )),
        }
    };
    tokio::time::timeout(Duration::from_secs(2), check)
        .await
        .map_err(|_| "the registry did not answer within 2 s".to_string())?
}

fn text(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", body.len())
        .header("Cache-Control", "no-store")
        .body(body)
        .unwrap_or_default()
}
