use super::super::{Config, Problem};
use crate::auth::ldap::GroupLookup;
use crate::cli::devcerts;

/// A folder with development certificates (their `ca.crt` stands for the directory's CA)
/// and a config whose `[auth.ldap]` table is `ldap`.
fn config(ldap: &str) -> (tempfile::TempDir, Result<Config, Vec<Problem>>) {
    let dir = tempfile::tempdir().unwrap();
    devcerts::write_dev_set(dir.path(), &["localhost"]).unwrap();
    std::fs::write(dir.path().join("bind.pw"), "s3cret\n").unwrap();
    let text = format!(
        "listen = [\"127.0.0.1:5443\"]\nupstream = \"http://127.0.0.1:5000\"\n[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n[auth.ldap]\n{ldap}\n[acl]\n[[acl.rules]]\ngroups = [\"ldap:pushers\"]\nrepositories = [\"*\"]\nactions = [\"push\", \"pull\"]\n"
    );
    let result = Config::from_toml(&text, dir.path());
    (dir, result)
}

fn keys(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| p.key.clone()).collect()
}

const GOOD: &str = "url = \"ldaps://localhost:636\"\nca = \"ca.crt\"\nbind_dn = \"cn=reader,dc=test\"\nbind_password_file = \"bind.pw\"\nbase_dn = \"ou=people,dc=test\"\ngroup_base_dn = \"ou=groups,dc=test\"";

#[test]
fn a_good_directory_gets_its_defaults() {
    let (_dir, config) = config(GOOD);
    let ldap = config.unwrap().auth.ldap.unwrap();
    assert_eq!(
        ldap.bind_password.expose(),
        "s3cret",
        "the file's newline is not part of it"
    );
    assert_eq!(format!("{:?}", ldap.bind_password), "<redacted>");
    assert!(!format!("{ldap:?}").contains("s3cret"));
    assert_eq!(
        ldap.user_filter.as_str(),
        "(&(objectClass=person)(uid={user}))"
    );
    assert!(
        matches!(&ldap.groups, GroupLookup::Search { base_dn, filter }
        if base_dn == "ou=groups,dc=test" && filter.as_str() == "(member={dn})")
    );
    assert_eq!(ldap.group_attribute, "cn");
    assert_eq!((ldap.timeout.as_secs(), ldap.pool_size), (5, 4));
    assert!(ldap.tls.is_some() && !ldap.start_tls);
}

#[test]
fn unencrypted_binds_are_refused_unless_allowed() {
    let plain = GOOD.replace("ldaps://", "ldap://");
    let (_d, result) = config(&plain);
    let problems = result.unwrap_err();
    assert_eq!(keys(&problems), ["auth.ldap.url"]);
    assert!(
        problems[0].message.contains("unencrypted"),
        "{}",
        problems[0].message
    );
    let (_d, result) = config(&format!("{plain}\nstart_tls = true"));
    assert!(result.unwrap().auth.ldap.unwrap().start_tls);
    let (_d, result) = config(&format!("{plain}\nallow_insecure = true"));
    assert!(result.unwrap().auth.ldap.unwrap().tls.is_none());
    let (_d, result) = config(&format!("{GOOD}\nstart_tls = true"));
    assert_eq!(keys(&result.unwrap_err()), ["auth.ldap.start_tls"]);
    let (_d, result) = config(&GOOD.replace("ldaps://localhost:636", "http://localhost"));
    assert_eq!(keys(&result.unwrap_err()), ["auth.ldap.url"]);
}

#[test]
fn every_problem_is_named_at_once() {
    let (_d, result) = config("user_filter = \"uid={user}\"\ngroup_base_dn = \"ou=g\"\nmember_of_attribute = \"memberOf\"\ntimeout = 0\npool_size = 0\nca = \"missing.pem\"\nbind_password = \"x\"\nbind_password_file = \"bind.pw\"\ngroup_attribute = \"c n\"");
    let problems = result.unwrap_err();
    assert_eq!(
        keys(&problems),
        [
            "auth.ldap.url",
            "auth.ldap.bind_dn",
            "auth.ldap.bind_password",
            "auth.ldap.base_dn",
            "auth.ldap.user_filter",
            "auth.ldap.member_of_attribute",
            "auth.ldap.group_attribute",
            "auth.ldap.timeout",
            "auth.ldap.pool_size",
        ],
        "{problems:#?}"
    );
    let (_d, result) = config(&GOOD.replace("bind_password_file = \"bind.pw\"", ""));
    let problems = result.unwrap_err();
    assert!(problems[0]
        .message
        .contains("PORTCULLIS_AUTH_LDAP_BIND_PASSWORD"));
    let (_d, result) = config(&GOOD.replace("ca.crt", "nope.crt"));
    assert_eq!(keys(&result.unwrap_err()), ["auth.ldap.ca"]);
    let (_d, result) = config(&format!("{GOOD}\ngroup_filter = \"(member=x)\""));
    assert_eq!(keys(&result.unwrap_err()), ["auth.ldap.group_filter"]);
}

#[test]
fn directory_groups_in_rules_need_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    devcerts::write_dev_set(dir.path(), &["localhost"]).unwrap();
    let text = "listen = [\"127.0.0.1:5443\"]\nupstream = \"http://127.0.0.1:5000\"\nauth.allow_unauthenticated = true\n[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n[acl]\n[[acl.rules]]\ngroups = [\"ldap:pushers\", \"ldap:\", \"devs\"]\nrepositories = [\"*\"]\nactions = [\"pull\"]\n";
    let problems = Config::from_toml(text, dir.path()).unwrap_err();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].contains("[auth.ldap] is not configured"));
    assert!(messages[1].contains("names no directory group"));
    assert!(messages[2].contains("not defined in [acl.groups]"));
}
