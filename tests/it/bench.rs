//! The benchmark cannot rot: `bench/run --quick` runs end to end (release build, registry,
//! both gateways, every measurement) and writes its report, raw numbers and chart. No timing
//! is asserted; only that every measurement produced a number and the outputs are whole.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than a cold release build plus installing oha on a 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30 * 60);

/// (group, metric, contenders) every quick run must record.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    ("get", "h1_mibs", ALL),
    ("get", "h2_mibs", GATEWAYS),
    ("get", "h1_cpu_s_per_gib", GATEWAYS),
    ("get", "h1_peak_rss_mib", GATEWAYS),
    ("par", "par_mibs", ALL),
    ("par", "slowest_s", ALL),
    ("par", "par_cpu_s_per_gib", GATEWAYS),
    ("par", "par_rss_growth_mib", GATEWAYS),
    ("small_blobs", "layers_per_s", ALL),
    ("upload", "put_mibs", ALL),
    ("upload", "put_h2_mibs", GATEWAYS),
    ("upload", "patch_mibs", ALL),
    ("upload", "put_cpu_s_per_gib", GATEWAYS),
    (
        "small",
        "rps",
        &[
            "portcullis",
            "nginx",
            "caddy",
            "haproxy",
            "portcullis-auth-off",
            "portcullis-redis",
            "registry-direct",
        ],
    ),
    ("small", "head_rps", ALL),
    ("small", "head_pinned_rps", ALL),
    ("small", "p99_ms", GATEWAYS),
    ("small", "pull_rps", &["portcullis", "portcullis-redis"]),
    (
        "small",
        "pull_redis_calls_per_request",
        &["portcullis-redis"],
    ),
    ("small", "head_redis_calls", &["portcullis-redis"]),
    ("tls", "conn_per_s", GATEWAYS),
    ("tls", "resumed_per_s", GATEWAYS),
    ("tls", "new_cpu_ms_per_conn", GATEWAYS),
    ("mem", "conns_mib", GATEWAYS),
    ("mem", "start_mib", GATEWAYS),
    ("limit", "tls_sender_cpu_s_per_gib", &["bare"]),
    ("limit", "tcp_receiver_cpu_s_per_gib", &["bare"]),
];

/// The gateways measured side by side, and with them the registry without a gateway.
const GATEWAYS: &[&str] = &["portcullis", "nginx", "caddy", "haproxy"];
const ALL: &[&str] = &["portcullis", "nginx", "caddy", "haproxy", "registry-direct"];

/// Drops what `cargo test` adds to the environment (CARGO_PKG_*, CARGO_MANIFEST_DIR, the
/// target folder in LD_LIBRARY_PATH, ...): build scripts watch some of these, and bench/run's
/// own `cargo build --release` would otherwise rebuild half the tree, now and again after.
fn without_cargo_test_env(command: &mut Command) {
    for (key, value) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            command.env_remove(&key);
        }
        if key == "LD_LIBRARY_PATH" {
            let kept: Vec<_> = std::env::split_paths(&value)
                .filter(|p| !p.starts_with(env!("CARGO_MANIFEST_DIR")))
                .collect();
            match std::env::join_paths(kept) {
                Ok(paths) if !paths.is_empty() => command.env(&key, paths),
                _ => command.env_remove(&key),
            };
        }
    }
}

#[test]
fn quick_benchmark_measures_everything_and_writes_report_and_chart() {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new("bash");
    command
        .args(["bench/run", "--quick"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BENCH_OUT", out.path());
    without_cargo_test_env(&mut command);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash bench/run");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().ok();
            panic!("bench/run --quick still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "bench/run --quick failed:\n{log}");

    let tsv = std::fs::read_to_string(out.path().join("latest.tsv")).unwrap();
    let mut seen = BTreeSet::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "{line}");
        let value: f64 = cols[4].parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(value.is_finite() && value >= 0.0, "{line}");
        seen.insert((
            cols[0].to_string(),
            cols[1].to_string(),
            cols[2].to_string(),
        ));
    }
    for (group, metric, contenders) in EXPECTED {
        for contender in *contenders {
            let key = (group.to_string(), metric.to_string(), contender.to_string());
            assert!(seen.contains(&key), "no {group}/{metric} for {contender}");
        }
    }

    let report = std::fs::read_to_string(out.path().join("latest.md")).unwrap();
    assert!(report.contains("## Targets"), "{report}");
    assert!(
        report.contains("2 CPUs") || report.contains(" CPUs, "),
        "machine line"
    );
    let target_rows = report
        .lines()
        .skip_while(|l| !l.starts_with("## Targets"))
        .take_while(|l| !l.starts_with("## a."))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| target"))
        .collect::<Vec<_>>();
    assert!(target_rows.len() >= 12, "{target_rows:?}");
    for row in &target_rows {
        assert!(
            !row.ends_with("| n/a |"),
            "a target without a measurement: {row}"
        );
    }

    let png = std::fs::read(out.path().join("latest.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "chart suspiciously small: {} bytes",
        png.len()
    );
    let env = std::fs::read_to_string(out.path().join("latest.env")).unwrap();
    assert!(env.lines().any(|l| l.starts_with("NPROC=")), "{env}");
    let caddy = std::fs::read_to_string(out.path().join("caddy.json")).unwrap();
    assert!(
        caddy.contains("\"hash_cache\"") && caddy.contains("http_basic"),
        "{caddy}"
    );
    let haproxy = std::fs::read_to_string(out.path().join("haproxy.cfg")).unwrap();
    assert!(
        haproxy.contains("http-request auth") && haproxy.contains("userlist"),
        "{haproxy}"
    );
    let nginx = std::fs::read_to_string(out.path().join("nginx.conf")).unwrap();
    assert!(
        nginx.contains("proxy_request_buffering off;") && nginx.contains("auth_basic_user_file")
    );
}
