//! Several registry replicas: requests spread round-robin over the healthy ones; an active
//! health check (`GET /v2/` answering 200 or 401, every 2 s) takes a dead replica out and
//! brings it back. Replicas must share storage and `http.secret`, so that any of them can
//! continue an upload another one started.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;

use crate::config::Upstream;

/// The replica pool.
pub type Pool = LoadBalancer<RoundRobin>;

/// How often each replica is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Whether the registry answered the health check's anonymous `GET /v2/` with 200 last time,
/// i.e. it has no auth of its own. Until the first check, false.
#[derive(Clone, Default)]
pub struct OpenRegistry(Arc<AtomicBool>);

impl OpenRegistry {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Builds the pool with its health check; run it as a background service. Each check's
/// answer also updates `open`.
pub fn pool(upstreams: &[Upstream], open: &OpenRegistry) -> Result<Pool, String> {
    let mut lb = Pool::try_from_iter(upstreams.iter().map(|u| u.addr))
        .map_err(|e| format!("upstream: {e}"))?;
    let mut check = HttpHealthCheck::new("portcullis-health-check", false);
    let mut req = RequestHeader::build("GET", b"/v2/", None).map_err(|e| e.to_string())?;
    req.insert_header("Host", "portcullis-health-check")
        .map_err(|e| e.to_string())?;
    check.req = req;
    let open = Arc::clone(&open.0);
    check.validator = Some(Box::new(move |response| match response.status.as_u16() {
        200 => {
            open.store(true, Ordering::Relaxed);
            Ok(())
        }
        401 => {
            open.store(false, Ordering::Relaxed);
            Ok(())
        }
        other => {
            pingora::Error::e_explain(pingora::ErrorType::HTTPStatus(other), "registry not ready")
        }
    }));
    lb.set_health_check(Box::new(check));
    lb.health_check_frequency = Some(CHECK_EVERY);
    lb.parallel_health_check = true;
    Ok(lb)
}

/// A healthy replica, or `fallback` when none is (then the request fails as it would
/// without a pool, with a 502).
pub fn pick(pool: &Pool, fallback: SocketAddr) -> SocketAddr {
    pool.select(b"", 256)
        .and_then(|b| b.addr.as_inet().copied())
        .unwrap_or(fallback)
}

/// Whether the last health check found at least one replica up.
pub fn any_healthy(pool: &Pool) -> bool {
    pool.select(b"", 256).is_some()
}

/// Each replica and whether its last health check passed.
pub fn states(pool: &Pool) -> Vec<(SocketAddr, bool)> {
    let backends = pool.backends();
    backends
        .get_backend()
        .iter()
        .filter_map(|b| Some((*b.addr.as_inet()?, backends.ready(b))))
        .collect()
}
