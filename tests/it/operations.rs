//! Operating Portcullis: the admin listener's health, readiness and metrics, and the audit log.

use crate::common;

use std::collections::HashMap;

use base64::Engine;
use common::{skopeo, Stack};

/// Parses Prometheus text: every sample line must be `name{labels} value`.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            assert!(
                comment.starts_with(" HELP ") || comment.starts_with(" TYPE "),
                "bad comment {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "bad name {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels {line:?}");
        }
        out.insert(series.to_string(), value);
    }
    out
}

fn metric(stack: &Stack) -> HashMap<String, f64> {
    let (status, text) = stack.gw.admin_get("/metrics");
    assert_eq!(status, 200);
    samples(&text)
}

#[test]
fn health_readiness_and_metrics_follow_the_traffic() {
    let mut stack = Stack::start("");
    assert_eq!(stack.gw.admin_get("/healthz").0, 200);
    assert_eq!(stack.gw.admin_get("/readyz").0, 200);
    let before = metric(&stack);
    assert_eq!(
        before.get("portcullis_build_info{version=\"0.1.0\"}"),
        Some(&1.0)
    );
    let expiry = before
        .iter()
        .find(|(k, _)| k.starts_with("portcullis_certificate_expiry_seconds"))
        .map(|(_, v)| *v)
        .unwrap();
    assert!(expiry > 86_400.0 * 800.0, "{expiry}");

    for _ in 0..3 {
        assert_eq!(
            stack
                .request("GET", "/v2/team/app/manifests/v1", &[])
                .status,
            404
        );
    }
    let after = metric(&stack);
    let key = "portcullis_requests_total{method=\"GET\",status=\"404\",route=\"manifest\"}";
    assert_eq!(
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0),
        3.0
    );
    assert!(
        after["portcullis_body_bytes_total{direction=\"out\"}"]
            > before["portcullis_body_bytes_total{direction=\"out\"}"]
    );
    assert!(after["portcullis_upstream_latency_seconds_count"] >= 3.0);
    assert_eq!(
        after
            .get("portcullis_auth_total{method=\"none\",outcome=\"ok\"}")
            .copied()
            .unwrap_or(0.0),
        3.0
    );

    stack.registry.stop();
    let (status, body) = stack.gw.admin_get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        stack.gw.admin_get("/healthz").0,
        200,
        "alive, just not ready"
    );
}

#[test]
fn the_audit_log_records_pushes_and_refusals() {
    let users = tempfile::tempdir().unwrap();
    let htpasswd = users.path().join("htpasswd");
    common::write_htpasswd(&htpasswd, &["alice:wonderland", "bob:builder"]);
    let audit = users.path().join("audit.log");
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n[audit]\npath = \"{}\"\n[[acl.rules]]\nusers = [\"alice\"]\nrepositories = [\"team-a/*\"]\nactions = [\"*\"]\n",
        htpasswd.display(),
        audit.display()
    ));
    let image = skopeo::round_trip_content(
        &stack.gw.host(),
        &stack.pki.client_cert_dir(),
        &["alice:wonderland"],
        b"audited\n",
    );
    let bob = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bob:builder")
    );
    assert_eq!(
        stack
            .request(
                "DELETE",
                &format!("/v2/team-a/app/manifests/{}", image.manifest.digest),
                &[&bob]
            )
            .status,
        403
    );

    let events: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let push = events
        .iter()
        .find(|e| e["event"] == "push")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(push["repository"], "team-a/app");
    assert_eq!(push["reference"], "v1");
    assert_eq!(push["digest"], image.manifest.digest.as_str());
    assert_eq!(push["user"], "alice");
    assert_eq!(push["client"], "127.0.0.1");
    assert!(push["time"].as_str().unwrap().ends_with('Z'));
    let denied = events
        .iter()
        .find(|e| e["event"] == "denied")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(denied["user"], "bob");
    assert_eq!(
        (
            denied["method"].as_str(),
            denied["status"].as_u64(),
            denied["repository"].as_str()
        ),
        (Some("DELETE"), Some(403), Some("team-a/app"))
    );
    assert!(!std::fs::read_to_string(&audit)
        .unwrap()
        .contains("wonderland"));
}
