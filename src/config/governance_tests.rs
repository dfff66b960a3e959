//! `[[events.webhook]]`, `[[acl.immutable]]` and the `overwrite` action, validated.

use super::super::{Config, Problem};
use crate::cli::devcerts;
use crate::events::{Format, Kind};

fn load(extra: &str) -> Result<Config, Vec<Problem>> {
    let dir = tempfile::tempdir().unwrap();
    devcerts::write_dev_set(dir.path(), &["localhost"]).unwrap();
    let text = format!(
        "listen = [\"127.0.0.1:5443\"]\nupstream = \"http://127.0.0.1:5000\"\nauth.allow_unauthenticated = true\n[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n{extra}"
    );
    Config::from_toml(&text, dir.path())
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn webhooks_get_their_defaults_and_every_problem_is_named() {
    let good = load("[[events.webhook]]\nurl = \"https://hooks.example.com/x\"\nsecret = \"sixteen-chars-ok\"\n").unwrap();
    let hook = &good.webhooks[0];
    assert_eq!(
        (
            hook.name.as_str(),
            hook.format,
            hook.queue,
            hook.max_retries
        ),
        ("webhook-1", Format::CloudEvents, 1000, 5)
    );
    assert_eq!(hook.kinds, Kind::ALL.to_vec());
    assert!(
        !format!("{hook:?}").contains("sixteen"),
        "the secret is not in Debug output"
    );
    let bad = load("[[events.webhook]]\nname = \"a b\"\nurl = \"ftp://x\"\nevents = [\"push\", \"pushed\"]\nformat = \"xml\"\nsecret = \"short\"\ntimeout = 0\nqueue = 0\n").unwrap_err();
    assert_eq!(
        keys(&bad),
        [
            "events.webhook[1].name",
            "events.webhook[1].url",
            "events.webhook[1].events",
            "events.webhook[1].format",
            "events.webhook[1].secret",
            "events.webhook[1].timeout",
            "events.webhook[1].queue"
        ],
        "{bad:#?}"
    );
    let twice = load("[[events.webhook]]\nname = \"a\"\nurl = \"http://x\"\n[[events.webhook]]\nname = \"a\"\nurl = \"http://y\"\n").unwrap_err();
    assert_eq!(keys(&twice), ["events.webhook[2].name"]);
}

#[test]
fn immutable_rules_and_the_overwrite_action() {
    let acl = "[acl]\n[[acl.immutable]]\nrepositories = [\"prod/*\"]\ntags = [\"v*\"]\n[[acl.rules]]\nusers = [\"release\"]\nrepositories = [\"prod/*\"]\nactions = [\"push\", \"overwrite\"]\n";
    let config = load(acl).unwrap();
    assert_eq!(config.acl.immutable.len(), 1);
    assert!(config.acl.rules[0].overwrite);
    assert_eq!(
        config.acl.rules[0].actions.len(),
        1,
        "overwrite is not a registry action"
    );
    let star = load(&acl.replace("\"push\", \"overwrite\"", "\"*\"")).unwrap();
    assert!(!star.acl.rules[0].overwrite, "* never implies overwrite");
    let bad = load("[acl]\n[[acl.immutable]]\nrepositories = [\"${user}/*\"]\n[[acl.rules]]\nusers = [\"a\"]\nrepositories = [\"x\"]\nactions = [\"rewrite\"]\n").unwrap_err();
    let messages: Vec<String> = bad
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages
        .iter()
        .any(|m| m.contains("unknown action \"rewrite\"") && m.contains("overwrite")));
    assert!(messages
        .iter()
        .any(|m| m.starts_with("acl.immutable[1]: covers no tag")));
    assert!(messages
        .iter()
        .any(|m| m.starts_with("acl.immutable[1]: repositories")));
    let alone =
        load("[acl]\n[[acl.immutable]]\nrepositories = [\"p/*\"]\ntags = [\"v*\"]\n").unwrap();
    assert!(alone
        .warnings()
        .iter()
        .any(|w| w.contains("every request is refused")));
}

#[test]
fn state_and_limits_are_checked_and_the_password_goes_into_the_url() {
    use crate::auth::limits::Per;
    use crate::store::StateSettings;
    let memory = load("").unwrap();
    assert_eq!(memory.state, StateSettings::Memory);
    let redis = load("[state]\nbackend = \"redis\"\nurl = \"redis://10.0.0.5:6379/0\"\npassword = \"p@ss word\"\n").unwrap();
    let StateSettings::Redis(settings) = &redis.state else {
        panic!("{:?}", redis.state)
    };
    assert_eq!(settings.url, "redis://:p%40ss%20word@10.0.0.5:6379/0");
    assert!(!format!("{settings:?}").contains("p%40ss"), "{settings:?}");
    assert_eq!(
        (settings.prefix.as_str(), settings.timeout.as_millis()),
        ("portcullis:", 200)
    );
    let bad = load("[state]\nbackend = \"redis\"\nurl = \"http://x\"\n").unwrap_err();
    assert_eq!(keys(&bad), ["state.url"]);
    assert_eq!(
        keys(&load("[state]\nbackend = \"etcd\"\n").unwrap_err()),
        ["state.backend"]
    );

    let limits = load("[[limits.pulls]]\nwho = { anonymous = true }\ncount = 100\nwindow = \"6h\"\n[limits]\nmax_concurrent_uploads = 4\n").unwrap().limits;
    assert_eq!(limits.pulls[0].per, Per::Address);
    assert_eq!(
        (limits.pulls[0].count, limits.pulls[0].window.as_secs()),
        (100, 21_600)
    );
    assert_eq!(limits.pulls[0].limit_header(), "100;w=21600");
    assert_eq!(limits.max_concurrent_uploads, Some(4));
    let bad = load(
        "[[limits.pulls]]\nper = \"team\"\nwindow = \"soon\"\n[limits]\nmax_connections = 0\n",
    )
    .unwrap_err();
    let messages: Vec<String> = bad
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("limits.max_connections")),
        "{messages:#?}"
    );
    assert!(messages.iter().any(|m| m.contains("per: \"team\"")));
    assert!(messages.iter().any(|m| m.contains("count is missing")));
    assert!(messages.iter().any(|m| m.contains("window:")));
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("limits.pulls[1].who") && m.contains("says nobody")),
        "{messages:#?}"
    );
}
