//! People from a real OpenLDAP directory (Debian's slapd, started by the test with TLS from
//! a test CA): skopeo pushes with the directory password, directory groups decide who may
//! push, filter metacharacters in user names stay literal, an empty password never reaches
//! the directory, a stopped directory gives 503 and recovers, the cache makes a push one
//! bind, and the token service grants by directory group.

use crate::common;

use std::process::Command;

use common::slapd::{dn_of, Slapd};
use common::tokens::{basic, payload, post_form, Setup, SERVICE};
use common::{skopeo, Stack};

/// Directory pushers push and pull `team-a/*`; everyone else reads it.
const RULES: &str = r#"
[[acl.rules]]
comment = "directory pushers"
groups = ["ldap:pushers"]
repositories = ["team-a/*"]
actions = ["pull", "push"]
[[acl.rules]]
comment = "everyone reads team-a"
users = ["*"]
repositories = ["team-a/*"]
actions = ["pull"]
"#;

fn ldap_stack(slapd: &Slapd, extra: &str) -> Stack {
    Stack::start(&format!("{}\n{extra}\n{RULES}", slapd.config("")))
}

fn status(stack: &Stack, creds: &str) -> u16 {
    stack.request("GET", "/v2/", &[&basic(creds)]).status
}

/// `POST /v2/team-a/app/blobs/uploads/` as `creds`: 202 when they may push.
fn start_upload(stack: &Stack, creds: &str) -> u16 {
    stack
        .request(
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            &[&basic(creds), "Content-Length: 0"],
        )
        .status
}

fn metrics(stack: &Stack) -> String {
    let (status, text) = stack.gw.admin_get("/metrics");
    assert_eq!(status, 200);
    text
}

#[test]
fn skopeo_pushes_with_a_directory_password_and_groups_decide_who_pushes() {
    let slapd = Slapd::start();
    let stack = ldap_stack(&slapd, "");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let layers: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            common::oci::tar_with_file(
                &format!("layer-{i}"),
                &common::oci::random_bytes(64 * 1024, i),
            )
        })
        .collect();
    let image = common::oci::write_layout(&layout, "v1", &layers);
    skopeo::round_trip(
        &stack.gw.host(),
        &stack.pki.client_cert_dir(),
        &["alice:alice-dir-pw"],
        &layout,
        &image,
        work.path(),
    );
    assert_eq!(image.layers.len(), 8);
    assert_eq!(
        slapd.binds_as(&dn_of("alice")),
        1,
        "an 8-layer push, inspect and pull of {} cost one bind (the cache)",
        image.manifest.digest
    );

    let certs = stack.pki.client_cert_dir();
    let certs = certs.to_str().unwrap();
    let remote = format!("docker://{}/team-a/app:v1", stack.gw.host());
    let raw = skopeo::skopeo(
        work.path(),
        &[
            "inspect",
            "--raw",
            "--creds",
            "bob:bob-dir-pw",
            "--cert-dir",
            certs,
            &remote,
        ],
    );
    assert_eq!(
        common::oci::digest(&raw),
        image.manifest.digest,
        "bob (not a pusher) pulls"
    );
    let bob_layout = work.path().join("bob-layout");
    common::oci::write_layout(
        &bob_layout,
        "v1",
        &[common::oci::tar_with_file("b", b"bob's")],
    );
    let src = format!("oci:{}:v1", bob_layout.display());
    let refused = skopeo::skopeo_fails(
        work.path(),
        &[
            "copy",
            "--dest-creds",
            "bob:bob-dir-pw",
            "--dest-cert-dir",
            certs,
            &src,
            &format!("docker://{}/team-a/app:bob", stack.gw.host()),
        ],
    );
    assert!(refused.contains("denied"), "{refused}");
    assert_eq!(
        start_upload(&stack, "carol:carol-dir-pw"),
        202,
        "carol is a pusher too"
    );

    let wrong = stack.request("GET", "/v2/", &[&basic("alice:not-her-password")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .header("WWW-Authenticate")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(
        wrong.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
    assert_eq!(status(&stack, "nobody:alice-dir-pw"), 401, "unknown user");

    let text = metrics(&stack);
    for line in [
        "portcullis_auth_total{method=\"ldap\",outcome=\"ok\"}",
        "portcullis_auth_total{method=\"ldap\",outcome=\"denied\"}",
        "# TYPE portcullis_ldap_latency_seconds histogram",
        "portcullis_ldap_pool_errors_total{reason=\"connect\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let log = stack.gw.proc.log_text();
    for secret in [
        "alice-dir-pw",
        "bob-dir-pw",
        "not-her-password",
        common::slapd::READER_PASSWORD,
    ] {
        assert!(!log.contains(secret), "a password in the log:\n{log}");
    }
}

#[test]
fn filter_metacharacters_in_user_names_cannot_log_in_as_someone_else() {
    let slapd = Slapd::start();
    let stack = ldap_stack(&slapd, "[auth.throttle]\nmax_failures = 0\n");
    for user in [
        "*",
        "al*",
        "alice)(uid=*",
        "*)(uid=*))(|(uid=*",
        "x)(|(uid=alice)",
        "alice\\00",
        "alice\\2a",
        "*)(objectClass=*",
    ] {
        assert_eq!(
            status(&stack, &format!("{user}:alice-dir-pw")),
            401,
            "{user}"
        );
    }
    assert_eq!(
        slapd.binds_as(&dn_of("alice")),
        0,
        "no name above found alice's entry"
    );
    assert_eq!(
        status(&stack, "we*ird:weird-dir-pw"),
        200,
        "a * in a real name is just a character"
    );
    assert_eq!(status(&stack, "we*:weird-dir-pw"), 401);
    assert_eq!(status(&stack, "*:weird-dir-pw"), 401);
    assert_eq!(slapd.binds_as(&dn_of("we*ird")), 1);
}

#[test]
fn an_empty_password_is_refused_without_a_bind() {
    let slapd = Slapd::start();
    let stack = ldap_stack(&slapd, "");
    let r = stack.request("GET", "/v2/", &[&basic("alice:")]);
    assert_eq!(r.status, 401);
    assert!(r.header("WWW-Authenticate").is_some());
    assert_eq!(
        slapd.binds(),
        0,
        "not even the service account was needed:\n{}",
        slapd.log_text()
    );
    assert!(stack.gw.proc.log_text().contains("empty password"));
    assert_eq!(status(&stack, "alice:alice-dir-pw"), 200);
    assert_eq!(slapd.binds_as(&dn_of("alice")), 1);
}

#[test]
fn a_stopped_directory_gives_503_not_401_and_recovers() {
    let mut slapd = Slapd::start();
    let stack = ldap_stack(
        &slapd,
        "[auth.cache]\nttl = 0\n[auth.throttle]\nmax_failures = 3\n",
    );
    assert_eq!(status(&stack, "alice:alice-dir-pw"), 200);
    slapd.stop();
    for _ in 0..5 {
        let r = stack.request("GET", "/v2/", &[&basic("alice:alice-dir-pw")]);
        assert_eq!(r.status, 503, "{}", r.body_text());
        assert_eq!(r.json()["errors"][0]["code"], "UNAVAILABLE");
        assert!(r.body_text().contains("directory"), "{}", r.body_text());
        assert_eq!(
            r.header("Docker-Distribution-API-Version"),
            Some("registry/2.0")
        );
        assert_eq!(r.header("Retry-After"), Some("5"));
    }
    let text = metrics(&stack);
    assert!(
        text.contains("portcullis_auth_total{method=\"ldap\",outcome=\"unavailable\"} 5"),
        "{text}"
    );
    assert!(
        !text.contains("portcullis_ldap_pool_errors_total{reason=\"connect\"} 0"),
        "{text}"
    );
    assert!(
        stack.request("GET", "/", &[]).status == 200,
        "the gateway keeps serving"
    );

    slapd.run();
    assert_eq!(
        status(&stack, "alice:alice-dir-pw"),
        200,
        "five 503s were not counted as failed logins"
    );
    for guess in ["wrong-1", "wrong-2", "wrong-3"] {
        assert_eq!(status(&stack, &format!("bob:{guess}")), 401);
    }
    assert_eq!(
        status(&stack, "bob:wrong-4"),
        429,
        "wrong directory passwords are throttled"
    );
}

#[test]
fn a_hung_directory_is_bounded_by_its_timeout() {
    let slapd = Slapd::start();
    let stack = Stack::start(&format!(
        "{}
[auth.cache]
ttl = 0
{RULES}",
        slapd.config("").replace("timeout = 2", "timeout = 1")
    ));
    assert_eq!(status(&stack, "alice:alice-dir-pw"), 200);
    slapd.signal("STOP");
    let hung = stack.request("GET", "/v2/", &[&basic("alice:alice-dir-pw")]);
    slapd.signal("CONT");
    assert_eq!(hung.status, 503, "{}", hung.body_text());
    assert_eq!(hung.json()["errors"][0]["code"], "UNAVAILABLE");
    assert!(
        stack
            .gw
            .proc
            .log_text()
            .contains("LDAP directory is unavailable"),
        "{}",
        stack.gw.proc.log_text()
    );
    assert_eq!(
        status(&stack, "alice:alice-dir-pw"),
        200,
        "answers again once it is"
    );
}

#[test]
fn htpasswd_is_tried_first_and_start_tls_works() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let line = portcullis::auth::htpasswd::hash_line("alice", "break-glass", 4).unwrap();
    std::fs::write(&htpasswd, format!("{line}\n")).unwrap();
    let ldap = slapd
        .config("start_tls = true")
        .replace(&slapd.url(), &slapd.start_tls_url());
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n{ldap}\n{RULES}",
        htpasswd.display()
    ));
    assert_eq!(status(&stack, "alice:break-glass"), 200);
    assert_eq!(
        status(&stack, "alice:alice-dir-pw"),
        401,
        "the htpasswd file decides for its users"
    );
    assert_eq!(slapd.binds_as(&dn_of("alice")), 0);
    assert_eq!(
        status(&stack, "carol:carol-dir-pw"),
        200,
        "others come from the directory"
    );
    assert_eq!(start_upload(&stack, "carol:carol-dir-pw"), 202);
    assert_eq!(start_upload(&stack, "bob:bob-dir-pw"), 403);
}

#[test]
fn member_of_attributes_give_groups_and_explain_looks_them_up() {
    let slapd = Slapd::start();
    let ldap = slapd
        .config("member_of_attribute = \"memberOf\"")
        .replace("group_base_dn", "# group_base_dn");
    let stack = Stack::start(&format!("{ldap}\n{RULES}"));
    assert_eq!(start_upload(&stack, "carol:carol-dir-pw"), 202);
    assert_eq!(start_upload(&stack, "bob:bob-dir-pw"), 403);

    let config = stack.gw.dir.path().join("portcullis.toml");
    let explain = |user: &str| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["explain", "--config"])
            .arg(&config)
            .args([
                "--user",
                user,
                "--request",
                "PUT /v2/team-a/app/manifests/1",
            ])
            .output()
            .unwrap()
    };
    let carol = explain("carol");
    let text = String::from_utf8_lossy(&carol.stdout);
    assert!(
        carol.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&carol.stderr)
    );
    assert!(
        text.contains("directory: carol is in ldap:pushers"),
        "{text}"
    );
    assert!(
        text.contains("allowed by rule 1 (directory pushers)"),
        "{text}"
    );
    let bob = explain("bob");
    let text = String::from_utf8_lossy(&bob.stdout);
    assert_eq!(bob.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ldap:readers") && text.contains("denied by rule 2"),
        "{text}"
    );
    let nobody = explain("nobody");
    assert!(String::from_utf8_lossy(&nobody.stdout).contains("not in the directory"));
}

#[test]
fn the_token_service_grants_by_directory_group_and_refresh_asks_the_directory() {
    let mut slapd = Slapd::start();
    let setup = Setup::new();
    let token = format!(
        "[auth.token]\nrealm = \"https://localhost:{{PORT}}/auth/token\"\nservice = \"{SERVICE}\"\nkey = \"{}\"\ncertificate = \"{}\"\n",
        setup.key.display(),
        setup.cert.display()
    );
    let stack = Stack::start(&format!("{}\n{token}\n{RULES}", slapd.config("")));
    let grant = |user: &str, password: &str| {
        post_form(&stack, &format!("grant_type=password&username={user}&password={password}&client_id=test&access_type=offline&service={SERVICE}&scope=repository%3Ateam-a%2Fapp%3Apush%2Cpull"))
    };
    let carol = grant("carol", "carol-dir-pw");
    assert_eq!(carol.status, 200, "{}", carol.body_text());
    assert_eq!(carol.json()["scope"], "repository:team-a/app:pull,push");
    let bob = grant("bob", "bob-dir-pw");
    assert_eq!(bob.json()["scope"], "repository:team-a/app:pull");
    assert_eq!(grant("bob", "wrong").status, 401);

    let refresh = carol.json()["refresh_token"].as_str().unwrap().to_string();
    let again = |stack: &Stack| {
        post_form(stack, &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=test&service={SERVICE}&scope=repository%3Ateam-a%2Fapp%3Apush"))
    };
    let r = again(&stack);
    assert_eq!(r.status, 200, "{}", r.body_text());
    let access = payload(r.json()["access_token"].as_str().unwrap());
    assert_eq!(access["access"][0]["actions"][0], "push", "{access}");
    slapd.stop();
    assert_eq!(again(&stack).status, 503, "the directory cannot be asked");
    slapd.run();
    assert_eq!(again(&stack).status, 200);
}

#[test]
fn users_are_known_by_the_directorys_spelling_of_their_name() {
    let slapd = Slapd::start();
    let carol_reads = "[[acl.rules]]\ncomment = \"carol only reads\"\nusers = [\"carol\"]\nrepositories = [\"team-a/*\"]\nactions = [\"pull\"]\n";
    let stack = Stack::start(&format!("{}\n{carol_reads}{RULES}", slapd.config("")));
    assert_eq!(start_upload(&stack, "carol:carol-dir-pw"), 403);
    for spelling in ["CAROL", "Carol", " carol"] {
        let creds = format!("{spelling}:carol-dir-pw");
        assert_eq!(
            status(&stack, &creds),
            200,
            "the directory matches {spelling:?}"
        );
        assert_eq!(
            start_upload(&stack, &creds),
            403,
            "{spelling:?} is carol: the rule for carol applies"
        );
    }
    let log = stack.gw.proc.log_text();
    assert!(!log.contains("user=CAROL"), "{log}");
}
