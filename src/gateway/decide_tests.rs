//! Access decisions, table-driven: every way Basic, certificates, tokens and anonymous
//! requests combine under `any`/`all`, read-only and with or without `[acl]`, and the
//! challenge each refusal carries. No processes: the decision is a function of the facts.

use super::*;
use crate::cli::devcerts;
use crate::registry::scope::{api_call, Resource};

const ALICE: &str = "alice:wonderland";
const MALLORY: &str = "alice:wrong";

/// `[acl]` used unless a case says `no_acl`: alice pulls and pushes `team/*`, anyone pulls
/// `public/*`, anonymous included.
const RULES: &str = r#"
[[acl.rules]]
users = ["alice"]
repositories = ["team/*"]
actions = ["pull", "push"]
[[acl.rules]]
anonymous = true
users = ["*"]
repositories = ["public/*"]
actions = ["pull"]
"#;

/// How a case's gateway is set up.
#[derive(Clone, Copy)]
struct Setup {
    basic: bool,
    certificates: bool,
    require_all: bool,
    token: bool,
    read_only: bool,
    no_acl: bool,
}

const BASIC: Setup = Setup {
    basic: true,
    certificates: false,
    require_all: false,
    token: false,
    read_only: false,
    no_acl: false,
};

fn access(setup: Setup) -> (Access, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let set = devcerts::write_dev_set(dir.path(), &["localhost"]).unwrap();
    let mut text = format!(
        "listen = [\"127.0.0.1:5443\"]\nupstream = \"http://127.0.0.1:5000\"\nread_only = {}\n",
        setup.read_only
    );
    text.push_str(&format!(
        "auth.require = \"{}\"\n",
        if setup.require_all { "all" } else { "any" }
    ));
    if !setup.basic && !setup.certificates && !setup.token {
        text.push_str("auth.allow_unauthenticated = true\n");
    }
    text.push_str("[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n");
    if setup.certificates {
        text.push_str(&format!(
            "[tls.client_auth]\ncas = [\"{}\"]\nmode = \"{}\"\n",
            set.ca_cert.display(),
            // `all`, and certificates alone, need every client to present one.
            if setup.require_all || !setup.basic {
                "require"
            } else {
                "optional"
            }
        ));
    }
    if setup.basic {
        let line = crate::auth::htpasswd::hash_line("alice", "wonderland", 4).unwrap();
        std::fs::write(dir.path().join("htpasswd"), format!("{line}\n")).unwrap();
        text.push_str("[auth.htpasswd]\npath = \"htpasswd\"\n");
    }
    if setup.token {
        devcerts::write_token_key(dir.path(), "signer", 30).unwrap();
        text.push_str("[auth.token]\nrealm = \"https://gw.test/auth/token\"\nservice = \"gw.test\"\nissuer = \"gw\"\nkey = \"token.key\"\ncertificate = \"token.crt\"\n");
    }
    if !setup.no_acl {
        text.push_str(RULES);
    }
    let config = Config::from_toml(&text, dir.path()).unwrap_or_else(|p| panic!("{text}\n{p:?}"));
    (Access::from_config(&config), dir)
}

/// What a case's request brings.
#[derive(Clone, Copy)]
enum Creds {
    None,
    Basic(&'static str),
    /// A verified certificate naming this user (`None`: without the name field).
    Certificate(Option<&'static str>),
    Both(&'static str, &'static str),
    /// A token from the gateway's own signer granting alice pull on `team/app`.
    Token,
    ForgedToken,
}

fn basic_header(user_pass: &str) -> Vec<u8> {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
    .into_bytes()
}

/// The status the gateway would answer with (200 when let through) and its challenge's
/// scheme, if any.
fn decide(access: &Access, creds: Creds, method: &str, path: &str) -> (u16, Option<String>) {
    match decision_of(access, creds, method, path).verdict {
        Ok(_) => (200, None),
        Err(Refusal { answer: e, .. }) => {
            let challenge = e
                .response(true)
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
                .map(|(_, v)| v.split(' ').next().unwrap_or_default().to_string());
            (e.status().as_u16(), challenge)
        }
    }
}

/// The whole decision on a request.
fn decision_of(access: &Access, creds: Creds, method: &str, path: &str) -> Decision {
    let identity = |user: Option<&str>| ClientIdentity {
        subject: "CN=x".into(),
        user: user.map(str::to_string),
    };
    let (authorization, certificate) = match creds {
        Creds::None => (None, None),
        Creds::Basic(up) => (Some(basic_header(up)), None),
        Creds::Certificate(user) => (None, Some(identity(user))),
        Creds::Both(up, user) => (Some(basic_header(up)), Some(identity(Some(user)))),
        Creds::Token => {
            let signer = &access.token.as_ref().expect("token configured").signer;
            let access_list = [(Resource::Repository("team/app".into()), vec![Action::Pull])];
            let token = signer.access_token("alice", &access_list).unwrap();
            (Some(format!("Bearer {token}").into_bytes()), None)
        }
        Creds::ForgedToken => (Some(b"Bearer eyJhbGciOiJub25lIn0.e30.".to_vec()), None),
    };
    let facts = RequestFacts {
        method,
        path,
        query: None,
        authorization: authorization.as_deref(),
        certificate: certificate.as_ref(),
        client_ip: Some("192.0.2.1".parse().unwrap()),
    };
    let params = Params::parse(None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = api_call(path).ok();
    runtime.block_on(access.registry_request(facts, call.as_ref(), &params))
}

/// A name, the set-up, the credentials, the request, the status and challenge expected.
type Case = (
    &'static str,
    Setup,
    Creds,
    (&'static str, &'static str),
    u16,
    Option<&'static str>,
);

const PULL: (&str, &str) = ("GET", "/v2/team/app/manifests/latest");
const PUSH: (&str, &str) = ("PUT", "/v2/team/app/manifests/latest");
const PUBLIC: (&str, &str) = ("GET", "/v2/public/app/manifests/latest");
const PING: (&str, &str) = ("GET", "/v2/");

#[test]
fn every_combination_decides_as_documented() {
    let certs_any = Setup {
        certificates: true,
        ..BASIC
    };
    let certs_all = Setup {
        certificates: true,
        require_all: true,
        ..BASIC
    };
    let certs_only = Setup {
        basic: false,
        certificates: true,
        ..BASIC
    };
    let tokens = Setup {
        token: true,
        ..BASIC
    };
    let read_only = Setup {
        read_only: true,
        ..BASIC
    };
    let no_acl = Setup {
        no_acl: true,
        ..BASIC
    };
    let open = Setup {
        basic: false,
        no_acl: true,
        ..BASIC
    };
    let cases: &[Case] = &[
        (
            "basic: right password pulls",
            BASIC,
            Creds::Basic(ALICE),
            PULL,
            200,
            None,
        ),
        (
            "basic: right password pushes",
            BASIC,
            Creds::Basic(ALICE),
            PUSH,
            200,
            None,
        ),
        (
            "basic: wrong password",
            BASIC,
            Creds::Basic(MALLORY),
            PULL,
            401,
            Some("Basic"),
        ),
        (
            "basic: anonymous ping is challenged",
            BASIC,
            Creds::None,
            PING,
            401,
            Some("Basic"),
        ),
        (
            "basic: anonymous pull of a public repository",
            BASIC,
            Creds::None,
            PUBLIC,
            200,
            None,
        ),
        (
            "basic: anonymous pull of a private one",
            BASIC,
            Creds::None,
            PULL,
            401,
            Some("Basic"),
        ),
        (
            "basic: empty credentials are anonymous",
            BASIC,
            Creds::Basic(":"),
            PUBLIC,
            200,
            None,
        ),
        (
            "any: certificate alone",
            certs_any,
            Creds::Certificate(Some("alice")),
            PULL,
            200,
            None,
        ),
        (
            "any: password alone",
            certs_any,
            Creds::Basic(ALICE),
            PULL,
            200,
            None,
        ),
        (
            "any: certificate of a user without rules",
            certs_any,
            Creds::Certificate(Some("bob")),
            PULL,
            403,
            None,
        ),
        (
            "any: nameless certificate falls back to the password",
            certs_any,
            Creds::Certificate(None),
            PULL,
            401,
            Some("Basic"),
        ),
        (
            "all: certificate without password",
            certs_all,
            Creds::Certificate(Some("alice")),
            PULL,
            401,
            Some("Basic"),
        ),
        (
            "all: password without certificate",
            certs_all,
            Creds::Basic(ALICE),
            PULL,
            403,
            None,
        ),
        (
            "all: both",
            certs_all,
            Creds::Both(ALICE, "alice"),
            PULL,
            200,
            None,
        ),
        (
            "all: both, wrong password",
            certs_all,
            Creds::Both(MALLORY, "alice"),
            PULL,
            401,
            Some("Basic"),
        ),
        (
            "certificates only: named",
            certs_only,
            Creds::Certificate(Some("alice")),
            PULL,
            200,
            None,
        ),
        (
            "certificates only: nameless",
            certs_only,
            Creds::Certificate(None),
            PULL,
            403,
            None,
        ),
        (
            "tokens: anonymous ping gets a Bearer challenge",
            tokens,
            Creds::None,
            PING,
            401,
            Some("Bearer"),
        ),
        (
            "tokens: a granted pull",
            tokens,
            Creds::Token,
            PULL,
            200,
            None,
        ),
        (
            "tokens: a push the token does not grant",
            tokens,
            Creds::Token,
            PUSH,
            401,
            Some("Bearer"),
        ),
        (
            "tokens: forged token",
            tokens,
            Creds::ForgedToken,
            PULL,
            401,
            Some("Bearer"),
        ),
        (
            "tokens: Basic still works",
            tokens,
            Creds::Basic(ALICE),
            PULL,
            200,
            None,
        ),
        (
            "read-only: pull",
            read_only,
            Creds::Basic(ALICE),
            PULL,
            200,
            None,
        ),
        (
            "read-only: push refused whoever asks",
            read_only,
            Creds::Basic(ALICE),
            PUSH,
            405,
            None,
        ),
        (
            "no [acl]: any authenticated user may push",
            no_acl,
            Creds::Basic(ALICE),
            PUSH,
            200,
            None,
        ),
        (
            "no [acl]: anonymous is challenged",
            no_acl,
            Creds::None,
            PULL,
            401,
            Some("Basic"),
        ),
        ("no auth at all: open", open, Creds::None, PUSH, 200, None),
    ];
    let mut wrong = Vec::new();
    for (name, setup, creds, (method, path), status, challenge) in cases {
        let (access, _dir) = access(*setup);
        let got = decide(&access, *creds, method, path);
        let want = (*status, challenge.map(str::to_string));
        if got != want {
            wrong.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What metrics and the audit log record of a decision: the method label, the outcome, and
/// as whom a refusal is audited (a named user the ACL refused, nobody for bad credentials,
/// not at all for a client that sent none).
#[test]
fn decisions_say_how_they_are_recorded() {
    let (access, _dir) = access(Setup {
        token: true,
        ..BASIC
    });
    let other = "/v2/other/app/manifests/latest";
    let record = |creds, (method, path): (&str, &str)| {
        let d = decision_of(&access, creds, method, path);
        let audit = d.verdict.as_ref().err().map(|r| r.audit_as.clone());
        (d.method, d.outcome(), audit)
    };
    let alice = Some(Some("alice".to_string()));
    let nobody = Some(Some(String::new()));
    assert_eq!(record(Creds::Basic(ALICE), PULL), ("basic", "ok", None));
    assert_eq!(record(Creds::Token, PULL), ("token", "ok", None));
    assert_eq!(
        record(Creds::Basic(ALICE), ("GET", other)),
        ("basic", "denied", alice)
    );
    assert_eq!(
        record(Creds::Basic(MALLORY), PULL),
        ("basic", "denied", nobody.clone())
    );
    assert_eq!(
        record(Creds::ForgedToken, PULL),
        ("token", "denied", nobody.clone())
    );
    assert_eq!(record(Creds::Token, PUSH), ("token", "denied", nobody));
    assert_eq!(
        record(Creds::None, PULL),
        ("anonymous", "denied", Some(None))
    );
    assert_eq!(
        record(Creds::None, PUBLIC),
        ("anonymous", "ok", None),
        "anonymous pulls of public/*"
    );
}
