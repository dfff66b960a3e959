use super::*;

#[test]
fn registry_sockets_time_out_after_idle_and_probes_fit_inside_it() {
    let ka = upstream_keepalive(Duration::from_secs(900));
    assert_eq!(ka.user_timeout, Duration::from_secs(900));
    assert_eq!((ka.idle, ka.interval), (PROBE_AFTER, PROBE_EVERY));
    let short = upstream_keepalive(Duration::from_secs(5));
    assert_eq!(short.user_timeout, Duration::from_secs(5));
    assert!(short.idle <= Duration::from_secs(5) && short.interval <= Duration::from_secs(5));
}

#[test]
fn a_blocked_send_looks_for_progress_four_times_per_idle() {
    assert_eq!(
        look_every(Duration::from_secs(900)),
        Duration::from_secs(225)
    );
    assert_eq!(
        look_every(Duration::from_secs(1)),
        Duration::from_millis(250)
    );
}
