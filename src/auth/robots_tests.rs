use super::*;

const NOW: i64 = 1_800_000_000;

fn db_with(name: &str, expires: Option<i64>) -> (RobotsDb, String) {
    let (robot, secret) = Robot::create(name, NOW, expires, "builds").unwrap();
    let mut db = RobotsDb::default();
    db.add(robot).unwrap();
    (db, secret)
}

#[test]
fn secrets_are_random_prefixed_and_only_hashed_in_the_file() {
    let (db, secret) = db_with("ci-build", None);
    let (_, other) = Robot::create("ci-build", NOW, None, "").unwrap();
    assert_ne!(secret, other);
    assert!(secret.starts_with(SECRET_PREFIX) && secret.len() == SECRET_PREFIX.len() + 43);
    let text = db.to_text();
    assert!(!text.contains(&secret), "{text}");
    assert!(!text.contains(&secret[SECRET_PREFIX.len()..]), "{text}");
    assert!(text.contains("hash = \"hmac-sha256:"), "{text}");
    let again = RobotsDb::parse(&text).unwrap();
    assert_eq!(again, db);
    assert_eq!(again.verify("ci-build", &secret, NOW), RobotVerdict::Valid);
}

#[test]
fn wrong_secret_unknown_robot_and_expiry() {
    let (db, secret) = db_with("ci", Some(NOW + 10));
    assert_eq!(db.verify("ci", "pcr_wrong", NOW), RobotVerdict::Invalid);
    assert_eq!(db.verify("ci", "", NOW), RobotVerdict::Invalid);
    assert_eq!(db.verify("other", &secret, NOW), RobotVerdict::Invalid);
    assert_eq!(db.verify("ci", &secret, NOW + 9), RobotVerdict::Valid);
    assert_eq!(
        db.verify("ci", &secret, NOW + 10),
        RobotVerdict::Expired(NOW + 10)
    );
    assert!(db.is_active("ci", NOW + 9) && !db.is_active("ci", NOW + 10));
    assert!(!db.is_active("other", NOW));
}

#[test]
fn add_and_remove() {
    let (mut db, _) = db_with("ci", None);
    let (again, _) = Robot::create("ci", NOW, None, "").unwrap();
    assert!(db.add(again).unwrap_err().contains("exists"));
    assert!(db.remove("ci"));
    assert!(!db.remove("ci"));
    assert!(db.is_empty());
}

#[test]
fn names_are_checked() {
    for good in ["ci", "ci-build.2", "0day_bot"] {
        assert!(is_robot_name(good), "{good}");
    }
    for bad in ["", "-x", "Ci", "a b", "a/b", "a$b", &"a".repeat(65)] {
        assert!(!is_robot_name(bad), "{bad}");
        assert!(Robot::create(bad, NOW, None, "").is_err(), "{bad}");
    }
    assert_eq!(robot_of_user("robot$ci"), Some("ci"));
    assert_eq!(robot_of_user("alice"), None);
}

#[test]
fn bad_files_list_every_problem() {
    let (db, _) = db_with("ci", None);
    let good = db.to_text();
    let twice = format!("{good}\n{}", &good[good.find("[[robots]]").unwrap()..]);
    let problems = RobotsDb::parse(&twice).unwrap_err();
    assert!(problems[0].contains("listed twice"), "{problems:?}");
    let bad = "[[robots]]\nname = \"a\"\nhash = \"md5:x\"\ncreated = \"2026-01-01T00:00:00Z\"\n\
               [[robots]]\nname = \"b\"\nhash = \"hmac-sha256:AA:AA\"\ncreated = \"yesterday\"\n";
    let problems = RobotsDb::parse(bad).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("hash must be"), "{problems:?}");
    assert!(problems[1].contains("RFC 3339"), "{problems:?}");
    let unknown = RobotsDb::parse("[[robots]]\nname = \"a\"\nsecret = \"x\"\n").unwrap_err();
    assert!(unknown[0].contains("unknown field"), "{unknown:?}");
    assert!(RobotsDb::parse("").unwrap().is_empty());
}

#[test]
fn lifetimes() {
    assert_eq!(parse_lifetime("90d"), Ok(90 * 86_400));
    assert_eq!(parse_lifetime("12h"), Ok(43_200));
    assert_eq!(parse_lifetime("30m"), Ok(1_800));
    assert_eq!(parse_lifetime("1s"), Ok(1));
    for bad in ["", "d", "0d", "-1d", "5w", "1.5h", "99999999999999999d"] {
        assert!(parse_lifetime(bad).is_err(), "{bad}");
    }
}
