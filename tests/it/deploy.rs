//! The deployment files in deploy/ are checked as far as this machine allows: Kubernetes
//! manifests against the API schemas (kubernetes-validate), the systemd unit with
//! `systemd-analyze verify`, YAML parsed, every embedded Portcullis config through `check`,
//! and the image's health probe against a running gateway.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{require_tool, Stack};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every document of a YAML file, as JSON (PyYAML, which kubernetes-validate brings).
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(require_tool("python3"))
        .args(["-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kubernetes_validate(path: &Path) -> Output {
    Command::new(require_tool("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(path)
        .output()
        .unwrap()
}

/// Runs `portcullis check` on `toml` with `/etc/portcullis` moved to a folder holding a
/// generated certificate (`tls_names` = (cert, key) file names) and an htpasswd file.
fn check_embedded_config(toml: &str, tls_names: (&str, &str)) -> Output {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    let set = portcullis::cli::devcerts::write_dev_set(
        &root.path().join("pki"),
        &["registry.example.com"],
    )
    .unwrap();
    let text = toml.replace("/etc/portcullis", etc.to_str().unwrap());
    let config = etc.join("portcullis.toml");
    fs::create_dir_all(etc.join("tls")).unwrap();
    fs::create_dir_all(etc.join("users")).unwrap();
    fs::write(&config, text).unwrap();
    for (name, source) in [
        (tls_names.0, &set.server_cert),
        (tls_names.1, &set.server_key),
    ] {
        let target = config.parent().unwrap().join(name);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(source, target).unwrap();
    }
    let htpasswd = format!(
        "{}\n",
        portcullis::auth::htpasswd::hash_line("admin", "pw", 4).unwrap()
    );
    for place in ["users/htpasswd", "htpasswd"] {
        fs::write(etc.join(place), &htpasswd).unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .env("PORTCULLIS_UPSTREAM", "http://127.0.0.1:5000")
        .output()
        .unwrap()
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let manifest = repo("deploy/kubernetes/portcullis.yaml");
    let out = kubernetes_validate(&manifest);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator itself catches mistakes (a control that must fail).
    let scratch = tempfile::tempdir().unwrap();
    let broken = scratch.path().join("broken.yaml");
    fs::write(
        &broken,
        fs::read_to_string(&manifest)
            .unwrap()
            .replace("replicas: 2", "replicas: two"),
    )
    .unwrap();
    assert!(
        !kubernetes_validate(&broken).status.success(),
        "kubernetes-validate accepted replicas: two"
    );

    let docs = yaml_documents(&manifest);
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let deployment = kind("Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    assert_eq!(kind("PodDisruptionBudget")["spec"]["minAvailable"], 1);
    assert_eq!(kind("Service")["spec"]["ports"][0]["targetPort"], "https");

    let toml = kind("ConfigMap")["data"]["portcullis.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let out = check_embedded_config(&toml, ("tls/tls.crt", "tls/tls.key"));
    assert!(
        out.status.success(),
        "the ConfigMap's config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = fs::read_to_string(repo("deploy/systemd/portcullis.service")).unwrap();
    for directive in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(directive), "missing {directive}");
    }
    let dir = tempfile::tempdir().unwrap();
    let verify = |text: &str| {
        let path = dir.path().join("portcullis.service");
        fs::write(
            &path,
            text.replace(
                "/usr/local/bin/portcullis",
                env!("CARGO_BIN_EXE_portcullis"),
            ),
        )
        .unwrap();
        Command::new(require_tool("systemd-analyze"))
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = verify(&unit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("portcullis.service"),
        "systemd-analyze verify: {stderr}"
    );
    let broken = verify(&unit.replace("ProtectSystem=strict", "ProtectSystemm=strict"));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("ProtectSystemm"),
        "systemd-analyze reports unknown directives"
    );
}

#[test]
fn compose_file_and_its_config_are_valid() {
    let docs = yaml_documents(&repo("deploy/compose/docker-compose.yml"));
    let services = &docs[0]["services"];
    assert_eq!(services["registry"]["image"], "registry:2");
    assert!(
        services["registry"]["environment"]["REGISTRY_HTTP_SECRET"].is_string(),
        "replicas need one http.secret"
    );
    assert_eq!(
        services["portcullis"]["build"]["dockerfile"],
        "deploy/Dockerfile"
    );
    assert_eq!(
        services["portcullis"]["environment"]["PORTCULLIS_UPSTREAM"],
        "http://registry:5000"
    );
    let toml = fs::read_to_string(repo("deploy/compose/portcullis.toml"))
        .unwrap()
        .replace("certs/", "/etc/portcullis/certs/")
        .replace("path = \"htpasswd\"", "path = \"/etc/portcullis/htpasswd\"");
    let out = check_embedded_config(&toml, ("certs/server.crt", "certs/server.key"));
    assert!(
        out.status.success(),
        "compose's portcullis.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_runs_unprivileged_and_probes_with_the_binary() {
    let dockerfile = fs::read_to_string(repo("deploy/Dockerfile")).unwrap();
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(
        final_stage.contains("USER nonroot"),
        "the final image runs as non-root"
    );
    assert!(
        final_stage.contains("HEALTHCHECK") && final_stage.contains("\"probe\""),
        "health check by `portcullis probe`"
    );
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        for source in line
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.ends_with('/') && *w != "./")
        {
            if Some(source) != line.split_whitespace().last() {
                assert!(repo(source).exists(), "COPY source {source} is missing");
            }
        }
    }
    // The probe the image uses, against a real gateway's admin listener.
    let mut stack = Stack::start("");
    let probe = |path: &str| {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("probe")
            .arg(format!("http://127.0.0.1:{}{path}", stack.gw.admin_port))
            .status()
            .unwrap()
            .success()
    };
    assert!(probe("/healthz"));
    assert!(probe("/readyz"));
    stack.registry.stop();
    assert!(!probe("/readyz"), "probe fails when the backend is down");
}
