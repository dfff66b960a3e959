//! When to order: renewal time and the back-off after failures (pure).

use std::time::{Duration, SystemTime};

/// First wait after a failed order; it doubles with each further failure.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest wait between two attempts of our own choosing.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// Longest wait a server's `Retry-After` can impose (a longer one is capped).
const LONGEST_SERVER_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The Unix time at which a certificate valid from `not_before` to `not_after` is renewed:
/// `renew_before` ahead of expiry, or when a third of its lifetime is left.
pub fn renew_at(not_before: i64, not_after: i64, renew_before: Option<Duration>) -> i64 {
    let ahead = match renew_before {
        Some(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        None => (not_after - not_before).max(0) / 3,
    };
    not_after.saturating_sub(ahead)
}

/// How long to wait after the `failures`-th failure in a row (1 for the first): 10 s,
/// doubling, at most an hour; longer when the server asked for it with `Retry-After`.
pub fn retry_in(failures: u32, retry_after: Option<SystemTime>, now: SystemTime) -> Duration {
    let doubled = FIRST_RETRY
        .checked_mul(1u32 << failures.saturating_sub(1).min(16))
        .unwrap_or(LONGEST_RETRY)
        .min(LONGEST_RETRY);
    let asked = retry_after
        .and_then(|at| at.duration_since(now).ok())
        .unwrap_or_default()
        .min(LONGEST_SERVER_WAIT);
    doubled.max(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_at_a_third_of_the_lifetime_left_or_as_configured() {
        // 90 days: renewed with 30 days left.
        let day = 86_400;
        assert_eq!(renew_at(0, 90 * day, None), 60 * day);
        assert_eq!(
            renew_at(0, 90 * day, Some(Duration::from_secs(10 * day as u64))),
            80 * day
        );
        // Asking for more than the lifetime means "renew now".
        assert!(renew_at(100, 200, Some(Duration::from_secs(1000))) < 100);
        assert!(renew_at(0, 60, Some(Duration::MAX)) < 0);
    }

    #[test]
    fn backs_off_doubling_and_respects_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let waits: Vec<u64> = (1..=4).map(|n| retry_in(n, None, now).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80]);
        assert_eq!(retry_in(40, None, now), LONGEST_RETRY);
        let later = now + Duration::from_secs(600);
        assert_eq!(retry_in(1, Some(later), now), Duration::from_secs(600));
        // A past Retry-After changes nothing; an absurd one is capped.
        assert_eq!(
            retry_in(1, Some(now - Duration::from_secs(5)), now).as_secs(),
            10
        );
        let absurd = now + Duration::from_secs(365 * 86_400);
        assert_eq!(retry_in(1, Some(absurd), now), LONGEST_SERVER_WAIT);
    }
}
