//! The client's `Connection` header (pure): which headers it names as hop-by-hop.
//!
//! RFC 9110 §7.6.1: headers named in `Connection` are meant for the gateway alone and are not
//! forwarded. pingora 0.9 applies that itself but refuses (400) a request naming `Host` or an
//! `X-Forwarded-*` header, although such a request is legal. So the gateway settles the
//! header first: it removes each header named (after using it, e.g. `Authorization`),
//! keeps those it must keep or replaces anyway (`Host`, framing, forwarding headers), and
//! leaves only the connection options pingora acts on (`close`, `keep-alive`).

use crate::registry::forwarding::FORWARDING_HEADERS;

/// Named headers that stay: `Host` (the registry builds URLs from it), framing (already
/// used to read the body), and the forwarding headers (replaced by the gateway's own).
const KEPT: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
];

/// What to do with a request's `Connection` header values.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// Headers to remove before forwarding (lower case).
    pub remove: Vec<String>,
    /// The `Connection` value to keep, if any: `close` or `keep-alive`.
    pub options: Option<&'static str>,
}

/// Reads every `Connection` value. Tokens that are not HTTP tokens (a quoted name, say)
/// name nothing and are ignored, as RFC 9110 allows.
pub fn plan<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> ConnectionPlan {
    let mut plan = ConnectionPlan::default();
    let (mut close, mut keep_alive) = (false, false);
    for token in values
        .into_iter()
        .flat_map(|v| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty() && t.iter().all(|b| is_tchar(*b)))
    {
        let name = String::from_utf8_lossy(token).to_ascii_lowercase();
        match name.as_str() {
            "close" => close = true,
            "keep-alive" => keep_alive = true,
            kept if KEPT.contains(&kept) || FORWARDING_HEADERS.contains(&kept) => {}
            _ if plan.remove.contains(&name) => {}
            _ => plan.remove.push(name),
        }
    }
    plan.options = if close {
        Some("close")
    } else if keep_alive {
        Some("keep-alive")
    } else {
        None
    };
    plan
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[&str]) -> ConnectionPlan {
        plan(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn named_headers_are_removed_and_protected_ones_kept() {
        let p = of(&[
            "X-Forwarded-For, X-Custom",
            "host, Authorization,x-custom, X-Forwarded-Proto",
        ]);
        assert_eq!(p.remove, ["x-custom", "authorization"]);
        assert_eq!(p.options, None);
    }

    #[test]
    fn close_wins_over_keep_alive_and_is_all_that_stays() {
        assert_eq!(of(&["keep-alive, Close"]).options, Some("close"));
        assert_eq!(of(&["Keep-Alive"]).options, Some("keep-alive"));
        assert_eq!(of(&[]), ConnectionPlan::default());
    }

    #[test]
    fn malformed_tokens_name_nothing() {
        let p = of(&[
            "\"X-Custom\", :authority, a b, , ,,",
            "Content-Length, Transfer-Encoding, TE",
        ]);
        assert_eq!(p, ConnectionPlan::default());
    }

    #[test]
    fn many_tokens_are_deduplicated() {
        let value = vec!["x-a"; 1000].join(",");
        assert_eq!(of(&[&value]).remove, ["x-a"]);
    }
}
