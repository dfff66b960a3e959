//! The request parameters the registry acts on, parsed once by the gateway (pure).
//!
//! distribution reads its parameters (`mount`, `from`, `digest`, `_state`, `n`, `last`) with
//! Go's `r.FormValue`: a form-encoded or multipart **body** first, then the query; query
//! pairs that fail to parse (a bad `%` escape, a `;`) are skipped silently; the first valid
//! value wins. Other registries parse differently again. So the gateway authorizes on what
//! it parsed here and forwards only that: the query the registry receives is rebuilt from
//! [`Params`], pairs the gateway could not parse are dropped, a repeated name is refused,
//! and bodies a form parser would read are refused (see [`is_form_content_type`]).

use std::fmt;

/// The parsed query of a `/v2/` request, in order, each name at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Why a query is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// A parameter name appears more than once: parsers disagree on which value wins.
    Repeated(String),
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repeated(name) => write!(f, "the query parameter {name:?} is repeated"),
        }
    }
}

impl Params {
    /// Parses a raw query string the strict way: pieces split on `&`; a piece holding `;`
    /// or a bad percent escape is dropped (Go skips it too, other parsers may not, so it
    /// must not reach the registry); `+` is a space. A `mount` without a `from` is dropped:
    /// distribution 2.8 ignores it, but a registry that mounts from "anywhere" would read a
    /// repository the gateway never authorized.
    pub fn parse(raw: Option<&str>) -> Result<Params, ParamsError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in raw.unwrap_or_default().split('&') {
            let Some((name, value)) = parse_pair(piece) else {
                continue;
            };
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ParamsError::Repeated(name));
            }
            pairs.push((name, value));
        }
        let mut params = Params { pairs };
        if params.get("from").is_none() {
            params.pairs.retain(|(n, _)| n != "mount");
        }
        Ok(params)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query to forward: every parsed pair, percent-encoded again; `None` when empty.
    pub fn encode(&self) -> Option<String> {
        if self.pairs.is_empty() {
            return None;
        }
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            out.append_pair(name, value);
        }
        Some(out.finish())
    }
}

/// One `name=value` piece, decoded; `None` for an empty piece or one a strict parser
/// rejects (Go's `url.ParseQuery`: a `;` anywhere, or an invalid `%` escape).
fn parse_pair(piece: &str) -> Option<(String, String)> {
    if piece.is_empty() || piece.contains(';') {
        return None;
    }
    let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
    let name = unescape(name)?;
    if name.is_empty() {
        return None;
    }
    Some((name, unescape(value)?))
}

/// Query unescaping: `+` is a space, `%XY` a byte; `None` on a bad escape or non-UTF-8.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether a `Content-Type` value names a body that a form parser reads
/// (`application/x-www-form-urlencoded`, any `multipart/*`): distribution would take
/// `mount`, `from`, `digest` or `_state` from it. Registry clients never send these; a
/// monolithic upload is `application/octet-stream`.
pub fn is_form_content_type(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value).to_ascii_lowercase();
    let media = text.split(';').next().unwrap_or_default().trim();
    media == "application/x-www-form-urlencoded" || media.starts_with("multipart/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Params, ParamsError> {
        Params::parse(Some(raw))
    }

    #[test]
    fn pairs_a_strict_parser_rejects_are_dropped() {
        let p = parse("mount=sha256:ab&from=%zz&from=x;y&digest=sha256:cd").unwrap();
        assert_eq!(p.get("from"), None);
        assert_eq!(p.get("mount"), None, "a mount without from is dropped");
        assert_eq!(p.encode().as_deref(), Some("digest=sha256%3Acd"));
        assert_eq!(parse("a=%4").unwrap().get("a"), None);
        assert_eq!(parse("a=%ff").unwrap().get("a"), None, "not UTF-8");
        assert_eq!(parse("=v&&").unwrap(), Params::default());
    }

    #[test]
    fn the_value_forwarded_is_the_value_authorized() {
        // `%zz` is dropped, so the second `from` is the only one and it is what counts.
        let p = parse("mount=sha256:ab&from=%zz&from=team/secret").unwrap();
        assert_eq!(p.get("from"), Some("team/secret"));
        assert_eq!(
            p.encode().as_deref(),
            Some("mount=sha256%3Aab&from=team%2Fsecret")
        );
        // Escaped names are the same names.
        let p = parse("mount=d&fr%6fm=a/b").unwrap();
        assert_eq!(p.get("from"), Some("a/b"));
        assert_eq!(p.encode().as_deref(), Some("mount=d&from=a%2Fb"));
        assert_eq!(parse("n=10&last=a+b").unwrap().get("last"), Some("a b"));
    }

    #[test]
    fn repeated_names_are_refused() {
        for raw in [
            "mount=a&mount=b&from=x",
            "from=a&from=b",
            "digest=a&digest=b",
            "n=1&n=2",
            "_state=a&%5Fstate=b",
        ] {
            assert!(matches!(parse(raw), Err(ParamsError::Repeated(_))), "{raw}");
        }
        assert_eq!(Params::parse(None).unwrap().encode(), None);
    }

    #[test]
    fn form_content_types_are_recognised() {
        for v in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            "  multipart/form-data; boundary=x",
            "multipart/mixed",
        ] {
            assert!(is_form_content_type(v.as_bytes()), "{v}");
        }
        for v in [
            "application/octet-stream",
            "application/vnd.oci.image.manifest.v1+json",
            "",
        ] {
            assert!(!is_form_content_type(v.as_bytes()), "{v}");
        }
    }
}
