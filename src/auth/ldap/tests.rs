//! The directory client without a directory: what is decided before any connection, and a
//! directory that cannot be reached. (Against a real slapd: tests/it/ldap.rs.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::filter::Template;
use super::*;

fn settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_string(),
        start_tls: false,
        tls: None,
        bind_dn: "cn=reader,dc=test".into(),
        bind_password: Secret::new("pw".into()),
        base_dn: "dc=test".into(),
        user_filter: Template::parse("(uid={user})", &["user"], &["user"]).unwrap(),
        user_attribute: "uid".into(),
        groups: GroupLookup::None,
        group_attribute: "cn".into(),
        timeout: Duration::from_secs(2),
        pool_size: 2,
    }
}

use crate::background::block_on as run;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_empty_password_never_reaches_the_directory() {
    let directory = Directory::start(
        settings("ldap://127.0.0.1:1"),
        CredentialCache::new(Duration::from_secs(60), 10),
    );
    let result = run(directory.login("alice", ""));
    assert!(
        matches!(result, Err(LdapFailure::Refused(ref why)) if why.contains("empty password")),
        "{result:?}"
    );
    assert!(matches!(
        run(directory.login("", "pw")),
        Err(LdapFailure::Refused(_))
    ));
    assert_eq!(directory.pool.opened.load(Ordering::Relaxed), 0);
    assert_eq!(directory.stats.user_binds.load(Ordering::Relaxed), 0);
}

#[test]
fn a_directory_that_cannot_be_reached_is_unavailable_not_a_wrong_password() {
    let url = format!("ldap://127.0.0.1:{}", closed_port());
    let directory = Directory::start(
        settings(&url),
        CredentialCache::new(Duration::from_secs(60), 10),
    );
    let result = run(directory.login("alice", "secret"));
    assert!(
        matches!(result, Err(LdapFailure::Unavailable(ref why)) if why.contains("cannot connect")),
        "{result:?}"
    );
    assert!(matches!(
        run(directory.lookup("alice")),
        Err(LdapFailure::Unavailable(_))
    ));
    let mut metrics = String::new();
    directory.render_metrics(&mut metrics);
    assert!(
        metrics.contains("portcullis_ldap_pool_errors_total{reason=\"connect\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE portcullis_ldap_latency_seconds histogram"));
}

#[test]
fn verified_credentials_are_served_from_the_cache_with_their_groups() {
    let directory = Directory::start(
        settings("ldap://127.0.0.1:1"),
        CredentialCache::new(Duration::from_secs(60), 10),
    );
    let alice = LdapUser {
        name: "alice".into(),
        groups: vec!["pushers".into()],
    };
    directory
        .cache
        .insert_value("Alice", "secret", Arc::new(alice.clone()));
    assert_eq!(*run(directory.login("Alice", "secret")).unwrap(), alice);
    assert_eq!(
        directory.pool.opened.load(Ordering::Relaxed),
        0,
        "no connection was needed"
    );
    assert!(directory.cached("Alice", "Secret").is_none());
}
