use std::time::Duration;

use super::*;

const IP: &str = "192.0.2.1";

use crate::auth::tests::run;

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

/// A wrong password never tried before in this test process.
fn fresh_guess() -> Guess {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    Guess(NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Records `n` different wrong passwords from `from`, each through a reservation.
fn fail(t: &Throttle, from: &str, n: u32) {
    for _ in 0..n {
        run(t.reserve(ip(from)))
            .expect("not blocked yet")
            .failed(fresh_guess());
    }
}

#[test]
fn blocks_after_max_failures_within_the_window() {
    let t = Throttle::new(3, Duration::from_secs(60));
    fail(&t, IP, 2);
    assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
    fail(&t, IP, 1);
    let wait = t.blocked_for(IP.parse().unwrap()).expect("blocked");
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(matches!(run(t.reserve(ip(IP))), Err(w) if (1..=60).contains(&w)));
    assert!(
        run(t.reserve(ip("192.0.2.2"))).is_ok(),
        "other addresses are not affected"
    );
}

#[test]
fn window_expiry_and_success_reset() {
    let t = Throttle::new(2, Duration::from_millis(30));
    fail(&t, IP, 2);
    assert!(t.blocked_for(IP.parse().unwrap()).is_some());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
    fail(&t, IP, 1);
    run(t.reserve(ip(IP))).unwrap().succeeded();
    fail(&t, IP, 1);
    assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
}

#[test]
fn zero_disables() {
    let t = Throttle::new(0, Duration::from_secs(60));
    fail(&t, IP, 100);
    t.record_failure(IP.parse().unwrap());
    assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
    assert_eq!(t.tracked(), 0);
}

#[test]
fn at_most_max_failures_checks_run_before_any_has_ended() {
    run(async {
        let t = Throttle::new(5, Duration::from_secs(60));
        let held: Vec<_> = futures_held(&t, 5).await;
        // The sixth finds every slot taken: it waits rather than running a sixth check.
        let sixth = tokio::time::timeout(Duration::from_millis(100), t.reserve(ip(IP))).await;
        assert!(
            sixth.is_err(),
            "a sixth check must not start while five run"
        );
        for r in held {
            r.failed(fresh_guess());
        }
        assert!(t.reserve(ip(IP)).await.is_err(), "five failures: blocked");
    });
}

async fn futures_held(t: &Throttle, n: usize) -> Vec<Reservation<'_>> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(t.reserve(ip(IP)).await.expect("a free slot"));
    }
    held
}

#[test]
fn a_waiting_check_runs_when_a_running_one_succeeds_and_is_refused_when_it_fails() {
    run(async {
        let t = Throttle::new(1, Duration::from_secs(60));
        let first = t.reserve(ip(IP)).await.unwrap();
        let (waiting, _) = tokio::join!(t.reserve(ip(IP)), async {
            tokio::task::yield_now().await;
            first.succeeded();
        });
        let second = waiting.expect("a success frees the slot");
        let (third, _) = tokio::join!(t.reserve(ip(IP)), async {
            tokio::task::yield_now().await;
            second.failed(fresh_guess());
        });
        assert!(third.is_err(), "a failure blocks the waiter");
    });
}

#[test]
fn a_dropped_reservation_frees_its_slot_without_counting() {
    run(async {
        let t = Throttle::new(1, Duration::from_secs(60));
        drop(t.reserve(ip(IP)).await.unwrap());
        assert!(t.reserve(ip(IP)).await.is_ok());
        assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
    });
}

#[test]
fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
    let t = Throttle::new(2, Duration::from_secs(60));
    fail(&t, "2001:db8:1:2::1", 1);
    fail(&t, "2001:db8:1:2:ffff:ffff:ffff:fffe", 1);
    assert!(
        t.blocked_for("2001:db8:1:2::99".parse().unwrap()).is_some(),
        "one /64 is one client"
    );
    assert_eq!(t.blocked_for("2001:db8:1:3::1".parse().unwrap()), None);
    fail(&t, "::ffff:192.0.2.7", 2);
    assert!(t.blocked_for("192.0.2.7".parse().unwrap()).is_some());
}

#[test]
fn a_full_table_never_forgets_a_blocked_address_early() {
    let t = Throttle::new(2, Duration::from_secs(60));
    fail(&t, "198.51.100.1", 2);
    assert!(t.blocked_for("198.51.100.1".parse().unwrap()).is_some());
    // A flood of distinct addresses, each with one malformed header.
    for n in 0..(MAX_TRACKED as u32 + 50_000) {
        t.record_failure(IpAddr::V4((0x0a00_0000 + n).into()));
    }
    assert!(t.tracked() <= MAX_TRACKED + 1, "bounded: {}", t.tracked());
    assert!(
        t.blocked_for("198.51.100.1".parse().unwrap()).is_some(),
        "the blocked address is still blocked"
    );
    assert!(
        t.blocked_for(IpAddr::V4(
            (0x0a00_0000 + MAX_TRACKED as u32 + 49_999).into()
        ))
        .is_none()
            && t.tracked() > SWEEP_TO / 2,
        "recent unblocked addresses are still counted"
    );
}

#[test]
fn a_table_full_of_blocked_addresses_counts_new_ones_together() {
    let t = Throttle::new(1, Duration::from_secs(60));
    for n in 0..MAX_TRACKED as u32 {
        t.record_failure(IpAddr::V4((0x0a00_0000 + n).into()));
    }
    assert!(t.blocked_for("10.0.0.0".parse().unwrap()).is_some());
    fail(&t, "203.0.113.1", 1);
    assert!(
        run(t.reserve(ip("203.0.113.2"))).is_err(),
        "new addresses share the overflow counter, which is now blocked"
    );
    assert!(t.blocked_for("10.0.0.0".parse().unwrap()).is_some());
    assert!(t.tracked() <= MAX_TRACKED + 1);
}

#[test]
fn the_same_wrong_password_again_counts_once_and_is_known() {
    let t = Throttle::new(3, Duration::from_secs(60));
    let typo = Guess(7);
    assert!(!t.already_refused(ip(IP), typo));
    run(t.reserve(ip(IP))).unwrap().failed(typo);
    assert!(t.already_refused(ip(IP), typo));
    assert!(
        !t.already_refused(ip("192.0.2.2"), typo),
        "only for that address"
    );
    assert!(!t.already_refused(ip(IP), Guess(8)));
    // Two checks of the same credentials that ran at once count once as well.
    for _ in 0..5 {
        run(t.reserve(ip(IP))).unwrap().failed(typo);
    }
    assert_eq!(t.blocked_for(IP.parse().unwrap()), None);
    fail(&t, IP, 2);
    assert!(
        t.blocked_for(IP.parse().unwrap()).is_some(),
        "three different ones block"
    );
}

#[test]
fn refused_guesses_are_forgotten_with_the_window_and_on_success() {
    let t = Throttle::new(3, Duration::from_millis(30));
    let typo = Guess(9);
    run(t.reserve(ip(IP))).unwrap().failed(typo);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.already_refused(ip(IP), typo), "a new window");
    run(t.reserve(ip(IP))).unwrap().failed(typo);
    run(t.reserve(ip(IP))).unwrap().succeeded();
    assert!(!t.already_refused(ip(IP), typo), "forgiven by a success");
    assert!(!t.already_refused(None, typo), "no address, nothing known");
}
