use super::parse::parse_upstream;
use super::*;
use crate::cli::devcerts::{self, Kind, Spec};

/// A folder with a development certificate set, and a config text pointing at it.
fn fixture() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    devcerts::write_dev_set(dir.path(), &["localhost", "127.0.0.1"]).unwrap();
    let text = r#"
listen = ["127.0.0.1:5443"]
upstream = "http://127.0.0.1:5000"
auth.allow_unauthenticated = true
[tls]
certificate = "server.crt"
key = "server.key"
"#
    .to_string();
    (dir, text)
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let (dir, text) = fixture();
    let c = Config::from_toml(&text, dir.path()).unwrap();
    assert_eq!(c.timeouts.idle, Duration::from_secs(900));
    assert_eq!(c.timeouts.connect, Duration::from_secs(10));
    assert_eq!(c.grace_period, Duration::from_secs(30));
    assert_eq!(c.tls.min_version, TlsVersion::Tls12);
    assert!(c.tls.http2);
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.trusted_proxies.0.is_empty());
    let crate::config::ServerCert::Files { certificate, .. } = &c.tls.server else {
        panic!("certificate files expected");
    };
    assert_eq!(certificate, &dir.path().join("server.crt"));
    assert_eq!(c.tls.identity().unwrap().chain.len(), 2);
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let (dir, text) = fixture();
    let err =
        Config::from_toml(&format!("{text}\nclient_max_body_size = 0\n"), dir.path()).unwrap_err();
    assert_eq!(err[0].key, "tls.client_max_body_size", "{err:?}");
    assert!(err[0].message.contains("unknown field"), "{err:?}");
}

#[test]
fn type_errors_name_the_dotted_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::from_toml(
        "upstream = \"http://127.0.0.1:5000\"\n\n[timeouts]\nidle = \"15m\"\n",
        dir.path(),
    )
    .unwrap_err();
    assert_eq!(err[0].key, "timeouts.idle", "{err:?}");
    assert!(err[0].message.contains("line 4"), "{err:?}");
    let top = Config::from_toml("upstream = 5\n", dir.path()).unwrap_err();
    assert_eq!(top[0].key, "upstream", "{top:?}");
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
listen = ["localhost"]
upstream = "https://registry:5000"
trusted_proxies = ["10.0.0.0/33"]
[tls]
certificate = "missing.crt"
key = "missing.key"
[timeouts]
idle = 0
"#;
    let problems = Config::from_toml(text, dir.path()).unwrap_err();
    let keys = keys(&problems);
    for key in [
        "listen",
        "upstream",
        "trusted_proxies",
        "tls.certificate",
        "tls.key",
        "timeouts.idle",
    ] {
        assert!(keys.contains(&key), "{key} missing from {problems:#?}");
    }
    let cert = problems
        .iter()
        .find(|p| p.key == "tls.certificate")
        .unwrap();
    assert!(cert.message.contains("missing.crt"), "{cert:?}");
}

#[test]
fn key_of_another_certificate_is_refused() {
    let (dir, text) = fixture();
    let other = devcerts::issue(&Spec::new("other", &["other"], Kind::Server, 30), None).unwrap();
    std::fs::write(dir.path().join("server.key"), other.key_pem()).unwrap();
    let problems = Config::from_toml(&text, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["tls.key"]);
    assert!(
        problems[0].message.contains("does not belong"),
        "{problems:?}"
    );
}

#[test]
fn expired_certificate_is_refused() {
    let (dir, text) = fixture();
    let mut spec = Spec::new("localhost", &["localhost"], Kind::Server, 1);
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let expired = devcerts::issue(&spec, None).unwrap();
    std::fs::write(dir.path().join("server.crt"), expired.cert_pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), expired.key_pem()).unwrap();
    let problems = Config::from_toml(&text, dir.path()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.key == "tls.certificate" && p.message.contains("expired")),
        "{problems:?}"
    );
}

#[test]
fn chain_in_wrong_order_is_refused() {
    let (dir, text) = fixture();
    let pem = std::fs::read_to_string(dir.path().join("server.crt")).unwrap();
    let split =
        pem.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    let (leaf, intermediate) = pem.split_at(split);
    std::fs::write(
        dir.path().join("server.crt"),
        format!("{intermediate}{leaf}"),
    )
    .unwrap();
    let problems = Config::from_toml(&text, dir.path()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("was not issued by")),
        "{problems:?}"
    );
}

#[test]
fn pem_without_certificate_is_explained() {
    let (dir, text) = fixture();
    std::fs::write(dir.path().join("server.crt"), "not a certificate\n").unwrap();
    let problems = Config::from_toml(&text, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["tls.certificate"]);
    assert!(problems[0].message.contains("no PEM"), "{problems:?}");
}

#[test]
fn upstream_forms() {
    assert_eq!(
        parse_upstream(Some("http://127.0.0.1:5000/")).unwrap().addr,
        "127.0.0.1:5000".parse().unwrap()
    );
    assert_eq!(
        parse_upstream(Some("http://127.0.0.1"))
            .unwrap()
            .addr
            .port(),
        80
    );
    assert!(parse_upstream(Some("http://127.0.0.1:5000/v2")).is_err());
    assert!(parse_upstream(Some("127.0.0.1:5000")).is_err());
    assert!(parse_upstream(None).is_err());
}

#[test]
fn relative_paths_resolve_against_config_folder() {
    assert_eq!(
        resolve_path(Path::new("/etc/portcullis"), "certs/a.crt"),
        PathBuf::from("/etc/portcullis/certs/a.crt")
    );
    assert_eq!(
        resolve_path(Path::new("/etc/portcullis"), "/abs/a.crt"),
        PathBuf::from("/abs/a.crt")
    );
}

#[test]
fn no_authentication_at_all_must_be_explicit() {
    let (dir, text) = fixture();
    let closed = text.replace("auth.allow_unauthenticated = true\n", "");
    let problems = Config::from_toml(&closed, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["auth"]);
    assert!(
        problems[0].message.contains("allow_unauthenticated"),
        "{problems:?}"
    );
}

#[test]
fn htpasswd_problems_name_file_and_line() {
    let (dir, text) = fixture();
    let good = format!("alice:{}", bcrypt::hash("x", 4).unwrap());
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("# users\n{good}\nbob:$apr1$x$y\n"),
    )
    .unwrap();
    let with = format!("{text}\n[auth.htpasswd]\npath = \"htpasswd\"\n");
    let problems = Config::from_toml(&with, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["auth.htpasswd.path"]);
    assert!(
        problems[0].message.contains("htpasswd line 3") && problems[0].message.contains("MD5"),
        "{problems:?}"
    );

    std::fs::write(dir.path().join("htpasswd"), format!("{good}\n")).unwrap();
    let c = Config::from_toml(&with, dir.path()).unwrap();
    let h = c.auth.htpasswd.unwrap();
    assert_eq!((h.realm.as_str(), h.db.len()), ("Registry Realm", 1));
}

#[test]
fn client_auth_problems() {
    let (dir, text) = fixture();
    let optional_alone =
        format!("{text}\n[tls.client_auth]\ncas = [\"ca.crt\"]\nmode = \"optional\"\n");
    let problems = Config::from_toml(&optional_alone, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["tls.client_auth.mode"]);

    let missing_ca =
        format!("{text}\n[tls.client_auth]\ncas = [\"nope.pem\"]\ncrls = [\"ca.crt\"]\n");
    let problems = Config::from_toml(&missing_ca, dir.path()).unwrap_err();
    assert_eq!(
        keys(&problems),
        ["tls.client_auth.cas", "tls.client_auth.crls"],
        "{problems:?}"
    );

    let good =
        format!("{text}\n[tls.client_auth]\ncas = [\"ca.crt\"]\nuser_from = \"san-email\"\n");
    let c = Config::from_toml(&good, dir.path()).unwrap();
    let ca = c.tls.client_auth.unwrap();
    assert_eq!(ca.mode, crate::tls::client_auth::ClientAuthMode::Require);
    assert_eq!(ca.user_from, crate::tls::client_auth::UserFrom::SanEmail);
}

#[test]
fn optional_certificates_with_require_all_contradict() {
    let (dir, text) = fixture();
    std::fs::write(dir.path().join("htpasswd"), "").unwrap();
    let both = format!("{text}\n[tls.client_auth]\ncas = [\"ca.crt\"]\nmode = \"optional\"\n[auth.htpasswd]\npath = \"htpasswd\"\n");
    let problems = Config::from_toml(&both, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["auth.require"]);
    let any = both.replace(
        "auth.allow_unauthenticated = true",
        "auth.require = \"any\"",
    );
    assert!(Config::from_toml(&any, dir.path()).is_ok());
}

#[test]
fn token_section_with_trusted_issuers() {
    let (dir, text) = fixture();
    crate::cli::devcerts::write_token_key(dir.path(), "own", 30).unwrap();
    let other = dir.path().join("other");
    crate::cli::devcerts::write_token_key(&other, "other", 30).unwrap();
    let token = format!(
        "{text}\n[auth.token]\nrealm = \"https://r.example/auth/token\"\nservice = \"r.example\"\nkey = \"token.key\"\ncertificate = \"token.crt\"\n[[auth.token.trust]]\nissuer = \"ci\"\ncertificates = \"other/token.crt\"\n"
    );
    let c = Config::from_toml(&token, dir.path()).unwrap();
    let t = c.auth.token.unwrap();
    assert_eq!((t.path.as_str(), t.verifier.keys.len()), ("/auth/token", 2));
    assert_eq!(t.verifier.keys[1].issuer, "ci");

    let bad = token
        .replace("https://r.example/auth/token", "https://r.example/v2/token")
        .replace("other/token.crt", "missing.crt");
    let problems = Config::from_toml(&bad, dir.path()).unwrap_err();
    assert_eq!(
        keys(&problems),
        ["auth.token.realm", "auth.token.trust[1]"],
        "every problem at once: {problems:?}"
    );
    let missing_trust = token.replace("other/token.crt", "missing.crt");
    let problems = Config::from_toml(&missing_trust, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["auth.token.trust[1]"], "{problems:?}");
}

/// Every boot setting a reload cannot apply is named; what reloads is not.
#[test]
fn boot_changes_are_named_key_by_key() {
    let (dir, text) = fixture();
    let hash = bcrypt::hash("secret", 4).unwrap();
    std::fs::write(dir.path().join("users"), format!("alice:{hash}\n")).unwrap();
    let with = |top: &str, htpasswd: &str| {
        let text = format!("{top}\n{text}\n[auth.htpasswd]\npath = \"users\"\n{htpasswd}\n");
        boot::Boot::of(&Config::from_toml(&text, dir.path()).unwrap())
    };
    let base = with("", "");
    assert!(base.changed_keys(&with("", "")).is_empty());
    assert_eq!(base.changed_keys(&with("watch = true", "")), ["watch"]);
    assert_eq!(
        base.changed_keys(&with("", "workers = 3")),
        ["auth.htpasswd.workers"]
    );
    assert_eq!(
        base.changed_keys(&with(
            "trusted_proxies = [\"10.0.0.0/8\"]\nwatch = true",
            ""
        )),
        ["trusted_proxies", "watch"]
    );
    assert!(base.same_tls_shape(&with("", "realm = \"elsewhere\"")));
}

#[test]
fn robots_file_must_exist_parse_and_rules_may_name_robots() {
    let (dir, text) = fixture();
    let text = text.replace("auth.allow_unauthenticated = true\n", "");
    let missing = format!("{text}\n[auth.robots]\npath = \"robots.toml\"\n");
    let problems = Config::from_toml(&missing, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["auth.robots.path"]);
    assert!(
        problems[0].message.contains("portcullis robot add"),
        "{problems:?}"
    );
    let no_path = format!("{text}\n[auth.robots]\n");
    assert_eq!(
        keys(&Config::from_toml(&no_path, dir.path()).unwrap_err()),
        ["auth.robots.path"]
    );
    std::fs::write(dir.path().join("robots.toml"), "[[robots]]\nname = \"x\"\n").unwrap();
    let problems = Config::from_toml(&missing, dir.path()).unwrap_err();
    assert!(problems[0].message.contains("robots.toml"), "{problems:?}");

    std::fs::write(dir.path().join("robots.toml"), "").unwrap();
    let c = Config::from_toml(&missing, dir.path()).unwrap();
    assert!(c.auth.robots.unwrap().db.is_empty());
    let rule =
        "[[acl.rules]]\nrobots = [\"ci-*\"]\nrepositories = [\"builds/*\"]\nactions = [\"push\"]\n";
    let c = Config::from_toml(&format!("{missing}{rule}"), dir.path()).unwrap();
    assert_eq!(c.acl.rules[0].who.robots.len(), 1);
    let bad = rule.replace("ci-*", "${user}-*");
    let problems = Config::from_toml(&format!("{missing}{bad}"), dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["acl.rules[1]"]);
}

#[test]
fn oidc_problems_are_each_named() {
    let (dir, text) = fixture();
    let text = text.replace("auth.allow_unauthenticated = true\n", "");
    let bad = format!(
        "{text}\n[[auth.oidc]]\nname = \"oidc\"\nissuer = \"http://plain.test\"\nalgorithms = [\"HS256\"]\nmax_lifetime = 0\n"
    );
    let problems = Config::from_toml(&bad, dir.path()).unwrap_err();
    let mut found = keys(&problems);
    found.sort();
    assert_eq!(
        found,
        [
            "auth.oidc",
            "auth.oidc[1].algorithms",
            "auth.oidc[1].audience",
            "auth.oidc[1].issuer",
            "auth.oidc[1].max_lifetime",
            "auth.oidc[1].name",
        ],
        "{problems:?}"
    );
    let good = format!(
        "{text}\n[[auth.oidc]]\nname = \"ci\"\nissuer = \"https://ci.test\"\naudience = \"r\"\n"
    );
    let rule = |who: &str, repo: &str| {
        format!("{good}[[acl.rules]]\n{who}\nrepositories = [\"{repo}\"]\nactions = [\"pull\"]\n")
    };
    let c = Config::from_toml(
        &rule(
            "oidc = { issuer = \"ci\", claims = { a = \"b*\" } }",
            "x/${claims.a}",
        ),
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.auth.oidc[0].name, "ci");
    for (who, repo) in [
        ("oidc = { issuer = \"nope\" }", "x/*"),
        ("users = [\"*\"]", "x/${claims.a}"),
        ("oidc = { issuer = \"ci\" }", "x/${claims.}"),
    ] {
        let problems = Config::from_toml(&rule(who, repo), dir.path()).unwrap_err();
        assert_eq!(
            keys(&problems),
            ["acl.rules[1]"],
            "{who} {repo}: {problems:?}"
        );
    }
}
