//! Search filters with placeholders, and group names from DNs (pure).
//!
//! A user name goes into an LDAP filter only through [`Template::render`], which escapes
//! it per RFC 4515 (`*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`): a
//! name such as `*` or `alice)(uid=*` is then just an odd name that matches nobody, never a
//! wildcard or a second condition.

use std::borrow::Cow;

/// A filter such as `(&(objectClass=person)(uid={user}))`, checked once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
}

impl Template {
    /// Checks `text`: parenthesised, balanced, and its `{NAME}` placeholders among
    /// `allowed`, with at least one of `required`.
    pub fn parse(text: &str, allowed: &[&str], required: &[&str]) -> Result<Template, String> {
        let text = text.trim();
        if !text.starts_with('(') || !text.ends_with(')') {
            return Err(format!(
                "\"{text}\" is not a filter: it must be in parentheses, e.g. (uid={{user}})"
            ));
        }
        let mut depth = 0i32;
        for c in text.chars() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            if depth < 0 {
                break;
            }
        }
        if depth != 0 {
            return Err(format!("\"{text}\": its parentheses do not balance"));
        }
        let names = placeholders(text)?;
        if let Some(bad) = names.iter().find(|n| !allowed.contains(n)) {
            return Err(format!(
                "\"{text}\": {{{bad}}} is not a placeholder here (use {})",
                list(allowed)
            ));
        }
        if !required.iter().any(|r| names.contains(r)) {
            return Err(format!("\"{text}\" must contain {}", list(required)));
        }
        Ok(Template {
            text: text.to_string(),
        })
    }

    /// The filter with each `{NAME}` replaced by its value of `values`, escaped.
    pub fn render(&self, values: &[(&str, &str)]) -> String {
        let mut out = self.text.clone();
        for (name, value) in values {
            out = out.replace(&format!("{{{name}}}"), &escape(value));
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `{a}, {b}` for messages.
fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The `{NAME}`s of `text`.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("\"{text}\": a {{ without its }}"))?;
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// A value escaped for use inside a filter (RFC 4515).
pub fn escape(value: &str) -> Cow<'_, str> {
    ldap3::ldap_escape(value)
}

/// The group name in a group's DN: the value of its first RDN when that RDN's attribute is
/// `attribute` (`cn=registry-admins,ou=groups,dc=example,dc=com` → `registry-admins` for
/// `cn`), with RFC 4514 escapes (`\,`, `\2C`) undone. `None` for other DNs.
pub fn group_name_of_dn(dn: &str, attribute: &str) -> Option<String> {
    let (kind, rest) = dn.split_once('=')?;
    if !kind.trim().eq_ignore_ascii_case(attribute) {
        return None;
    }
    let mut value = Vec::new();
    let mut bytes = rest.trim_start().bytes();
    while let Some(b) = bytes.next() {
        match b {
            b',' | b'+' => break,
            b'\\' => {
                let next = bytes.next()?;
                let hex = |c: u8| (c as char).to_digit(16);
                match hex(next) {
                    Some(high) => {
                        let low = bytes.next().and_then(hex)?;
                        value.push((high * 16 + low) as u8);
                    }
                    None => value.push(next),
                }
            }
            other => value.push(other),
        }
    }
    let name = String::from_utf8(value).ok()?;
    let name = name.trim_end().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_in_user_names_are_escaped() {
        let t =
            Template::parse("(&(objectClass=person)(uid={user}))", &["user"], &["user"]).unwrap();
        assert_eq!(
            t.render(&[("user", "alice")]),
            "(&(objectClass=person)(uid=alice))"
        );
        assert_eq!(
            t.render(&[("user", "*")]),
            "(&(objectClass=person)(uid=\\2a))"
        );
        assert_eq!(
            t.render(&[("user", "x)(uid=*")]),
            "(&(objectClass=person)(uid=x\\29\\28uid=\\2a))"
        );
        assert_eq!(
            t.render(&[("user", "a\\b\0")]),
            "(&(objectClass=person)(uid=a\\5cb\\00))"
        );
        let g = Template::parse("(member={dn})", &["dn", "user"], &["dn", "user"]).unwrap();
        assert_eq!(
            g.render(&[("dn", "cn=a(b),dc=x"), ("user", "u")]),
            "(member=cn=a\\28b\\29,dc=x)"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let parse = |t| Template::parse(t, &["user"], &["user"]).unwrap_err();
        assert!(
            parse("uid={user}").contains("parentheses"),
            "{}",
            parse("uid={user}")
        );
        assert!(parse("(&(uid={user})").contains("balance"));
        assert!(parse("(uid=alice)").contains("must contain {user}"));
        assert!(parse("(uid={name})").contains("{name} is not a placeholder"));
        assert!(parse("(uid={user)").contains("without its"));
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        let name = |dn| group_name_of_dn(dn, "cn");
        assert_eq!(
            name("cn=registry-admins,ou=groups,dc=example,dc=com").as_deref(),
            Some("registry-admins")
        );
        assert_eq!(
            name("CN=Dev\\, Ops,OU=Groups,DC=corp").as_deref(),
            Some("Dev, Ops")
        );
        assert_eq!(name("cn=a\\2Cb,dc=x").as_deref(), Some("a,b"));
        assert_eq!(name("ou=people,dc=x"), None);
        assert_eq!(name("cn=,dc=x"), None);
        assert_eq!(name("garbage"), None);
    }
}
