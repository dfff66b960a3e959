//! Every unknown key of a config file, each named by its full dotted path.
//!
//! serde stops at the first unknown field and toml's error points at a byte, not a table: a
//! `[bogus]` table after `[tls]` was reported as `tls.bogus`. Here the file is deserialized
//! from its parsed table with `serde_path_to_error`, which names the table that holds the
//! unknown field; the field is removed and the file deserialized again, until none is left.

use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::file::FileConfig;
use super::Problem;

/// More unknown keys than any real file holds; past this the rest go unreported.
const MAX_REPORTED: usize = 100;

/// `table` as file structs, or every unknown key in it (then the first other problem, if
/// any). `text` is the file, to give line numbers.
pub fn deserialize(table: Table, text: &str) -> Result<FileConfig, Vec<Problem>> {
    let mut root = Value::Table(table);
    let mut problems: Vec<(Option<usize>, Problem)> = Vec::new();
    while problems.len() < MAX_REPORTED {
        let error = match serde_path_to_error::deserialize(root.clone()) {
            Ok(file) if problems.is_empty() => return Ok(file),
            Ok(_) => return Err(in_file_order(problems)),
            Err(error) => error,
        };
        let mut segments: Vec<Segment> = error.path().iter().cloned().collect();
        let message = error.inner().message().trim().to_string();
        let Some(field) = unknown_field(&message) else {
            problems.push((None, Problem::new(dotted(&segments, None), message)));
            return Err(in_file_order(problems));
        };
        // The path ends at the unknown field itself.
        if matches!(segments.last(), Some(Segment::Map { key }) if key == field) {
            segments.pop();
        }
        let key = dotted(&segments, Some(field));
        let line_no = line_of(text, &key);
        let line = line_no.map_or_else(String::new, |n| format!(" (line {n})"));
        problems.push((line_no, Problem::new(
            key.clone(),
            format!("unknown field `{field}`; remove it or fix its spelling (see the key reference in README.md){line}"),
        )));
        if !remove(&mut root, &segments, field) {
            return Err(in_file_order(problems));
        }
    }
    Err(in_file_order(problems))
}

/// Problems by line, those without one last (serde meets keys in sorted order).
fn in_file_order(mut problems: Vec<(Option<usize>, Problem)>) -> Vec<Problem> {
    problems.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
    problems.into_iter().map(|(_, p)| p).collect()
}

/// The field of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")?
        .split_once('`')
        .map(|(field, _)| field)
}

/// `auth.token.bogus`, `acl.rules[2].bogus`.
fn dotted(segments: &[Segment], field: Option<&str>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    match field {
        Some(field) if out.is_empty() => field.to_string(),
        Some(field) => format!("{out}.{field}"),
        None if out.is_empty() => "(file)".to_string(),
        None => out,
    }
}

/// Removes `field` from the table at `segments`; false when that path is not there.
fn remove(root: &mut Value, segments: &[Segment], field: &str) -> bool {
    let mut here = root;
    for segment in segments {
        let next = match (segment, here) {
            (Segment::Map { key }, Value::Table(t)) => t.get_mut(key.as_str()),
            (Segment::Seq { index }, Value::Array(a)) => a.get_mut(*index),
            _ => None,
        };
        match next {
            Some(value) => here = value,
            None => return false,
        }
    }
    match here {
        Value::Table(t) => t.remove(field).is_some(),
        _ => false,
    }
}

/// The line where `key` (dotted, last part the field) is written, best effort: under its
/// `[table]` header, or as a table header itself.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let plain = key.split('[').next().unwrap_or(key);
    let (table, field) = plain.rsplit_once('.').unwrap_or(("", plain));
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(['[', ']']).trim();
            if name == plain {
                return Some(n + 1);
            }
            current = name.to_string();
            continue;
        }
        let written = line.split('=').next().unwrap_or_default().trim();
        if line.contains('=')
            && current == table
            && (written == field || written == format!("{table}.{field}"))
        {
            return Some(n + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let table: Table = text.parse().unwrap();
        match deserialize(table, text) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .into_iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect(),
        }
    }

    #[test]
    fn every_unknown_key_is_named_by_its_own_table() {
        let text = "upstream = \"http://127.0.0.1:5000\"\nlisten = [\"127.0.0.1:5443\"]\n[tls]\ncertificate = \"c\"\nkey = \"k\"\ncolour = 1\n[bogus]\nx = 1\n[admin]\n[auth.kerberos]\nrealm = \"x\"\n";
        let found = problems(text);
        let keys: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(keys, ["tls.colour", "bogus", "auth.kerberos"], "{found:#?}");
        assert!(found[0].ends_with("(line 6)"), "{}", found[0]);
        assert!(found[1].ends_with("(line 7)"), "{}", found[1]);
        assert!(found[2].ends_with("(line 10)"), "{}", found[2]);
    }

    #[test]
    fn unknown_keys_in_arrays_of_tables_name_their_entry() {
        let text = "upstream = \"http://127.0.0.1:5000\"\n[[acl.rules]]\nwho = 1\n[[acl.rules]]\nrepositori = \"x\"\n";
        let found = problems(text);
        assert!(
            found.iter().any(|p| p.starts_with("acl.rules[0].who:")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("acl.rules[1].repositori:")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_file_without_unknown_keys_passes_through() {
        let text =
            "upstream = \"http://127.0.0.1:5000\"\n[tls]\ncertificate = \"c\"\nkey = \"k\"\n";
        assert!(problems(text).is_empty());
    }
}
