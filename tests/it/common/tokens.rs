//! Token-service test set-up shared by the token tests.

use std::path::PathBuf;

use base64::Engine;
use portcullis::auth::htpasswd::hash_line;

use super::client::Response;
use super::Stack;

/// The token service name (tokens' audience).
pub const SERVICE: &str = "portcullis.test";

/// Users, the token key, and the config text for a token stack.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let users = ["alice:wonderland", "bob:builder", "admin:root-pw"]
            .iter()
            .map(|up| {
                let (u, p) = up.split_once(':').unwrap();
                hash_line(u, p, 4).unwrap()
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join("htpasswd"), format!("{users}\n")).unwrap();
        let (key, cert) =
            portcullis::cli::devcerts::write_token_key(dir.path(), "test token signer", 30)
                .unwrap();
        Setup { dir, key, cert }
    }

    /// `[auth.htpasswd]`, `[auth.token]` and `[acl]` (plus `top` keys first).
    pub fn config(&self, top: &str) -> String {
        format!(
            r#"{top}
[auth.htpasswd]
path = "{htpasswd}"
[auth.token]
realm = "https://localhost:{{PORT}}/auth/token"
service = "{SERVICE}"
issuer = "portcullis-test"
key = "{key}"
certificate = "{cert}"
[acl.groups]
team-a = ["alice"]
[[acl.rules]]
comment = "admins do everything"
users = ["admin"]
repositories = ["*"]
catalog = true
actions = ["*"]
[[acl.rules]]
comment = "team-a writes its repositories"
groups = ["team-a"]
repositories = ["team-a/*", "public/*"]
actions = ["pull", "push"]
[[acl.rules]]
comment = "everyone reads team-a"
users = ["*"]
repositories = ["team-a/*"]
actions = ["pull"]
[[acl.rules]]
comment = "public images for all"
anonymous = true
users = ["*"]
repositories = ["public/*"]
actions = ["pull"]
"#,
            htpasswd = self.dir.path().join("htpasswd").display(),
            key = self.key.display(),
            cert = self.cert.display(),
        )
        .replace("{SERVICE}", SERVICE)
    }

    pub fn start(&self, top: &str) -> Stack {
        Stack::start(&self.config(top))
    }
}

pub fn basic(user_pass: &str) -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The JWT's payload, decoded without verification.
pub fn payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// GETs a token for `scopes` as `creds` (None: anonymous).
pub fn token(stack: &Stack, creds: Option<&str>, scopes: &[&str]) -> Response {
    let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    let path = format!("/auth/token?service={SERVICE}&{}", query.join("&"));
    let header = creds.map(basic);
    stack.request(
        "GET",
        &path,
        &header.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

pub fn token_string(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.body_text());
    r.json()["token"].as_str().unwrap().to_string()
}

/// POSTs an OAuth2 form to the token endpoint.
pub fn post_form(stack: &Stack, form: &str) -> Response {
    let raw = format!(
        "POST /auth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        stack.gw.host(),
        form.len()
    );
    super::client::send(stack.gw.port, stack.ca(), raw.as_bytes())
}
