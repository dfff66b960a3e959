//! `parse_scopes` on arbitrary token-request scope strings.
//!
//! Invariants: never panics; every repository name is valid; actions are sorted without
//! duplicates; printing the scopes and parsing them again gives the same scopes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::registry::scope::{is_repository_name, parse_scopes, Resource};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scopes = parse_scopes(&text);
    for scope in &scopes {
        if let Resource::Repository(name) = &scope.resource {
            assert!(
                is_repository_name(name),
                "invalid repository {name:?} from {text:?}"
            );
        }
        assert!(
            scope.actions.windows(2).all(|w| w[0] < w[1]),
            "actions not sorted and unique: {scope:?}"
        );
    }
    let printed: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let again = parse_scopes(&printed.join(" "));
    assert_eq!(again, scopes, "{text:?} printed as {printed:?}");
});
