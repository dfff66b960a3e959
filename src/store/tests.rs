use super::*;

use crate::background::block_on as run;

#[test]
fn memory_counts_windows_and_gauges() {
    let store = Store::memory();
    let window = Duration::from_millis(300);
    assert_eq!(run(store.hit("a", window)).value, 1);
    let second = run(store.hit("a", window));
    assert_eq!(second.value, 2);
    assert!(second.reset_in <= window && second.reset_in > Duration::ZERO);
    assert_eq!(run(store.peek("a")).value, 2);
    assert_eq!(
        run(store.peek("b")),
        Count {
            value: 0,
            reset_in: Duration::ZERO
        }
    );
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(run(store.hit("a", window)).value, 1, "a new window");
    assert_eq!(run(store.add("u", 1, Duration::from_secs(60))), 1);
    assert_eq!(run(store.add("u", 1, Duration::from_secs(60))), 2);
    assert_eq!(
        run(store.add("u", -5, Duration::from_secs(60))),
        0,
        "never below zero"
    );
    run(store.set("r", 42, Duration::from_secs(60)));
    assert_eq!(run(store.get("r")), Some(42));
    assert_eq!(run(store.get("missing")), None);
}

#[test]
fn an_unreachable_redis_falls_back_to_local_counts_and_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Store::new(&StateSettings::Redis(RedisSettings {
        url: format!("redis://:secret-pw@127.0.0.1:{port}/"),
        prefix: "t:".into(),
        timeout: Duration::from_millis(300),
        ca: None,
    }));
    assert_eq!(run(store.hit("a", Duration::from_secs(60))).value, 1);
    assert_eq!(
        run(store.hit("a", Duration::from_secs(60))).value,
        2,
        "counted locally"
    );
    let mut out = String::new();
    store.render_metrics(&mut out);
    assert!(out.contains("portcullis_state_redis_up 0"), "{out}");
    assert!(
        out.contains("portcullis_state_redis_errors_total 1\n"),
        "one failure, then local for a second: {out}"
    );
    let settings = RedisSettings {
        url: "redis://:secret-pw@h:1/".into(),
        prefix: String::new(),
        timeout: Duration::ZERO,
        ca: None,
    };
    assert!(!format!("{settings:?}").contains("secret-pw"));
}
