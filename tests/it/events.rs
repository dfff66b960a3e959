//! Webhooks with a receiver started by the test, through the real registry with skopeo: a
//! push is one signed event with its facts, a failing receiver gets the event again until it
//! takes it, registry:2's envelope carries the actor, a dead receiver neither slows nor
//! blocks pushes and a full queue counts its drops, and SIGTERM delivers what is queued.

use crate::common;

use std::path::Path;

use common::oci::{self, Image};
use common::receiver::{Delivery, Receiver};
use common::tokens::basic;
use common::{skopeo, Stack};

const SECRET: &str = "a-long-random-webhook-secret";

/// dev pushes and pulls `prod/*`; bob only pulls.
fn stack(webhooks: &str) -> (tempfile::TempDir, Stack) {
    let dir = tempfile::tempdir().unwrap();
    common::write_htpasswd(&dir.path().join("htpasswd"), &["dev:dev-pw", "bob:bob-pw"]);
    let stack = Stack::start(&format!(
        "[auth.htpasswd]\npath = \"{}\"\n{webhooks}\n[[acl.rules]]\nusers = [\"dev\"]\nrepositories = [\"prod/*\"]\nactions = [\"*\"]\n[[acl.rules]]\nusers = [\"*\"]\nrepositories = [\"prod/*\"]\nactions = [\"pull\"]\n",
        dir.path().join("htpasswd").display()
    ));
    (dir, stack)
}

fn webhook(url: &str, extra: &str) -> String {
    format!(
        "[[events.webhook]]\nname = \"test\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n{extra}\n"
    )
}

fn image(dir: &Path, name: &str) -> (std::path::PathBuf, Image) {
    let path = dir.join(name);
    let image = oci::write_layout(&path, "v1", &[oci::tar_with_file("f", name.as_bytes())]);
    (path, image)
}

fn push(stack: &Stack, layout: &Path, tag: &str) {
    let certs = stack.pki.client_cert_dir();
    skopeo::push(
        &stack.gw.host(),
        &certs,
        "dev:dev-pw",
        layout,
        &format!("prod/app:{tag}"),
    );
}

fn metric(stack: &Stack, line: &str) -> Option<f64> {
    let (_, text) = stack.gw.admin_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().parse().ok())
}

fn signature_of(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!(
        "sha256={}",
        tag.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn of_type<'a>(got: &'a [Delivery], kind: &str) -> Vec<&'a Delivery> {
    got.iter()
        .filter(|d| d.header("X-Portcullis-Event") == Some(kind))
        .collect()
}

#[test]
fn a_push_is_one_signed_cloud_event_with_who_and_what() {
    let receiver = Receiver::start(&[]);
    let (dir, stack) = stack(&webhook(&receiver.url(), ""));
    let (layout, image) = image(dir.path(), "a");
    push(&stack, &layout, "v1");
    let got = receiver.wait_for("a push event", |got| !of_type(got, "push").is_empty());
    let pushes = of_type(&got, "push");
    assert_eq!(pushes.len(), 1, "{got:#?}");
    let event = pushes[0];
    assert_eq!(
        event.header("Content-Type"),
        Some("application/cloudevents+json")
    );
    assert_eq!(
        event.header("X-Portcullis-Signature"),
        Some(signature_of(&event.body).as_str()),
        "the signature verifies"
    );
    let v = event.json();
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["type"], "io.portcullis.registry.push");
    assert_eq!(v["id"], event.header("X-Portcullis-Delivery").unwrap());
    assert_eq!(v["subject"], "prod/app:v1");
    let data = &v["data"];
    assert_eq!(data["user"], "dev");
    assert_eq!(data["auth"], "basic");
    assert_eq!(data["repository"], "prod/app");
    assert_eq!(data["tag"], "v1");
    assert_eq!(data["digest"], image.manifest.digest.as_str());
    assert_eq!(data["size"], image.manifest.size);
    assert_eq!(
        data["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(data["client"], "127.0.0.1");
    assert_eq!(
        metric(
            &stack,
            "portcullis_events_deliveries_total{webhook=\"test\",outcome=\"ok\"}"
        ),
        Some(got.len() as f64)
    );
}

#[test]
fn a_failing_receiver_gets_the_same_event_again_until_it_takes_it() {
    let receiver = Receiver::start(&[500, 500]);
    let (dir, stack) = stack(&webhook(&receiver.url(), "events = [\"push\"]"));
    let (layout, _) = image(dir.path(), "a");
    push(&stack, &layout, "v1");
    let got = receiver.wait_for("three attempts", |got| got.len() >= 3);
    assert_eq!(
        got.iter().map(|d| d.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let ids: Vec<_> = got
        .iter()
        .map(|d| d.header("X-Portcullis-Delivery").unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, retried: {ids:?}"
    );
    assert!(got.iter().all(|d| d.body == got[0].body));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(receiver.deliveries().len(), 3, "nothing after it was taken");
    assert_eq!(
        metric(
            &stack,
            "portcullis_events_deliveries_total{webhook=\"test\",outcome=\"error\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &stack,
            "portcullis_events_deliveries_total{webhook=\"test\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn the_distribution_envelope_carries_the_actor_of_pulls_deletes_and_refusals() {
    let receiver = Receiver::start(&[]);
    let (dir, stack) = stack(&webhook(
        &receiver.url(),
        "format = \"distribution\"\nevents = [\"pull\", \"delete\", \"denied\"]",
    ));
    let (layout, image) = image(dir.path(), "a");
    push(&stack, &layout, "v1");
    let work = tempfile::tempdir().unwrap();
    let certs = stack.pki.client_cert_dir();
    skopeo::skopeo(
        work.path(),
        &[
            "copy",
            "--src-creds",
            "bob:bob-pw",
            "--src-cert-dir",
            certs.to_str().unwrap(),
            &format!("docker://{}/prod/app:v1", stack.gw.host()),
            &format!("oci:{}:v1", work.path().join("pulled").display()),
        ],
    );
    let path = format!("/v2/prod/app/manifests/{}", image.manifest.digest);
    assert_eq!(
        stack
            .request("DELETE", &path, &[&basic("bob:bob-pw")])
            .status,
        403
    );
    assert_eq!(
        stack
            .request("DELETE", &path, &[&basic("dev:dev-pw")])
            .status,
        202
    );
    let got = receiver.wait_for("pull, denied and delete", |got| got.len() >= 3);
    assert!(of_type(&got, "push").is_empty(), "push was not asked for");
    let actions: Vec<(String, String)> = got
        .iter()
        .map(|d| {
            assert_eq!(
                d.header("Content-Type"),
                Some("application/vnd.docker.distribution.events.v1+json")
            );
            let e = &d.json()["events"][0];
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("pull".into(), "bob".into()),
            ("denied".into(), "bob".into()),
            ("delete".into(), "dev".into())
        ]
    );
    let pull = &got[0].json()["events"][0];
    assert_eq!(pull["target"]["repository"], "prod/app");
    assert_eq!(pull["target"]["tag"], "v1");
    assert_eq!(pull["target"]["digest"], image.manifest.digest.as_str());
    assert_eq!(pull["request"]["method"], "GET");
}

#[test]
fn a_dead_receiver_does_not_hold_up_pushes_and_a_full_queue_counts_drops() {
    let dead = format!("http://127.0.0.1:{}/hook", common::free_port());
    let (dir, stack) = stack(&webhook(
        &dead,
        "events = [\"push\"]\nqueue = 2\nmax_retries = 100",
    ));
    for tag in ["t1", "t2", "t3", "t4", "t5"] {
        let (layout, _) = image(dir.path(), tag);
        push(&stack, &layout, tag);
    }
    assert_eq!(
        metric(
            &stack,
            "portcullis_events_deliveries_total{webhook=\"test\",outcome=\"ok\"}"
        ),
        Some(0.0),
        "every push completed while no delivery succeeded"
    );
    assert!(
        metric(
            &stack,
            "portcullis_events_deliveries_total{webhook=\"test\",outcome=\"error\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        metric(&stack, "portcullis_events_dropped_total{webhook=\"test\"}"),
        Some(2.0),
        "one event being retried, two queued, two dropped"
    );
    assert_eq!(
        metric(&stack, "portcullis_events_queued{webhook=\"test\"}"),
        Some(3.0)
    );
    assert!(stack.gw.proc.log_text().contains("event delivery failed"));
    assert!(
        !stack.gw.proc.log_text().contains(SECRET),
        "the secret is never logged"
    );
}

#[test]
fn sigterm_delivers_what_is_queued_before_exiting() {
    let receiver = Receiver::start(&[500]);
    let (dir, mut stack) = stack(&webhook(&receiver.url(), "events = [\"push\"]"));
    let (layout, _) = image(dir.path(), "a");
    push(&stack, &layout, "v1");
    stack.gw.proc.terminate();
    let got = receiver.deliveries();
    assert_eq!(
        got.iter().map(|d| d.answered).collect::<Vec<_>>(),
        [500, 200],
        "the retry happened before the exit"
    );
    assert!(stack
        .gw
        .proc
        .log_text()
        .contains("delivering queued events before exiting"));
}
