//! Parsing `Authorization: Basic ...` (pure).
//!
//! Size-capped before decoding, scheme matched case-insensitively, user and password split at
//! the first colon (a password may contain colons; RFC 7617 forbids them in user names).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Longest `Authorization` value considered; longer ones are refused without decoding.
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// A user name and password from a Basic header. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why an `Authorization` header could not be used. Messages never include its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("the Authorization header is too long")]
    TooLong,
    #[error("the Authorization header does not use the Basic scheme")]
    NotBasic,
    #[error("the Basic credentials are not valid base64")]
    BadBase64,
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    #[error("the Basic credentials have no ':' between user and password")]
    NoColon,
    #[error("the Basic credentials have an empty user name")]
    EmptyUser,
    /// Empty user and empty password (`Basic Og==`): skopeo, podman and buildah answer a
    /// Basic challenge with it when they have no credentials, meaning "anonymous".
    #[error("the Basic credentials are empty (anonymous)")]
    Anonymous,
}

/// Parses an `Authorization` header value as Basic credentials.
pub fn parse_basic(value: &[u8]) -> Result<Credentials, BasicError> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(BasicError::TooLong);
    }
    let value = trim(value);
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(i) => (&value[..i], trim(&value[i + 1..])),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(BasicError::NotBasic);
    }
    let decoded = STANDARD.decode(rest).map_err(|_| BasicError::BadBase64)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicError::NotUtf8)?;
    let (user, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    match (user.is_empty(), password.is_empty()) {
        (true, true) => return Err(BasicError::Anonymous),
        (true, false) => return Err(BasicError::EmptyUser),
        _ => {}
    }
    Ok(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(raw: &[u8]) -> Vec<u8> {
        [b"Basic ".as_slice(), STANDARD.encode(raw).as_bytes()].concat()
    }

    #[test]
    fn parses_and_splits_at_the_first_colon() {
        let c = parse_basic(&header(b"alice:pa:ss:word")).unwrap();
        assert_eq!(c.user, "alice");
        assert_eq!(c.password, "pa:ss:word");
        assert_eq!(parse_basic(&header(b":")), Err(BasicError::Anonymous));
        assert_eq!(parse_basic(&header(b":pw")), Err(BasicError::EmptyUser));
        let empty_password = parse_basic(&header(b"bob:")).unwrap();
        assert_eq!(empty_password.password, "");
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_tolerated() {
        let v = format!("  bAsIc   {}  ", STANDARD.encode("alice:x"));
        assert_eq!(parse_basic(v.as_bytes()).unwrap().user, "alice");
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(parse_basic(&header(b"alice")), Err(BasicError::NoColon));
        assert_eq!(
            parse_basic(b"Basic !!!notbase64"),
            Err(BasicError::BadBase64)
        );
        assert_eq!(
            parse_basic(&header(&[0xff, 0xfe, b':', b'x'])),
            Err(BasicError::NotUtf8)
        );
        assert_eq!(parse_basic(&header(b":secret")), Err(BasicError::EmptyUser));
        assert_eq!(
            parse_basic(b"Bearer abc.def.ghi"),
            Err(BasicError::NotBasic)
        );
        assert_eq!(parse_basic(b"Basic"), Err(BasicError::NoColon));
        assert_eq!(parse_basic(b""), Err(BasicError::NotBasic));
        let long = header(&vec![b'a'; MAX_AUTHORIZATION_LEN]);
        assert_eq!(parse_basic(&long), Err(BasicError::TooLong));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = parse_basic(&header(b"alice:hunter2")).unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
