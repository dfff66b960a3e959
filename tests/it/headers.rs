//! What clients and the registry see through the gateway: API-version header on every /v2/
//! answer, https Location URLs for the client's host, forwarding headers, gateway answers.

use crate::common;

use common::{Registry, Stack};
use portcullis::registry::answers::API_VERSION_HEADER;

/// Waits for the registry's "response completed" line for the request with `user_agent`.
fn registry_line(registry: &Registry, user_agent: &str) -> String {
    for _ in 0..100 {
        if let Some(line) = registry
            .proc
            .log_text()
            .lines()
            .find(|l| l.contains(&format!("useragent={user_agent} ")))
        {
            return line.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "registry never logged user agent {user_agent}:\n{}",
        registry.proc.log_text()
    );
}

fn remote_addr(line: &str) -> &str {
    let start = line
        .find("http.request.remoteaddr=")
        .expect("remoteaddr in line")
        + "http.request.remoteaddr=".len();
    line[start..].split(' ').next().unwrap().trim_matches('"')
}

#[test]
fn registry_answers_carry_the_api_version_header() {
    let stack = Stack::start("");

    let get = stack.request("GET", "/v2/", &[]);
    assert_eq!(get.status, 200, "{}", get.body_text());
    assert_eq!(get.header(API_VERSION_HEADER), Some("registry/2.0"));

    let head = stack.request("HEAD", "/v2/", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header(API_VERSION_HEADER), Some("registry/2.0"));
    assert!(head.body.is_empty());

    let missing = stack.request("GET", "/v2/nothing/here/manifests/latest", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header(API_VERSION_HEADER), Some("registry/2.0"));
    assert_eq!(missing.json()["errors"][0]["code"], "MANIFEST_UNKNOWN");
    // Exactly one API-version header: the backend's is replaced, not duplicated.
    assert_eq!(
        missing
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(API_VERSION_HEADER))
            .count(),
        1
    );
}

#[test]
fn upload_location_is_https_for_the_host_the_client_used() {
    let stack = Stack::start("");

    let started = stack.request(
        "POST",
        "/v2/team/app/blobs/uploads/",
        &["Content-Length: 0"],
    );
    assert_eq!(started.status, 202, "{}", started.body_text());
    let location = started.header("Location").expect("Location");
    let expected = format!(
        "https://localhost:{}/v2/team/app/blobs/uploads/",
        stack.gw.port
    );
    assert!(location.starts_with(&expected), "{location}");

    // Another Host (e.g. the DNS name behind a load balancer) is kept, port included.
    let other = "POST /v2/team/app/blobs/uploads/ HTTP/1.1\r\nHost: registry.example.com:8443\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let r = common::client::send(stack.gw.port, stack.ca(), other.as_bytes());
    let location = r.header("Location").expect("Location");
    assert!(
        location.starts_with("https://registry.example.com:8443/v2/team/app/blobs/uploads/"),
        "{location}"
    );
}

/// Starts an upload through a gateway configured with `extra`, sending `headers`; returns
/// the Location the registry built and the client address the registry saw.
fn upload_seen_by_registry(
    extra: &str,
    user_agent: &str,
    headers: &[&str],
) -> (String, String, u16) {
    let stack = Stack::start(extra);
    let agent = format!("User-Agent: {user_agent}");
    let mut all = vec!["Content-Length: 0", agent.as_str()];
    all.extend_from_slice(headers);
    let r = stack.request("POST", "/v2/team/app/blobs/uploads/", &all);
    assert_eq!(r.status, 202, "{}", r.body_text());
    let location = r.header("Location").unwrap().to_string();
    let seen = remote_addr(&registry_line(&stack.registry, user_agent)).to_string();
    (location, seen, stack.gw.port)
}

#[test]
fn spoofed_forwarding_headers_from_an_untrusted_client_are_dropped() {
    let (location, seen, port) = upload_seen_by_registry(
        "",
        "spoof-untrusted",
        &[
            "X-Forwarded-For: 6.6.6.6",
            "X-Real-IP: 6.6.6.6",
            "X-Forwarded-Proto: http",
            "X-Forwarded-Host: evil.example",
            "Forwarded: for=6.6.6.6;proto=http;host=evil.example",
        ],
    );
    assert!(
        location.starts_with(&format!("https://localhost:{port}/")),
        "{location}"
    );
    assert_eq!(seen, "127.0.0.1");
}

#[test]
fn forwarding_headers_from_a_trusted_proxy_are_kept() {
    let (location, seen, _) = upload_seen_by_registry(
        "trusted_proxies = [\"127.0.0.0/8\"]",
        "spoof-trusted",
        &[
            "X-Forwarded-For: 198.51.100.7",
            "X-Forwarded-Host: registry.example.com",
        ],
    );
    assert!(
        location.starts_with("https://registry.example.com/v2/"),
        "{location}"
    );
    assert_eq!(seen, "198.51.100.7");
}

#[test]
fn backend_down_gives_a_registry_shaped_502() {
    let mut stack = Stack::start("");
    let up = stack.request("GET", "/v2/", &[]);
    assert_eq!((up.status, up.body.as_slice()), (200, &b"{}"[..]));
    stack.registry.stop();

    // Requests for content fail at once. The version check, which the gateway answers itself
    // while the registry is up, fails as soon as the health check (every 2 s) sees it down.
    let r = stack.request("GET", "/v2/team/app/manifests/v1", &[]);
    assert_eq!(r.status, 502);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stack.request("GET", "/v2/", &[]).status != 502 {
        assert!(
            std::time::Instant::now() < deadline,
            "/v2/ still answered 10 s after the registry stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for method in ["GET", "HEAD"] {
        let r = stack.request(method, "/v2/", &[]);
        assert_eq!(r.status, 502, "{method}");
        assert_eq!(
            r.header(API_VERSION_HEADER),
            Some("registry/2.0"),
            "{method}"
        );
        assert_eq!(
            r.header("Content-Type"),
            Some("application/json; charset=utf-8")
        );
        if method == "GET" {
            let body = r.json();
            assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
            assert!(body["errors"][0]["detail"].is_null());
        }
    }
    let r = stack.request("GET", "/v2/team/app/manifests/v1", &[]);
    assert_eq!(r.status, 502);
    assert_eq!(r.header(API_VERSION_HEADER), Some("registry/2.0"));

    // The health check does not depend on the backend.
    let health = stack.request("GET", "/", &[]);
    assert_eq!(health.status, 200);
    assert!(
        stack.gw.proc.log_text().contains("status=502"),
        "access log records the 502"
    );
}

#[test]
fn gateway_answers_paths_outside_v2_itself() {
    let stack = Stack::start("");

    assert_eq!(stack.request("GET", "/", &[]).status, 200);
    assert_eq!(stack.request("HEAD", "/", &[]).status, 200);
    let post = stack.request("POST", "/", &["Content-Length: 0"]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
    for path in ["/debug/vars", "/v2x", "/metrics", "/V2/"] {
        let r = stack.request("GET", path, &[]);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header(API_VERSION_HEADER), None, "{path}");
        assert_eq!(r.json()["errors"][0]["code"], "NOT_FOUND");
    }
    assert!(
        !stack.registry.proc.log_text().contains("/debug/vars"),
        "unknown paths never reach the registry"
    );
}

#[test]
fn credentials_and_cookies_never_reach_the_access_log() {
    let stack = Stack::start("");
    let r = stack.request(
        "GET",
        "/v2/?token=query-secret",
        &[
            "Authorization: Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3N3b3Jk",
            "Cookie: session=cookie-secret",
        ],
    );
    assert_eq!(r.status, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = stack.gw.proc.log_text();
    assert!(log.contains("path=/v2/"), "the request was logged:\n{log}");
    for secret in [
        "c2VjcmV0",
        "cookie-secret",
        "query-secret",
        "Authorization",
        "Cookie",
    ] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

/// Sends `body` with `method` to `path` and returns the answer.
fn send_body(
    stack: &Stack,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> common::client::Response {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        stack.gw.host(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    common::client::send(stack.gw.port, stack.ca(), &raw)
}

#[test]
fn manifest_head_keeps_content_length_and_blob_ranges_pass_through() {
    let stack = Stack::start("");

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = common::oci::digest(config);
    let started = stack.request(
        "POST",
        "/v2/team/app/blobs/uploads/",
        &["Content-Length: 0"],
    );
    let location = started.header("Location").expect("Location");
    let upload = location
        .strip_prefix(&format!("https://{}", stack.gw.host()))
        .unwrap();
    let put_blob = send_body(
        &stack,
        "PUT",
        &format!("{upload}&digest={config_digest}"),
        "application/octet-stream",
        config,
    );
    assert_eq!(put_blob.status, 201, "{}", put_blob.body_text());

    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let put = send_body(
        &stack,
        "PUT",
        "/v2/team/app/manifests/v1",
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    assert_eq!(put.status, 201, "{}", put.body_text());

    let head = stack.request(
        "HEAD",
        "/v2/team/app/manifests/v1",
        &["Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(manifest.len().to_string().as_str())
    );
    assert_eq!(
        head.header("Docker-Content-Digest"),
        Some(common::oci::digest(manifest.as_bytes()).as_str())
    );
    assert_eq!(head.header(API_VERSION_HEADER), Some("registry/2.0"));

    let range = stack.request(
        "GET",
        &format!("/v2/team/app/blobs/{config_digest}"),
        &["Range: bytes=1-4"],
    );
    assert_eq!(range.status, 206);
    assert_eq!(range.body, config[1..=4].to_vec());
}

#[test]
fn access_log_can_be_json() {
    let stack = Stack::start("[log]\nformat = \"json\"");
    assert_eq!(stack.request("GET", "/v2/", &[]).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = stack.gw.proc.log_text();
    let access = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "portcullis::gateway::decide")
        .unwrap_or_else(|| panic!("no JSON access line in:\n{log}"));
    assert_eq!(access["method"], "GET");
    assert_eq!(access["path"], "/v2/");
    assert_eq!(access["status"], 200);
    assert_eq!(access["client"], "127.0.0.1");
}

/// A request target that is not a path (`*`, `v2/`, no leading slash) is a 400, never the
/// `/` health check.
#[test]
fn request_targets_without_a_leading_slash_are_refused() {
    let stack = Stack::start("");
    for target in ["*", "v2/", "v2/a/tags/list"] {
        let r = stack.request("GET", target, &[]);
        assert_eq!(r.status, 400, "{target}: {}", r.body_text());
    }
    assert_eq!(stack.request("GET", "/", &[]).status, 200, "control");
}

/// `Connection` naming `Host` or forwarding headers is legal: the named headers are dropped
/// (they are hop-by-hop), `Host` stays, and the registry gets the gateway's own forwarding
/// headers, never the client's.
#[test]
fn connection_naming_forwarding_headers_drops_them_and_is_not_refused() {
    let recorder = common::recorder::Recorder::start();
    let pki = common::Pki::new();
    let gw = common::Gateway::start(&recorder.url(), &pki, "");
    let host = gw.host();
    for (n, connection) in [
        "X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Host, X-Custom",
        "\"X-Forwarded-For\", x-custom, keep-alive",
        "x-custom, close",
    ]
    .iter()
    .enumerate()
    {
        let request = format!(
            "GET /v2/hop/{n}/tags/list HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\nX-Custom: secret\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n"
        );
        // Two `Connection` headers: `close` in the second one counts too.
        let r = common::client::send(gw.port, &pki.set.ca_cert, request.as_bytes());
        assert_eq!(r.status, 202, "{connection}: {}", r.body_text());
        let seen = recorder.requests_to(&format!("/v2/hop/{n}/"));
        let seen = seen.last().expect("the request reached the registry");
        assert_eq!(seen.header("X-Custom"), None, "{}", seen.head);
        assert_eq!(seen.header("Host"), Some(host.as_str()), "{}", seen.head);
        assert_eq!(
            seen.header("X-Forwarded-For"),
            Some("127.0.0.1"),
            "{}",
            seen.head
        );
        assert_eq!(
            seen.header("X-Forwarded-Proto"),
            Some("https"),
            "{}",
            seen.head
        );
        assert_eq!(
            seen.header("X-Forwarded-Host"),
            Some(host.as_str()),
            "{}",
            seen.head
        );
        assert!(
            !seen.head.contains("evil") && !seen.head.contains("6.6.6.6"),
            "{}",
            seen.head
        );
    }
}

/// Requests pipelined in one write are all answered, in order, on the same connection.
#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let stack = Stack::start("");
    let host = stack.gw.host();
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\nGET /v2/nothing/here/tags/list HTTP/1.1\r\nHost: {host}\r\n\r\nPOST /v2/pipe/line/blobs/uploads/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let mut tls = common::client::connect(stack.gw.port, stack.ca());
    use std::io::{Read, Write};
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "202", "200"], "{text}");
}

/// No answer the gateway writes or passes on names pingora in a `Server` header.
#[test]
fn answers_carry_no_pingora_server_header() {
    let stack = Stack::start("");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/elsewhere"),
        ("GET", "/v2/"),
        ("GET", "/v2/missing/repo/manifests/latest"),
        ("POST", "/"),
    ] {
        let r = stack.request(method, path, &["Content-Length: 0"]);
        assert!(
            r.headers
                .iter()
                .all(|(n, v)| !n.eq_ignore_ascii_case("server") || !v.contains("Pingora")),
            "{method} {path}: {:?}",
            r.headers
        );
    }
}
