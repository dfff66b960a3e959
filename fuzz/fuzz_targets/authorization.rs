//! `parse_basic` on arbitrary `Authorization` header values.
//!
//! Invariants: never panics; an Ok has a non-empty user without ':', came from a value no
//! longer than the cap, and the same credentials encoded again parse to themselves.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis::auth::basic::{parse_basic, MAX_AUTHORIZATION_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(credentials) = parse_basic(data) else {
        return;
    };
    assert!(!credentials.user.is_empty(), "empty user from {data:?}");
    assert!(
        !credentials.user.contains(':'),
        "user {:?} has a colon",
        credentials.user
    );
    assert!(data.len() <= MAX_AUTHORIZATION_LEN);

    let again = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", credentials.user, credentials.password))
    );
    if again.len() <= MAX_AUTHORIZATION_LEN {
        assert_eq!(
            parse_basic(again.as_bytes()).ok().as_ref(),
            Some(&credentials),
            "re-encoded credentials do not parse back"
        );
    }
});
