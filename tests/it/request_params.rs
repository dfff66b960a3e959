//! What the registry acts on is what the gateway authorized: query parameters are parsed
//! once and the query forwarded is rebuilt from them; form bodies are refused. Against the
//! real registry (cross-repository mounts) and a byte-recording backend (the exact target).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine;
use common::client::{self, Response};
use common::oci::{digest, random_bytes};
use common::recorder::Recorder;
use common::{Gateway, Pki, Stack};
use portcullis::auth::htpasswd::hash_line;
use portcullis::registry::answers::API_VERSION_HEADER;

/// A plain-HTTP request straight to the registry: (status, Location).
fn direct(port: u16, method: &str, target: &str, body: &[u8]) -> (u16, Option<String>) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let r = client::parse(&raw);
    (r.status, r.header("location").map(str::to_string))
}

/// Uploads `data` as a blob of `repo` straight to the registry; its digest.
fn seed_blob(port: u16, repo: &str, data: &[u8]) -> String {
    let (status, location) = direct(port, "POST", &format!("/v2/{repo}/blobs/uploads/"), b"");
    assert_eq!(status, 202);
    let location = location.unwrap();
    let path = location
        .split_once("127.0.0.1")
        .map_or(location.as_str(), |(_, p)| {
            p.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit())
        });
    let d = digest(data);
    let (status, _) = direct(port, "PUT", &format!("{path}&digest={d}"), data);
    assert_eq!(status, 201, "seeding {repo}");
    d
}

/// Whether the registry has blob `d` in `repo`.
fn has_blob(port: u16, repo: &str, d: &str) -> bool {
    direct(port, "HEAD", &format!("/v2/{repo}/blobs/{d}"), b"").0 == 200
}

/// alice may do anything in `alice/*` and pull `shared/*`; nobody may touch `team/*`.
fn stack() -> (Stack, tempfile::TempDir) {
    let users = tempfile::tempdir().unwrap();
    let htpasswd = users.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("{}\n", hash_line("alice", "wonderland", 4).unwrap()),
    )
    .unwrap();
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n[[acl.rules]]\nusers = [\"alice\"]\nrepositories = [\"alice/*\"]\nactions = [\"*\"]\n[[acl.rules]]\nusers = [\"alice\"]\nrepositories = [\"shared/*\"]\nactions = [\"pull\"]\n",
        htpasswd.display()
    ));
    (stack, users)
}

fn alice() -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:wonderland")
    )
}

/// POST with a body and its Content-Type through the gateway, as alice.
fn post_form(stack: &Stack, path: &str, content_type: &str, body: &str) -> Response {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        stack.gw.port,
        alice(),
        body.len()
    );
    client::send(stack.gw.port, stack.ca(), request.as_bytes())
}

fn assert_registry_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body_text());
    assert_eq!(r.header(API_VERSION_HEADER), Some("registry/2.0"));
    assert_eq!(r.json()["errors"][0]["code"], code, "{}", r.body_text());
}

#[test]
fn mounts_need_pull_on_the_source_whatever_the_spelling() {
    let (stack, _users) = stack();
    let port = stack.registry.port;
    let secret = seed_blob(port, "team/secret", &random_bytes(4096, 1));
    let shared = seed_blob(port, "shared/base", &random_bytes(4096, 2));
    let auth = alice();

    // Spellings where a strict parser and Go's FormValue used to disagree.
    for (repo, query) in [
        ("alice/h1", format!("mount={secret}&from=team/secret")),
        (
            "alice/h2",
            format!("mount={secret}&from=%zz&from=team/secret"),
        ),
        (
            "alice/h3",
            format!("mount={secret}&from=x;y&from=team/secret"),
        ),
        ("alice/h4", format!("mount={secret}&fr%6Fm=team%2Fsecret")),
    ] {
        let r = stack.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?{query}"),
            &[&auth],
        );
        assert_registry_error(&r, 403, "DENIED");
        assert!(
            !has_blob(port, repo, &secret),
            "{query} mounted into {repo}"
        );
    }
    // Repeated parameters and a source that is not a name are refused outright.
    for (query, code) in [
        (
            format!("mount={secret}&mount={shared}&from=shared/base"),
            "UNSUPPORTED",
        ),
        (
            format!("mount={shared}&from=shared/base&from=team/secret"),
            "UNSUPPORTED",
        ),
        (format!("mount={secret}&from=Team/Secret"), "NAME_INVALID"),
    ] {
        let r = stack.request(
            "POST",
            &format!("/v2/alice/h5/blobs/uploads/?{query}"),
            &[&auth],
        );
        assert_registry_error(&r, 400, code);
    }
    assert!(!has_blob(port, "alice/h5", &secret));
    assert!(!has_blob(port, "alice/h5", &shared));

    // Parameters in a form body (which Go's FormValue reads first) never reach the registry.
    let form = format!("mount={secret}&from=team/secret");
    for content_type in [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    ] {
        let r = post_form(&stack, "/v2/alice/h6/blobs/uploads/", content_type, &form);
        assert_registry_error(&r, 400, "UNSUPPORTED");
    }
    let multipart = format!(
        "--b\r\nContent-Disposition: form-data; name=\"mount\"\r\n\r\n{secret}\r\n--b\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nteam/secret\r\n--b--\r\n"
    );
    let r = post_form(
        &stack,
        "/v2/alice/h6/blobs/uploads/",
        "multipart/form-data; boundary=b",
        &multipart,
    );
    assert_registry_error(&r, 400, "UNSUPPORTED");
    assert!(!has_blob(port, "alice/h6", &secret));
    let log = stack.registry.proc.log_text();
    assert!(
        log.contains("uri=/v2/team/secret/blobs/uploads/") && !log.contains("mount="),
        "the registry saw a mount (or the log shows no requests):\n{log}"
    );

    // The legitimate mount still works, and a monolithic octet-stream upload still passes.
    let r = stack.request(
        "POST",
        &format!("/v2/alice/h7/blobs/uploads/?mount={shared}&from=shared/base"),
        &[&auth],
    );
    assert_eq!(r.status, 201, "{}", r.body_text());
    assert!(has_blob(port, "alice/h7", &shared));
    let r = stack.request("POST", "/v2/alice/h8/blobs/uploads/", &[&auth]);
    assert_eq!(r.status, 202, "{}", r.body_text());
    let location = r.header("location").unwrap().to_string();
    let path = location.split_once(&stack.gw.host()).unwrap().1;
    let data = random_bytes(1000, 3);
    let d = digest(&data);
    let request = format!(
        "PUT {path}&digest={d} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        stack.gw.host(),
        data.len()
    );
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&data);
    let r = client::send(stack.gw.port, stack.ca(), &bytes);
    assert_eq!(r.status, 201, "{}", r.body_text());
    assert!(has_blob(port, "alice/h8", &d));
}

#[test]
fn the_registry_receives_only_the_parameters_the_gateway_parsed() {
    let recorder = Recorder::start();
    let pki = Pki::new();
    let gw = Gateway::start(&recorder.url(), &pki, "");
    let send = |target: &str| client::request(gw.port, &pki.set.ca_cert, "GET", target, &[]).status;
    assert_eq!(
        send("/v2/a/tags/list?n=%zz&n=2&last=x;y&last=b+c&junk=%4"),
        202
    );
    assert_eq!(
        send("/v2/a/blobs/uploads/abc?_state=s%2Fx&digest=sha256%3A12"),
        202
    );
    let r = client::request(
        gw.port,
        &pki.set.ca_cert,
        "GET",
        "/v2/a/tags/list?n=1&n=2",
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header(API_VERSION_HEADER), Some("registry/2.0"));
    let targets: Vec<String> = recorder
        .requests_to("/v2/a/")
        .iter()
        .map(|r| r.target().to_string())
        .collect();
    assert_eq!(
        targets,
        [
            "/v2/a/tags/list?n=2&last=b+c",
            "/v2/a/blobs/uploads/abc?_state=s%2Fx&digest=sha256%3A12"
        ]
    );
}
