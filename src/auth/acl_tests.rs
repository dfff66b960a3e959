use super::*;

fn rule(number: usize, who: Who, repos: &[&str], actions: &[Action]) -> Rule {
    Rule {
        number,
        comment: None,
        who,
        networks: vec![],
        repositories: repos.iter().map(|r| Pattern::parse(r).unwrap()).collect(),
        catalog: false,
        actions: actions.to_vec(),
        overwrite: false,
    }
}

fn users(names: &[&str]) -> Who {
    Who {
        users: names.iter().map(|s| s.to_string()).collect(),
        ..Who::default()
    }
}

fn subject(user: Option<&str>) -> Subject<'_> {
    Subject {
        user,
        kind: Kind::User,
        ip: Some("10.1.2.3".parse().unwrap()),
        directory_groups: &[],
    }
}

fn repo(name: &str) -> Resource {
    Resource::Repository(name.into())
}

fn sample() -> Acl {
    use Action::*;
    let mut acl = Acl::default();
    acl.groups
        .insert("team-a".into(), vec!["alice".into(), "carol".into()]);
    acl.rules = vec![
        rule(1, users(&["bob"]), &["team-a/*"], &[Pull]),
        rule(
            2,
            Who {
                groups: vec!["team-a".into()],
                ..Who::default()
            },
            &["team-a/*"],
            &[Pull, Push],
        ),
        rule(3, users(&["*"]), &["${user}/*"], &[All]),
        rule(
            4,
            Who {
                anonymous: true,
                ..Who::default()
            },
            &["public/*"],
            &[Pull],
        ),
        rule(5, users(&["*"]), &["public/*"], &[Pull]),
    ];
    acl
}

#[test]
fn first_applicable_rule_decides() {
    use Action::*;
    let acl = sample();
    assert_eq!(
        acl.decide(&subject(Some("alice")), &repo("team-a/app"), Push),
        Decision::Allow { rule: Some(2) }
    );
    assert!(acl
        .decide(&subject(Some("bob")), &repo("team-a/app"), Pull)
        .allowed());
    let bob_push = acl.decide(&subject(Some("bob")), &repo("team-a/app"), Push);
    assert!(
        matches!(bob_push, Decision::Deny { rule: Some(1), .. }),
        "{bob_push:?}"
    );
    assert!(acl
        .decide(&subject(Some("dave")), &repo("dave/tools"), Delete)
        .allowed());
    assert!(
        !acl.decide(&subject(Some("dave")), &repo("team-a/app"), Pull)
            .allowed(),
        "default deny"
    );
}

#[test]
fn anonymous_only_gets_anonymous_rules() {
    use Action::*;
    let acl = sample();
    assert_eq!(
        acl.decide(&subject(None), &repo("public/base"), Pull),
        Decision::Allow { rule: Some(4) }
    );
    assert!(!acl
        .decide(&subject(None), &repo("public/base"), Push)
        .allowed());
    assert!(!acl
        .decide(&subject(None), &repo("team-a/app"), Pull)
        .allowed());
    // ${user} never matches for anonymous subjects.
    assert!(!acl.decide(&subject(None), &repo("x/y"), Pull).allowed());
}

#[test]
fn globs_do_not_cross_prefixes() {
    let p = Pattern::parse("team-a/*").unwrap();
    assert!(p.matches("team-a/app", None));
    assert!(p.matches("team-a/x/y", None));
    assert!(!p.matches("team-a", None));
    assert!(!p.matches("team-ab/app", None));
    assert!(!p.matches("team-a-evil/app", None));
    let mine = Pattern::parse("${user}/*").unwrap();
    assert!(mine.matches("alice/app", Some("alice")));
    assert!(!mine.matches("alice/app", Some("bob")));
    assert!(
        !mine.matches("a/b/app", Some("a/b")),
        "user names with / are not a namespace"
    );
    assert!(!mine.matches("*/app", Some("*")));
    assert!(Pattern::parse("Team/*").is_err());
    assert!(
        Pattern::parse("a/../b").is_ok(),
        "harmless: such names never pass the route grammar"
    );
    assert!(Pattern::parse("").is_err());
}

#[test]
fn networks_groups_and_certificates() {
    use Action::*;
    let mut acl = Acl::default();
    let mut ci = rule(
        1,
        Who {
            certificates: vec!["runner".into()],
            ..Who::default()
        },
        &["*"],
        &[Pull, Push],
    );
    ci.networks = vec!["10.0.0.0/8".parse().unwrap()];
    acl.rules = vec![ci];
    let mut s = Subject {
        user: Some("runner"),
        kind: Kind::Certificate,
        ip: Some("10.9.9.9".parse().unwrap()),
        directory_groups: &[],
    };
    assert!(acl.decide(&s, &repo("any/thing"), Push).allowed());
    s.ip = Some("192.0.2.1".parse().unwrap());
    assert!(
        !acl.decide(&s, &repo("any/thing"), Push).allowed(),
        "outside the network"
    );
    s.ip = Some("10.9.9.9".parse().unwrap());
    s.kind = Kind::User;
    assert!(
        !acl.decide(&s, &repo("any/thing"), Push).allowed(),
        "a password user named like the certificate"
    );
}

#[test]
fn read_only_refuses_writes_first() {
    use Action::*;
    let mut acl = sample();
    acl.read_only = true;
    assert!(acl
        .decide(&subject(Some("alice")), &repo("team-a/app"), Pull)
        .allowed());
    let push = acl.decide(&subject(Some("alice")), &repo("team-a/app"), Push);
    assert_eq!(push, Decision::ReadOnly);
    let mut open = Acl {
        policy: Policy::Authenticated,
        read_only: true,
        ..Acl::default()
    };
    assert!(!open
        .decide(&subject(Some("x")), &repo("a"), Delete)
        .allowed());
    open.read_only = false;
    assert!(open
        .decide(&subject(Some("x")), &repo("a"), Delete)
        .allowed());
    assert!(!open.decide(&subject(None), &repo("a"), Pull).allowed());
    open.policy = Policy::Everyone;
    assert!(open.decide(&subject(None), &repo("a"), Push).allowed());
}

#[test]
fn grant_is_the_allowed_subset_and_catalog_needs_its_own_rule() {
    use Action::*;
    let mut acl = sample();
    let scope = Scope {
        resource: repo("team-a/app"),
        actions: vec![Pull, Push, Delete],
    };
    assert_eq!(acl.grant(&subject(Some("carol")), &scope), vec![Pull, Push]);
    assert_eq!(acl.grant(&subject(Some("bob")), &scope), vec![Pull]);
    assert_eq!(acl.grant(&subject(Some("eve")), &scope), vec![]);
    let catalog = Scope {
        resource: Resource::Catalog,
        actions: vec![All],
    };
    assert_eq!(acl.grant(&subject(Some("alice")), &catalog), vec![]);
    let mut admin = rule(0, users(&["alice"]), &[], &[All]);
    admin.catalog = true;
    acl.rules.insert(0, admin);
    assert_eq!(acl.grant(&subject(Some("alice")), &catalog), vec![All]);
}

/// Robots match `robots` globs only: not `users = ["*"]`, not a user of the same name.
#[test]
fn robots_match_robot_rules_only() {
    use Action::*;
    let mut acl = Acl::default();
    let ci = Who {
        robots: vec![Pattern::parse("ci-*").unwrap()],
        ..Who::default()
    };
    acl.rules = vec![
        rule(1, ci, &["builds/*"], &[Pull, Push]),
        rule(
            2,
            users(&["*", "robot$ci-build", "ci-build"]),
            &["*"],
            &[All],
        ),
    ];
    let robot = |name| Subject {
        user: Some("robot$x"),
        kind: Kind::Robot(name),
        ip: None,
        directory_groups: &[],
    };
    assert!(acl
        .decide(&robot("ci-build"), &repo("builds/app"), Push)
        .allowed());
    assert_eq!(
        acl.decide(&robot("ci-build"), &repo("other/app"), Pull),
        Decision::Deny {
            rule: None,
            reason: "no rule applies (default deny)".into()
        }
    );
    assert!(!acl
        .decide(&robot("deploy"), &repo("builds/app"), Pull)
        .allowed());
    let user = subject(Some("ci-build"));
    assert!(
        acl.decide(&user, &repo("builds/app"), Delete).allowed(),
        "users = [\"*\"] still covers password users"
    );
    let open = Acl {
        policy: Policy::Authenticated,
        ..Acl::default()
    };
    assert!(open.decide(&robot("any"), &repo("x"), Push).allowed());
}

#[test]
fn directory_groups_match_ldap_rules_case_insensitively() {
    use Action::*;
    let acl = Acl {
        rules: vec![rule(
            1,
            Who {
                groups: vec!["ldap:Pushers".into()],
                ..Who::default()
            },
            &["*"],
            &[Push, Pull],
        )],
        ..Acl::default()
    };
    let groups = ["devs".to_string(), "pushers".to_string()];
    let member = Subject {
        directory_groups: &groups,
        ..subject(Some("carol"))
    };
    assert!(acl.decide(&member, &repo("app"), Push).allowed());
    let outsider = Subject {
        directory_groups: &groups[..1],
        ..subject(Some("dave"))
    };
    assert!(!acl.decide(&outsider, &repo("app"), Push).allowed());
    assert!(
        !acl.decide(&subject(Some("pushers")), &repo("app"), Push)
            .allowed(),
        "a user named like the group is not in it"
    );
}
