//! Several registry replicas over one storage folder behind Portcullis: traffic keeps
//! flowing while one is killed and after it comes back; `/readyz` and the metrics follow.

use crate::common;

use std::time::Duration;

use common::{oci, skopeo, Gateway, Pki, Registry};

fn backend_up(gw: &Gateway, registry: &Registry) -> Option<f64> {
    let (_, text) = gw.admin_get("/metrics");
    let needle = format!(
        "portcullis_backend_up{{backend=\"127.0.0.1:{}\"}} ",
        registry.port
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map(|v| v.parse().unwrap())
}

/// Waits (up to 15 s, the health check runs every 2 s) for a replica's health gauge.
fn wait_backend(gw: &Gateway, registry: &Registry, up: bool) {
    for _ in 0..150 {
        if backend_up(gw, registry) == Some(if up { 1.0 } else { 0.0 }) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "replica {} never reported up={up}: {:?}",
        registry.port,
        backend_up(gw, registry)
    );
}

fn push_and_pull(gw: &Gateway, pki: &Pki, seed: u64) {
    skopeo::round_trip_content(
        &gw.host(),
        &pki.client_cert_dir(),
        &[],
        &oci::random_bytes(2 << 20, seed),
    );
}

#[test]
fn pushes_and_pulls_survive_a_replica_going_down_and_coming_back() {
    let storage = tempfile::tempdir().unwrap();
    let mut first = Registry::start_replica(storage.path(), "one-shared-secret");
    let second = Registry::start_replica(storage.path(), "one-shared-secret");
    let pki = Pki::new();
    let gw = Gateway::start_upstreams(&[first.url(), second.url()], &pki, "");
    wait_backend(&gw, &first, true);
    wait_backend(&gw, &second, true);
    push_and_pull(&gw, &pki, 1);
    let log = |r: &Registry| r.proc.log_text().matches("response completed").count();
    assert!(
        log(&first) > 0 && log(&second) > 0,
        "requests were spread over both replicas"
    );

    first.stop();
    wait_backend(&gw, &first, false);
    assert_eq!(
        gw.admin_get("/readyz").0,
        200,
        "ready while one replica answers"
    );
    for seed in 2..4 {
        push_and_pull(&gw, &pki, seed);
    }

    first.restart();
    wait_backend(&gw, &first, true);
    push_and_pull(&gw, &pki, 5);
    assert!(
        first.proc.log_text().contains("response completed"),
        "the restarted replica serves again"
    );
}
