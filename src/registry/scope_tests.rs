use super::*;

fn repo(name: &str, actions: &[Action]) -> Scope {
    Scope {
        resource: Resource::Repository(name.into()),
        actions: actions.to_vec(),
    }
}

#[test]
fn maps_requests_to_scopes_like_the_registry() {
    use Action::*;
    let cases: &[(&str, &str, Option<&str>, Vec<Scope>)] = &[
        ("GET", "/v2/", None, vec![]),
        ("HEAD", "/v2/", None, vec![]),
        (
            "GET",
            "/v2/_catalog",
            Some("n=10"),
            vec![Scope {
                resource: Resource::Catalog,
                actions: vec![All],
            }],
        ),
        (
            "GET",
            "/v2/team-a/app/tags/list",
            None,
            vec![repo("team-a/app", &[Pull])],
        ),
        (
            "HEAD",
            "/v2/team-a/app/manifests/v1.0",
            None,
            vec![repo("team-a/app", &[Pull])],
        ),
        (
            "GET",
            "/v2/team-a/app/manifests/sha256:abc123",
            None,
            vec![repo("team-a/app", &[Pull])],
        ),
        (
            "PUT",
            "/v2/team-a/app/manifests/latest",
            None,
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "DELETE",
            "/v2/team-a/app/manifests/sha256:abc",
            None,
            vec![repo("team-a/app", &[Delete])],
        ),
        (
            "GET",
            "/v2/team-a/app/blobs/sha256:abc",
            None,
            vec![repo("team-a/app", &[Pull])],
        ),
        (
            "DELETE",
            "/v2/team-a/app/blobs/sha256:abc",
            None,
            vec![repo("team-a/app", &[Delete])],
        ),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            None,
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "PATCH",
            "/v2/team-a/app/blobs/uploads/0a1b-c_d.e=",
            Some("_state=x"),
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "PUT",
            "/v2/team-a/app/blobs/uploads/uuid",
            Some("digest=sha256:ab"),
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "DELETE",
            "/v2/team-a/app/blobs/uploads/uuid",
            None,
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "GET",
            "/v2/team-a/app/blobs/uploads/uuid",
            None,
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            Some("mount=sha256:ab&from=team-b%2Fsecret"),
            vec![
                repo("team-a/app", &[Pull, Push]),
                repo("team-b/secret", &[Pull]),
            ],
        ),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            Some("from=team-b/secret"),
            vec![repo("team-a/app", &[Pull, Push])],
        ),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/",
            Some("mount=sha256:ab&from=%zz&from=team-b/secret"),
            vec![
                repo("team-a/app", &[Pull, Push]),
                repo("team-b/secret", &[Pull]),
            ],
        ),
    ];
    for (method, path, query, want) in cases {
        assert_eq!(
            required_scopes(method, path, &params(*query)).as_ref(),
            Ok(want),
            "{method} {path}"
        );
    }
}

#[test]
fn greedy_names_match_the_registry_router() {
    // distribution's name regex is greedy: the last route keyword wins.
    assert_eq!(
        api_call("/v2/a/manifests/b/manifests/c"),
        Ok(ApiCall::Manifest("a/manifests/b".into()))
    );
    assert_eq!(
        api_call("/v2/a/blobs/uploads/blobs/sha256:ab"),
        Ok(ApiCall::Blob("a/blobs/uploads".into()))
    );
    assert_eq!(
        api_call("/v2/tags/tags/list"),
        Ok(ApiCall::Tags("tags".into()))
    );
    assert_eq!(
        api_call("/v2/x/blobs/uploads/"),
        Ok(ApiCall::UploadStart("x".into()))
    );
}

#[test]
fn path_games_never_map_to_a_repository() {
    let attacks = [
        "/v2/team-a/../team-b/app/manifests/v1",
        "/v2/team-a/./app/manifests/v1",
        "/v2/team-a//app/manifests/v1",
        "/v2//team-b/app/manifests/v1",
        "/v2/team-a%2f..%2fteam-b/manifests/v1",
        "/v2/team-a%2Fapp/manifests/v1",
        "/v2/%2e%2e/team-b/manifests/v1",
        "/v2/team-a/app/manifests/v1/",
        "/v2/team-a/app/tags/list/",
        "/v2/Team-A/app/manifests/v1",
        "/v2/team-a/APP/manifests/v1",
        "/v2/team-a/app/manifests/",
        "/v2/team-a/app/manifests/../../team-b/app/manifests/v1",
        "/v2/team-a\\..\\team-b/manifests/v1",
        "/v2/team-a/app/manifests/v1;x",
        "/v2/team-a/app/manifests/%76%31",
        "/v2/-team/app/manifests/v1",
        "/v2/team-/app/manifests/v1",
        "/v2/team..a/manifests/v1",
        "/v2/team___a/manifests/v1",
        "/v2/team-a/app/blobs/sha256",
        "/v2/team-a/app/blobs/uploads",
        "/v2/team-a/app",
        "/v2/_catalog/",
        "/v2/ü/manifests/v1",
        "/v2",
        "/v2x/team/manifests/v1",
    ];
    for path in attacks {
        assert_eq!(api_call(path).map_err(|_| ()), Err(()), "{path}");
    }
    for dots in [
        "/v2/team-a/app/blobs/uploads/..",
        "/v2/team-a/app/blobs/uploads/.",
        "/v2/team-a/app/blobs/uploads/...",
    ] {
        assert_eq!(api_call(dots).map_err(|_| ()), Err(()), "{dots}");
    }
    let long = format!("/v2/{}/manifests/v1", "a".repeat(256));
    assert!(api_call(&long).is_err());
}

fn params(raw: Option<&str>) -> Params {
    Params::parse(raw).unwrap()
}

#[test]
fn a_mount_from_an_invalid_name_is_refused() {
    for from in ["Team/Secret", "team//secret", "../secret", "%2e%2e/x"] {
        let query = format!("mount=sha256:ab&from={from}");
        assert_eq!(
            required_scopes("POST", "/v2/a/blobs/uploads/", &params(Some(&query))),
            Err(RouteError::MountSource),
            "{query}"
        );
    }
}

#[test]
fn methods_outside_the_api_are_refused() {
    assert_eq!(
        required_scopes("POST", "/v2/a/manifests/v1", &Params::default()),
        Err(RouteError::Method)
    );
    assert_eq!(
        required_scopes("PUT", "/v2/a/blobs/sha256:ab", &Params::default()),
        Err(RouteError::Method)
    );
    assert_eq!(
        required_scopes("DELETE", "/v2/_catalog", &Params::default()),
        Err(RouteError::Method)
    );
    assert_eq!(
        required_scopes("POST", "/v2/", &Params::default()),
        Err(RouteError::Method)
    );
    assert_eq!(
        required_scopes("PATCH", "/v2/a/blobs/uploads/", &Params::default()),
        Err(RouteError::Method)
    );
}

#[test]
fn repository_name_grammar() {
    for ok in [
        "a",
        "a/b",
        "a-b",
        "a--b",
        "a.b",
        "a_b",
        "a__b",
        "library/ubuntu",
        "0",
        "a1/b2/c3",
    ] {
        assert!(is_repository_name(ok), "{ok}");
    }
    for bad in [
        "", "A", "a/", "/a", "a//b", "a_.b", "a___b", ".a", "a.", "a..b", "a/..", "a b", "a:b",
    ] {
        assert!(!is_repository_name(bad), "{bad}");
    }
}

#[test]
fn scope_grammar() {
    use Action::*;
    assert_eq!(
        parse_scopes("repository:team/app:pull,push"),
        vec![repo("team/app", &[Pull, Push])]
    );
    assert_eq!(
        parse_scopes("repository:a:pull registry:catalog:* repository(plugin):b:push,pull,pull"),
        vec![
            repo("a", &[Pull]),
            Scope {
                resource: Resource::Catalog,
                actions: vec![All]
            },
            repo("b", &[Pull, Push])
        ]
    );
    // A host:port in the name: actions follow the last colon; such names are not repositories here.
    assert_eq!(parse_scopes("repository:localhost:5000/app:pull"), vec![]);
    assert_eq!(
        parse_scopes("repository:a:frobnicate"),
        vec![repo("a", &[])]
    );
    assert_eq!(parse_scopes("repository:../etc:pull bogus x:y"), vec![]);
    assert_eq!(
        repo("a/b", &[Pull, Push]).to_string(),
        "repository:a/b:pull,push"
    );
}
