//! Robot accounts end to end: `portcullis robot add|list|remove`, skopeo pushing and
//! pulling as `robot$NAME` through the real registry, expiry, revocation while a client
//! holds tokens, and a robots file that never holds a secret.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::tokens::{basic, post_form, Setup, SERVICE};
use common::{skopeo, Stack};

fn robot(file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("robot")
        .args(args)
        .arg("--file")
        .arg(file)
        .output()
        .unwrap()
}

/// `robot add NAME ...`; the secret it printed.
fn add(file: &Path, name: &str, extra: &[&str]) -> String {
    let out = robot(file, &[&["add", name], extra].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("pcr_"), "{secret}");
    secret
}

/// Robots only, no htpasswd: `ci-*` robots push and pull `team-a/*`.
const ROBOT_RULES: &str = r#"
[[acl.rules]]
comment = "CI robots build team-a"
robots = ["ci-*"]
repositories = ["team-a/*"]
actions = ["pull", "push"]
"#;

/// Robots from `dir`/robots.toml, the audit log in `dir`/audit.log.
fn robot_stack(dir: &Path) -> Stack {
    Stack::start(&format!(
        "[auth.robots]\npath = \"{}\"\n[audit]\npath = \"{}\"\n{ROBOT_RULES}",
        dir.join("robots.toml").display(),
        dir.join("audit.log").display()
    ))
}

#[test]
fn the_cli_adds_lists_and_removes_robots_and_the_file_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.toml");
    let secret = add(
        &file,
        "ci-build",
        &["--description", "nightly builds", "--expires", "90d"],
    );
    let other = add(&file, "deploy", &[]);
    assert_ne!(secret, other);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains(&secret[4..]),
        "{text}"
    );
    assert!(text.contains("hmac-sha256:"), "{text}");

    let list = String::from_utf8(robot(&file, &["list"]).stdout).unwrap();
    let line = list.lines().find(|l| l.starts_with("ci-build")).unwrap();
    assert!(line.contains("nightly builds"), "{list}");
    let times = line.split_whitespace().filter(|w| w.ends_with('Z')).count();
    assert_eq!(times, 2, "created and expiry times: {list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("deploy") && l.contains("never")),
        "{list}"
    );

    let again = robot(&file, &["add", "ci-build"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    for bad in [&["add", "Bad Name"][..], &["add", "x", "--expires", "soon"]] {
        let out = robot(&file, bad);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(out.stdout.is_empty(), "no secret printed for {bad:?}");
    }

    assert!(robot(&file, &["remove", "ci-build"]).status.success());
    let list = String::from_utf8(robot(&file, &["list"]).stdout).unwrap();
    assert!(!list.contains("ci-build"), "{list}");
    let gone = robot(&file, &["remove", "ci-build"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no robot \"ci-build\""));
}

#[test]
fn skopeo_pushes_and_pulls_as_a_robot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.toml");
    let secret = add(&file, "ci-build", &[]);
    let deploy = add(&file, "deploy", &[]);
    let stack = robot_stack(dir.path());
    let creds = format!("robot$ci-build:{secret}");
    let image = skopeo::round_trip_content(
        &stack.gw.host(),
        &stack.pki.client_cert_dir(),
        &[&creds],
        b"robot layer",
    );
    assert!(!image.layers.is_empty());

    let wrong = stack.request("GET", "/v2/", &[&basic("robot$ci-build:pcr_wrong")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    let not_in_rules = stack.request(
        "GET",
        "/v2/team-a/app/tags/list",
        &[&basic(&format!("robot$deploy:{deploy}"))],
    );
    assert_eq!(not_in_rules.status, 403, "{}", not_in_rules.body_text());
    let as_user = stack.request("GET", "/v2/", &[&basic(&format!("ci-build:{secret}"))]);
    assert_eq!(as_user.status, 401, "a robot is only robot$NAME");

    let (_, metrics) = stack.gw.admin_get("/metrics");
    assert!(
        metrics.contains("portcullis_auth_total{method=\"robot\",outcome=\"ok\"}"),
        "{metrics}"
    );
    let log = stack.gw.proc.log_text();
    assert!(
        log.contains("user=robot$ci-build") || log.contains("\"user\":\"robot$ci-build\""),
        "{log}"
    );
    assert!(
        !log.contains(&secret[4..]) && !log.contains(&deploy[4..]),
        "a secret reached the log"
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let push = events
        .iter()
        .find(|e| e["event"] == "push")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(push["user"], "robot$ci-build");
    let denied = events
        .iter()
        .find(|e| e["event"] == "denied" && e["status"] == 403)
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(denied["user"], "robot$deploy");
    assert!(!audit.contains(&secret[4..]) && !audit.contains(&deploy[4..]));
}

#[test]
fn an_expired_robot_is_refused_with_the_reason_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("robots.toml");
    let secret = add(&file, "ci-short", &["--expires", "1s"]);
    let stack = robot_stack(dir.path());
    std::thread::sleep(Duration::from_millis(1100));
    let r = stack.request(
        "GET",
        "/v2/",
        &[&basic(&format!("robot$ci-short:{secret}"))],
    );
    assert_eq!(r.status, 401, "{}", r.body_text());
    let log = stack.gw.proc.log_text();
    assert!(log.contains("robot expired at"), "{log}");
}

#[test]
fn a_removed_robot_gets_no_more_tokens() {
    let setup = Setup::new();
    let file = setup.dir.path().join("robots.toml");
    let secret = add(&file, "ci-build", &[]);
    let stack = Stack::start(&format!(
        "{}\n[auth.robots]\npath = \"{}\"\n{ROBOT_RULES}",
        setup.config(""),
        file.display()
    ));
    let form = format!(
        "grant_type=password&username=robot%24ci-build&password={secret}&service={SERVICE}&access_type=offline&scope=repository%3Ateam-a%2Fapp%3Apull%2Cpush"
    );
    let granted = post_form(&stack, &form);
    assert_eq!(granted.status, 200, "{}", granted.body_text());
    let body = granted.json();
    assert_eq!(body["scope"], "repository:team-a/app:pull,push");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let refresh_form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&service={SERVICE}&scope=repository%3Ateam-a%2Fapp%3Apull"
    );
    assert_eq!(post_form(&stack, &refresh_form).status, 200);

    assert!(robot(&file, &["remove", "ci-build"]).status.success());
    std::thread::sleep(Duration::from_millis(1100));
    let refreshed = post_form(&stack, &refresh_form);
    assert_eq!(refreshed.status, 400, "{}", refreshed.body_text());
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    assert_eq!(post_form(&stack, &form).status, 401);
    let get = stack.request(
        "GET",
        &format!("/auth/token?service={SERVICE}&scope=repository:team-a/app:pull"),
        &[&basic(&format!("robot$ci-build:{secret}"))],
    );
    assert_eq!(get.status, 401);
}
