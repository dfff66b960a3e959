//! Start-up behaviour of the binary: bad configurations fail with every problem named,
//! non-zero exit, and no panic; `check` summarises a good one.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{free_port, Pki};

fn portcullis(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Writes a config into `pki`'s folder: a valid one with `edit` applied to its text.
fn config_with(pki: &Pki, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let good = format!(
        "listen = [\"127.0.0.1:{}\"]\nupstream = \"http://127.0.0.1:5000\"\nauth.allow_unauthenticated = true\n[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n",
        free_port()
    );
    let path = pki.dir.path().join("portcullis.toml");
    fs::write(&path, edit(good)).unwrap();
    path
}

/// Asserts a failed start: exit code 1, each of `needles` in stderr, no panic or backtrace.
fn assert_refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

#[test]
fn unknown_key_is_refused() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| {
        c.replace("[tls]", "client_max_body_size = 0\n[tls]")
    });
    for cmd in ["serve", "check"] {
        assert_refused(
            &portcullis(&[cmd], &config),
            &["unknown field", "client_max_body_size"],
        );
    }
}

#[test]
fn missing_certificate_is_refused() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| c.replace("server.crt", "nowhere.crt"));
    assert_refused(
        &portcullis(&["serve"], &config),
        &["tls.certificate", "nowhere.crt"],
    );
}

#[test]
fn key_not_matching_the_certificate_is_refused() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| c.replace("server.key", "intermediate.key"));
    assert_refused(
        &portcullis(&["serve"], &config),
        &["tls.key", "does not belong"],
    );
}

#[test]
fn bad_listen_address_is_refused_with_the_other_problems() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| {
        c.replace("http://127.0.0.1:5000", "ftp://x")
            .replace("127.0.0.1:", "localhost:")
            .replace("server.key", "no.key")
    });
    assert_refused(
        &portcullis(&["serve"], &config),
        &["3 problem(s)", "listen", "upstream", "tls.key"],
    );
}

/// A config with `[tls.acme]` (and `acme_extra` lines in it) instead of certificate files.
fn acme_config(pki: &Pki, acme_extra: &str) -> std::path::PathBuf {
    config_with(pki, |c| {
        c.replace(
            "certificate = \"server.crt\"\nkey = \"server.key\"\n",
            &format!("[tls.acme]\ndomains = [\"registry.example.com\"]\nstorage = \"acme\"\n{acme_extra}\n"),
        )
    })
}

#[test]
fn acme_with_certificate_files_is_refused() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| {
        c + "[tls.acme]\ndomains = [\"registry.example.com\"]\nstorage = \"acme\"\n"
    });
    assert_refused(
        &portcullis(&["check"], &config),
        &[
            "tls.acme",
            "cannot be used with tls.certificate and tls.key",
        ],
    );
}

#[test]
fn acme_problems_are_listed_together_and_check_summarises_a_good_one() {
    let pki = Pki::new();
    let bad = acme_config(
        &pki,
        "challenge = \"http-01\"\ndirectory = \"http://acme.test/dir\"",
    );
    let text = fs::read_to_string(&bad).unwrap().replace(
        "\"registry.example.com\"",
        "\"*.example.com\", \"10.1.2.3\"",
    );
    fs::write(&bad, text).unwrap();
    assert_refused(
        &portcullis(&["check"], &bad),
        &[
            "tls.acme.directory",
            "wildcard",
            "IP address",
            "tls.acme.http_listen: is missing",
        ],
    );

    let good = acme_config(&pki, "http_listen = \"127.0.0.1:8080\"");
    let out = portcullis(&["check"], &good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("acme:      https://acme-v02.api.letsencrypt.org/directory for registry.example.com by tls-alpn-01"), "{stdout}");
    assert!(stdout.contains("http:      127.0.0.1:8080"), "{stdout}");
    assert!(
        !pki.dir.path().join("acme").exists(),
        "check creates nothing"
    );
}

#[test]
fn acme_storage_that_cannot_be_created_stops_the_start() {
    let pki = Pki::new();
    fs::write(pki.dir.path().join("not-a-folder"), "x").unwrap();
    let config = acme_config(&pki, "");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("storage = \"acme\"", "storage = \"not-a-folder/acme\"");
    fs::write(&config, text).unwrap();
    assert_refused(
        &portcullis(&["serve"], &config),
        &["tls.acme.storage: cannot create", "not-a-folder"],
    );
}

#[test]
fn listen_address_in_use_is_refused() {
    let pki = Pki::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = config_with(&pki, |c| {
        let start = c.find("127.0.0.1:").unwrap();
        let end = c[start..].find('"').unwrap() + start;
        format!("{}127.0.0.1:{port}{}", &c[..start], &c[end..])
    });
    assert_refused(
        &portcullis(&["serve"], &config),
        &["cannot bind", &format!("127.0.0.1:{port}")],
    );
}

#[test]
fn check_summarises_a_good_config() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| c);
    let out = portcullis(&["check"], &config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        ": OK",
        "CN=localhost",
        "DNS:localhost",
        "IP:127.0.0.1",
        "chain #2",
        "ALPN h2, http/1.1",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
}

#[test]
fn certs_command_writes_a_set_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["certs", "--out"])
        .arg(dir.path())
        .args(["--name", "registry.test", "--name", "10.1.2.3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(dir.path().join("server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600, "private keys are owner-only");
    let config = dir.path().join("p.toml");
    fs::write(&config, "upstream = \"http://127.0.0.1:5000\"\nauth.allow_unauthenticated = true\n[tls]\ncertificate = \"server.crt\"\nkey = \"server.key\"\n").unwrap();
    let check = portcullis(&["check"], &config);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("DNS:registry.test") && stdout.contains("IP:10.1.2.3"),
        "{stdout}"
    );
}

#[test]
fn shipped_configs_are_valid() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    fs::create_dir_all(conf.join("examples")).unwrap();
    portcullis::cli::devcerts::write_dev_set(&root.path().join("certs/dev"), &["localhost"])
        .unwrap();
    portcullis::cli::devcerts::write_token_key(&root.path().join("certs/token"), "t", 30).unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/acl.toml"),
        conf.join("acl.toml"),
    )
    .unwrap();
    let htpasswd = portcullis::auth::htpasswd::hash_line("dev", "pw", 4).unwrap();
    fs::write(conf.join("htpasswd"), format!("{htpasswd}\n")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut configs = vec![("portcullis.toml".to_string(), conf.join("portcullis.toml"))];
    fs::copy(source.join("portcullis.toml"), &configs[0].1).unwrap();
    for entry in fs::read_dir(source.join("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let target = conf.join("examples").join(&name);
        fs::copy(source.join("examples").join(&name), &target).unwrap();
        configs.push((name, target));
    }
    assert!(
        configs.len() >= 6,
        "the five auth modes have examples: {configs:?}"
    );
    for (name, path) in configs {
        // The LDAP examples take the service account's password from the environment.
        let out = match name.starts_with("ldap-") {
            true => Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(["check", "--config"])
                .arg(&path)
                .env("PORTCULLIS_AUTH_LDAP_BIND_PASSWORD", "from-the-environment")
                .output()
                .unwrap(),
            false => portcullis(&["check"], &path),
        };
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn htpasswd_command_reads_stdin_and_prints_a_bcrypt_line() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["htpasswd", "ci-bot", "-C", "5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"p4ss:word\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("ci-bot:$2y$05$"), "{line}");
    let db = portcullis::auth::htpasswd::HtpasswdDb::parse(&line).unwrap();
    assert!(db.verify("ci-bot", "p4ss:word"));
}

#[test]
fn environment_overrides_config_keys() {
    let pki = Pki::new();
    let config = config_with(&pki, |c| {
        c.replace("http://127.0.0.1:5000", "http://127.0.0.1:5001")
    });
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .env("PORTCULLIS_UPSTREAM", "http://127.0.0.1:6000")
        .env("PORTCULLIS_TLS_MIN_VERSION", "1.3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("upstream:  http://127.0.0.1:6000") && stdout.contains("min 1.3"),
        "{stdout}"
    );
    let typo = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .env("PORTCULLIS_TLS_CERTIFCATE", "x")
        .output()
        .unwrap();
    assert_refused(
        &typo,
        &["PORTCULLIS_TLS_CERTIFCATE", "is not a Portcullis setting"],
    );
}

#[test]
fn readme_documents_every_environment_variable() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for key in portcullis::config::env::keys() {
        let var = portcullis::config::env::variable_for(key);
        assert!(readme.contains(&var), "README.md does not mention {var}");
        assert!(
            readme.contains(&format!("`{}`", key.rsplit('.').next().unwrap())),
            "README.md does not document {key}"
        );
    }
}
