//! Apache htpasswd files, bcrypt only (pure parsing; verification is [`HtpasswdDb::verify`]).
//!
//! registry:2 accepts bcrypt (`$2y$`, `$2a$`, `$2b$`) and nothing else; so does Portcullis,
//! and any other hash is a start-up error naming the file and line rather than a user who
//! silently cannot log in.

use std::collections::HashMap;

/// bcrypt cost used for unknown users when the file is empty.
const DEFAULT_COST: u32 = 10;

/// The users of one htpasswd file.
#[derive(Clone)]
pub struct HtpasswdDb {
    users: HashMap<String, String>,
    /// A hash of a random password at the file's highest cost: unknown users are checked
    /// against it so that they take as long as known ones.
    dummy_hash: String,
}

/// Two files are the same when they hold the same users and hashes; the dummy hash is
/// random on every parse and says nothing about the file.
impl PartialEq for HtpasswdDb {
    fn eq(&self, other: &Self) -> bool {
        self.users == other.users
    }
}

impl Eq for HtpasswdDb {}

impl std::fmt::Debug for HtpasswdDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtpasswdDb")
            .field("users", &self.users.len())
            .finish()
    }
}

/// One bad line: its number (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl HtpasswdDb {
    /// Parses the file's text. Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<HtpasswdDb, Vec<LineError>> {
        let mut users = HashMap::new();
        let mut errors = Vec::new();
        let mut max_cost = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((user, hash, cost)) => {
                    max_cost = max_cost.max(cost);
                    if users.insert(user.to_string(), hash.to_string()).is_some() {
                        errors.push(LineError {
                            line: index + 1,
                            message: format!("user \"{user}\" appears twice"),
                        });
                    }
                }
                Err(message) => errors.push(LineError {
                    line: index + 1,
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let cost = if max_cost == 0 {
            DEFAULT_COST
        } else {
            max_cost
        };
        let dummy_hash = dummy_hash(cost);
        Ok(HtpasswdDb { users, dummy_hash })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether `user` has a line.
    /// The user names.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a password, spending bcrypt time even for unknown users. CPU-heavy: call it
    /// off the async worker threads.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.dummy_hash);
                false
            }
        }
    }
}

/// An htpasswd line `user:$2y$...` for `password` at bcrypt `cost`, as `htpasswd -B` writes.
pub fn hash_line(user: &str, password: &str, cost: u32) -> Result<String, String> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err("the user name must be non-empty, without ':' or control characters".into());
    }
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    if !(4..=31).contains(&cost) {
        return Err("the cost must be between 4 and 31 (10 is usual)".into());
    }
    let hash = bcrypt::hash_with_result(password, cost).map_err(|e| format!("cannot hash: {e}"))?;
    Ok(format!(
        "{user}:{}",
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}

/// `user:hash` → (user, hash, cost), or why the line is refused.
fn parse_line(line: &str) -> Result<(&str, &str, u32), String> {
    let (user, hash) = line.split_once(':').ok_or("expected USER:HASH")?;
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    let hash = hash.trim();
    let kind = hash_kind(hash);
    if kind != "bcrypt" {
        return Err(format!(
            "user \"{user}\" has a {kind} hash; only bcrypt ($2y$, $2a$, $2b$) is accepted: recreate it with `portcullis htpasswd {user}` or `htpasswd -B`"
        ));
    }
    let cost = hash
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .filter(|c| (4..=31).contains(c));
    match cost {
        Some(cost) if hash.len() == 60 => Ok((user, hash, cost)),
        _ => Err(format!("user \"{user}\" has a malformed bcrypt hash")),
    }
}

/// Names the hash scheme, for messages.
fn hash_kind(hash: &str) -> &'static str {
    if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
        "bcrypt"
    } else if hash.starts_with("$apr1$") {
        "MD5 ($apr1$)"
    } else if hash.starts_with("{SHA}") {
        "SHA-1 ({SHA})"
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        "SHA-crypt"
    } else if hash.starts_with('$') {
        "unsupported"
    } else if hash.len() == 13 {
        "crypt(3)"
    } else {
        "plain-text or unknown"
    }
}

/// A bcrypt hash of a random password at `cost`.
fn dummy_hash(cost: u32) -> String {
    let mut secret = [0u8; 24];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret);
    let password = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret);
    bcrypt::hash(password, cost).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(user: &str, password: &str) -> String {
        format!("{user}:{}", bcrypt::hash(password, 4).unwrap())
    }

    #[test]
    fn parses_bcrypt_lines_with_comments_and_blanks() {
        let text = format!(
            "# users\n\n{}\n  {}  \n",
            line("alice", "wonderland"),
            line("bob", "pa:ss")
        );
        let db = HtpasswdDb::parse(&text).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.verify("alice", "wonderland"));
        assert!(db.verify("bob", "pa:ss"));
        assert!(!db.verify("alice", "wrong"));
        assert!(!db.verify("nobody", "wonderland"));
    }

    #[test]
    fn accepts_every_bcrypt_prefix() {
        let hash = bcrypt::hash("x", 4).unwrap();
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let text = format!("u:{prefix}{}", &hash[4..]);
            assert!(
                HtpasswdDb::parse(&text).unwrap().verify("u", "x"),
                "{prefix}"
            );
        }
    }

    #[test]
    fn other_hashes_are_refused_with_their_line() {
        let text = format!(
            "{}\nmd5:$apr1$abc$defghijklmnopqrstuvw\nsha:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\ncrypt:rl0uEpm8JbMls\nplain:secret\nnocolon\n",
            line("ok", "x")
        );
        let errors = HtpasswdDb::parse(&text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        assert!(errors[0].message.contains("MD5"));
        assert!(errors[1].message.contains("SHA-1"));
        assert!(errors[2].message.contains("crypt(3)"));
        assert!(errors[3].message.contains("plain-text"));
        assert!(
            errors.iter().all(|e| !e.message.contains("secret")),
            "no hash or password echoed"
        );
    }

    #[test]
    fn hash_line_round_trips() {
        let line = hash_line("carol", "s3cret:with:colons", 4).unwrap();
        assert!(line.starts_with("carol:$2y$04$"), "{line}");
        assert!(HtpasswdDb::parse(&line)
            .unwrap()
            .verify("carol", "s3cret:with:colons"));
        assert!(hash_line("a:b", "x", 4).is_err());
        assert!(hash_line("a", "", 4).is_err());
        assert!(hash_line("a", "x", 3).is_err());
    }

    #[test]
    fn duplicate_users_are_refused() {
        let text = format!("{}\n{}\n", line("a", "1"), line("a", "2"));
        assert_eq!(HtpasswdDb::parse(&text).unwrap_err()[0].line, 2);
    }

    #[test]
    fn the_same_file_parsed_twice_is_equal_and_an_edit_is_not() {
        let text = format!("{}\n", line("a", "1"));
        assert_eq!(
            HtpasswdDb::parse(&text).unwrap(),
            HtpasswdDb::parse(&text).unwrap()
        );
        let other = format!("{}\n", line("a", "1"));
        assert_ne!(
            HtpasswdDb::parse(&text).unwrap(),
            HtpasswdDb::parse(&other).unwrap()
        );
    }
}
