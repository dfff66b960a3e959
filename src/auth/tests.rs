use std::time::Duration;

use base64::Engine;

use super::basic::Credentials;
use super::cache::CredentialCache;
use super::htpasswd::HtpasswdDb;
use super::passwords::Verdict;
use super::*;

/// Runs `f` to completion on a fresh current-thread runtime (also used by the throttle's
/// tests).
pub(in crate::auth) fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn authenticator(
    certificates: bool,
    require: Require,
    max_failures: u32,
) -> (Authenticator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    let text = format!("alice:{}\n", bcrypt::hash("wonderland", 4).unwrap());
    std::fs::write(&path, &text).unwrap();
    let checker = PasswordChecker::new(
        path,
        HtpasswdDb::parse(&text).unwrap(),
        CredentialCache::new(Duration::from_secs(60), 100),
        2,
    );
    let auth = Authenticator {
        basic: Some(BasicAuth { checker }),
        robots: None,
        oidc: None,
        ldap: None,
        guess_key: Default::default(),
        certificates,
        require,
        throttle: Throttle::new(max_failures, Duration::from_secs(60)),
        store: std::sync::Arc::new(crate::store::Store::memory()),
    };
    (auth, dir)
}

fn basic(user_pass: &str) -> Vec<u8> {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
    .into_bytes()
}

fn attempt<'a>(
    authorization: Option<&'a [u8]>,
    certificate: Option<&'a ClientIdentity>,
) -> Attempt<'a> {
    Attempt {
        client_ip: Some("192.0.2.9".parse().unwrap()),
        authorization,
        certificate,
    }
}

fn cert(user: Option<&str>) -> ClientIdentity {
    ClientIdentity {
        subject: "CN=x".into(),
        user: user.map(str::to_string),
    }
}

#[test]
fn basic_accepts_the_right_password_only() {
    let (auth, _dir) = authenticator(false, Require::All, 10);
    let good = basic("alice:wonderland");
    let p = run(auth.authenticate(attempt(Some(&good), None))).unwrap();
    assert_eq!((p.user.as_str(), p.method), ("alice", AuthMethod::Basic));
    for bad in ["alice:wrong", "mallory:wonderland"] {
        let header = basic(bad);
        let err = run(auth.authenticate(attempt(Some(&header), None))).unwrap_err();
        assert_eq!(err, Failure::BadCredentials, "{bad}");
    }
    let none = run(auth.authenticate(attempt(None, None))).unwrap();
    assert_eq!(
        none,
        Principal::anonymous(),
        "no credentials: anonymous, the ACL decides"
    );
}

#[test]
fn throttle_answers_429_but_cached_valid_credentials_still_pass() {
    let (auth, _dir) = authenticator(false, Require::All, 3);
    let good = basic("alice:wonderland");
    run(auth.authenticate(attempt(Some(&good), None))).unwrap();
    for guess in ["nope", "nope2", "nope3"] {
        let wrong = basic(&format!("alice:{guess}"));
        assert_eq!(
            run(auth.authenticate(attempt(Some(&wrong), None))).unwrap_err(),
            Failure::BadCredentials
        );
    }
    let wrong = basic("alice:nope");
    let blocked = run(auth.authenticate(attempt(Some(&wrong), None))).unwrap_err();
    assert!(
        matches!(blocked, Failure::Throttled { retry_after } if retry_after > 0),
        "{blocked:?}"
    );
    assert!(
        run(auth.authenticate(attempt(Some(&good), None))).is_ok(),
        "a cache hit costs no bcrypt and passes"
    );
    let missing = run(auth.authenticate(attempt(None, None))).unwrap();
    assert_eq!(
        missing.method,
        AuthMethod::Anonymous,
        "no credentials is not a failure"
    );
}

/// A client repeating one wrong password (every request, and containerd's retries) uses
/// one failure of the allowance; the right password afterwards passes. After the file
/// changes, the same guess is checked again.
#[test]
fn the_same_wrong_password_again_is_one_failure() {
    let (auth, dir) = authenticator(false, Require::All, 3);
    let typo = basic("alice:wondreland");
    for _ in 0..10 {
        assert_eq!(
            run(auth.authenticate(attempt(Some(&typo), None))).unwrap_err(),
            Failure::BadCredentials
        );
    }
    let good = basic("alice:wonderland");
    assert!(run(auth.authenticate(attempt(Some(&good), None))).is_ok());

    for _ in 0..2 {
        run(auth.authenticate(attempt(Some(&typo), None))).unwrap_err();
    }
    std::fs::write(
        dir.path().join("htpasswd"),
        format!("alice:{}\n", bcrypt::hash("wondreland", 4).unwrap()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        run(auth.authenticate(attempt(Some(&typo), None))).is_ok(),
        "the new file is asked, not the memory of the old one's answer"
    );
}

#[test]
fn malformed_headers_are_challenged_and_counted() {
    let (auth, _dir) = authenticator(false, Require::All, 2);
    let bad: &[&[u8]] = &[b"Basic !!!", b"Bearer x"];
    for header in bad {
        assert_eq!(
            run(auth.authenticate(attempt(Some(header), None))).unwrap_err(),
            Failure::BadCredentials
        );
    }
    let good = basic("alice:wonderland");
    let err = run(auth.authenticate(attempt(Some(&good), None))).unwrap_err();
    assert!(
        matches!(err, Failure::Throttled { .. }),
        "two malformed headers count as failures"
    );
}

#[test]
fn require_all_needs_certificate_and_password() {
    let (auth, _dir) = authenticator(true, Require::All, 10);
    let good = basic("alice:wonderland");
    let id = cert(Some("alice-laptop"));
    let p = run(auth.authenticate(attempt(Some(&good), Some(&id)))).unwrap();
    assert_eq!(p.user, "alice");
    assert_eq!(
        run(auth.authenticate(attempt(None, Some(&id)))).unwrap(),
        Principal::anonymous(),
        "a certificate without the password is anonymous"
    );
    let nameless = cert(None);
    assert_eq!(
        run(auth.authenticate(attempt(Some(&good), Some(&nameless)))).unwrap_err(),
        Failure::NamelessCertificate
    );
}

#[test]
fn require_any_takes_either() {
    let (auth, _dir) = authenticator(true, Require::Any, 10);
    let id = cert(Some("ci-runner"));
    let p = run(auth.authenticate(attempt(None, Some(&id)))).unwrap();
    assert_eq!(
        (p.user.as_str(), p.method),
        ("ci-runner", AuthMethod::Certificate)
    );
    let good = basic("alice:wonderland");
    assert_eq!(
        run(auth.authenticate(attempt(Some(&good), None)))
            .unwrap()
            .user,
        "alice"
    );
    assert_eq!(
        run(auth.authenticate(attempt(None, None))).unwrap(),
        Principal::anonymous()
    );
}

#[test]
fn certificate_only_and_no_auth() {
    let cert_only = Authenticator {
        basic: None,
        robots: None,
        oidc: None,
        ldap: None,
        guess_key: Default::default(),
        certificates: true,
        require: Require::All,
        throttle: Throttle::new(0, Duration::from_secs(1)),
        store: std::sync::Arc::new(crate::store::Store::memory()),
    };
    let id = cert(Some("bob"));
    assert_eq!(
        run(cert_only.authenticate(attempt(None, Some(&id))))
            .unwrap()
            .user,
        "bob"
    );
    let open = Authenticator {
        basic: None,
        robots: None,
        oidc: None,
        ldap: None,
        guess_key: Default::default(),
        certificates: false,
        require: Require::All,
        throttle: Throttle::new(0, Duration::from_secs(1)),
        store: std::sync::Arc::new(crate::store::Store::memory()),
    };
    assert_eq!(
        run(open.authenticate(attempt(None, None))).unwrap().method,
        AuthMethod::None
    );
}

#[test]
fn htpasswd_edits_are_picked_up_and_clear_the_cache() {
    let (auth, dir) = authenticator(false, Require::All, 0);
    let good = basic("alice:wonderland");
    run(auth.authenticate(attempt(Some(&good), None))).unwrap();
    std::fs::write(
        dir.path().join("htpasswd"),
        format!(
            "alice:{}\n# changed\n",
            bcrypt::hash("new-password", 4).unwrap()
        ),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        run(auth.authenticate(attempt(Some(&good), None))).is_err(),
        "the old password no longer works"
    );
    let new = basic("alice:new-password");
    assert!(run(auth.authenticate(attempt(Some(&new), None))).is_ok());
}

/// Robots only (no htpasswd): `ci` valid, `old` expired; their secrets.
fn robot_authenticator(dir: &std::path::Path) -> (Authenticator, String, String) {
    use super::robots::{Robot, RobotsDb};
    let now = crate::clock::unix_now();
    let (ci, ci_secret) = Robot::create("ci", now, None, "").unwrap();
    let (old, old_secret) = Robot::create("old", now - 100, Some(now - 1), "").unwrap();
    let mut db = RobotsDb::default();
    db.add(ci).unwrap();
    db.add(old).unwrap();
    let path = dir.join("robots.toml");
    std::fs::write(&path, db.to_text()).unwrap();
    let parse = |t: &str| RobotsDb::parse(t).map_err(|e| e.join("; "));
    let auth = Authenticator {
        basic: None,
        robots: Some(WatchedFile::new(path, "robots file", db, parse)),
        oidc: None,
        ldap: None,
        guess_key: Default::default(),
        certificates: false,
        require: Require::All,
        throttle: Throttle::new(3, Duration::from_secs(60)),
        store: std::sync::Arc::new(crate::store::Store::memory()),
    };
    (auth, ci_secret, old_secret)
}

#[test]
fn robots_log_in_as_robot_dollar_name() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, ci, old) = robot_authenticator(dir.path());
    let good = basic(&format!("robot$ci:{ci}"));
    let principal = run(auth.authenticate(attempt(Some(&good), None))).unwrap();
    assert_eq!(principal, Principal::robot("ci"));
    assert_eq!(principal.method.label(), "robot");
    assert!(matches!(
        principal.subject(None).kind,
        super::acl::Kind::Robot("ci")
    ));
    for refused in [
        format!("robot$ci:{old}"),
        format!("robot$old:{old}"),
        format!("robot$nobody:{ci}"),
        format!("ci:{ci}"),
    ] {
        let header = basic(&refused);
        assert_eq!(
            run(auth.authenticate(attempt(Some(&header), None))),
            Err(Failure::BadCredentials),
            "{refused}"
        );
    }
    assert!(auth.robot_is_active("ci") && !auth.robot_is_active("old"));
    // Four distinct failures against max_failures = 3: the right secret now waits.
    assert!(matches!(
        run(auth.authenticate(attempt(Some(&good), None))),
        Err(Failure::Throttled { .. })
    ));
}

#[test]
fn identical_credentials_arriving_together_cost_one_bcrypt() {
    let (auth, _dir) = authenticator(false, Require::All, 10);
    let checker = &auth.basic.as_ref().unwrap().checker;
    let creds = Credentials {
        user: "alice".into(),
        password: "wonderland".into(),
    };
    let wrong = Credentials {
        user: "alice".into(),
        password: "rabbit".into(),
    };
    let verdicts = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let checks = (0..16).map(|_| checker.verify(&creds));
            let wrong_checks = (0..3).map(|_| checker.verify(&wrong));
            let (good, bad) = tokio::join!(
                futures_join_all(checks.collect()),
                futures_join_all(wrong_checks.collect())
            );
            (good, bad)
        });
    assert!(
        verdicts.0.iter().all(|v| *v == Verdict::Valid),
        "{verdicts:?}"
    );
    assert!(
        verdicts.1.iter().all(|v| *v == Verdict::Invalid),
        "{verdicts:?}"
    );
    // One bcrypt for the 16 good ones; failures are not cached, so each wrong one runs its
    // own (in turn, behind the others with the same password).
    let runs = checker
        .bcrypt_runs
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(runs, 1 + 3);
    assert!(
        checker.checking.lock().unwrap().is_empty(),
        "no lock left behind"
    );
}

/// Polls every future to completion, in order (no `futures` crate needed).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("completed")).collect()
}
