//! Robot accounts (pure): the robots file, its secrets and their hashes.
//!
//! A robot is a credential for a machine that has no identity provider: `portcullis robot
//! add` makes a random secret, prints it once, and writes only a hash of it to the robots
//! file. Secrets are 256 random bits, so no password-hashing work is needed to protect
//! them: the file keeps HMAC-SHA256 of the secret under a random per-robot salt, and a
//! check costs microseconds (no bcrypt bill for CI jobs that log in on every run).
//! Secrets start with [`SECRET_PREFIX`], so secret scanners can recognise leaked ones.
//!
//! Robots log in with Basic auth as `robot$NAME` (Harbor's convention).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The start of every robot secret.
pub const SECRET_PREFIX: &str = "pcr_";
/// The user-name prefix robots log in with.
pub const USER_PREFIX: &str = "robot$";
/// The hash scheme written to the file, before its salt and digest.
const SCHEME: &str = "hmac-sha256";

/// The file as written: a comment, then one `[[robots]]` table per robot.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRobots {
    #[serde(default)]
    robots: Vec<FileRobot>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRobot {
    name: String,
    /// `hmac-sha256:SALT:DIGEST`, both base64url.
    hash: String,
    /// RFC 3339.
    created: String,
    /// RFC 3339; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
}

/// One robot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub name: String,
    salt: Vec<u8>,
    digest: Vec<u8>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None`: never expires.
    pub expires: Option<i64>,
    pub description: String,
}

/// The outcome of checking a robot's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotVerdict {
    Valid,
    /// Unknown robot or wrong secret (not told apart to the client).
    Invalid,
    /// The secret is right but the robot expired at this Unix time.
    Expired(i64),
}

/// The robots of one file, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RobotsDb {
    robots: BTreeMap<String, Robot>,
}

/// Whether `name` may name a robot: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or
/// digit (it appears in logs, rules and user names).
pub fn is_robot_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The robot name of a Basic-auth user name `robot$NAME`, if it is one.
pub fn robot_of_user(user: &str) -> Option<&str> {
    user.strip_prefix(USER_PREFIX)
}

fn random(len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random generator failed".to_string())?;
    Ok(bytes)
}

fn digest(salt: &[u8], secret: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), secret.as_bytes())
        .as_ref()
        .to_vec()
}

fn parse_time(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("\"{text}\" is not an RFC 3339 time such as 2027-01-31T12:00:00Z"))
}

impl Robot {
    /// A new robot and its secret (shown once, never stored).
    pub fn create(
        name: &str,
        now: i64,
        expires: Option<i64>,
        description: &str,
    ) -> Result<(Robot, String), String> {
        if !is_robot_name(name) {
            return Err(format!("\"{name}\" is not a robot name: use 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit"));
        }
        let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(random(32)?));
        let salt = random(16)?;
        let robot = Robot {
            name: name.to_string(),
            digest: digest(&salt, &secret),
            salt,
            created: now,
            expires,
            description: description.to_string(),
        };
        Ok((robot, secret))
    }

    /// Whether `secret` is this robot's (in constant time).
    fn holds(&self, secret: &str) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.salt);
        hmac::verify(&key, secret.as_bytes(), &self.digest).is_ok()
    }

    fn from_file(file: FileRobot) -> Result<Robot, String> {
        if !is_robot_name(&file.name) {
            return Err(format!("\"{}\" is not a robot name", file.name));
        }
        let mut parts = file.hash.split(':');
        let (scheme, salt, digest) = (parts.next(), parts.next(), parts.next());
        let decode = |p: Option<&str>| p.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
        let (Some(SCHEME), Some(salt), Some(digest), None) =
            (scheme, decode(salt), decode(digest), parts.next())
        else {
            return Err(format!(
                "robot \"{}\": hash must be {SCHEME}:SALT:DIGEST (made by `portcullis robot add`)",
                file.name
            ));
        };
        Ok(Robot {
            created: parse_time(&file.created)?,
            expires: file.expires.as_deref().map(parse_time).transpose()?,
            name: file.name,
            salt,
            digest,
            description: file.description,
        })
    }

    fn to_file(&self) -> FileRobot {
        FileRobot {
            name: self.name.clone(),
            hash: format!(
                "{SCHEME}:{}:{}",
                URL_SAFE_NO_PAD.encode(&self.salt),
                URL_SAFE_NO_PAD.encode(&self.digest)
            ),
            created: crate::clock::format_time(self.created),
            expires: self.expires.map(crate::clock::format_time),
            description: self.description.clone(),
        }
    }
}

impl RobotsDb {
    /// Parses the robots file; every problem is listed.
    pub fn parse(text: &str) -> Result<RobotsDb, Vec<String>> {
        let file: FileRobots = toml::from_str(text).map_err(|e| vec![e.message().to_string()])?;
        let mut robots = BTreeMap::new();
        let mut problems = Vec::new();
        for entry in file.robots {
            match Robot::from_file(entry) {
                Ok(robot) if robots.contains_key(&robot.name) => {
                    problems.push(format!("robot \"{}\" is listed twice", robot.name))
                }
                Ok(robot) => {
                    robots.insert(robot.name.clone(), robot);
                }
                Err(e) => problems.push(e),
            }
        }
        match problems.is_empty() {
            true => Ok(RobotsDb { robots }),
            false => Err(problems),
        }
    }

    /// The file's text: hashes only.
    pub fn to_text(&self) -> String {
        let file = FileRobots {
            robots: self.robots.values().map(Robot::to_file).collect(),
        };
        let body = toml::to_string(&file).unwrap_or_default();
        format!("# Portcullis robot accounts, written by `portcullis robot`. It holds hashes, never secrets.\n\n{body}")
    }

    pub fn get(&self, name: &str) -> Option<&Robot> {
        self.robots.get(name)
    }

    pub fn robots(&self) -> impl Iterator<Item = &Robot> {
        self.robots.values()
    }

    pub fn len(&self) -> usize {
        self.robots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.robots.is_empty()
    }

    /// Adds `robot`; refused when the name is taken.
    pub fn add(&mut self, robot: Robot) -> Result<(), String> {
        if self.robots.contains_key(&robot.name) {
            return Err(format!(
                "robot \"{}\" exists; remove it first to make a new secret",
                robot.name
            ));
        }
        self.robots.insert(robot.name.clone(), robot);
        Ok(())
    }

    /// Removes a robot; `false` when there was none of that name.
    pub fn remove(&mut self, name: &str) -> bool {
        self.robots.remove(name).is_some()
    }

    /// Checks robot `name`'s `secret` at Unix time `now`.
    pub fn verify(&self, name: &str, secret: &str, now: i64) -> RobotVerdict {
        match self.robots.get(name) {
            Some(robot) if robot.holds(secret) => match robot.expires {
                Some(at) if now >= at => RobotVerdict::Expired(at),
                _ => RobotVerdict::Valid,
            },
            _ => RobotVerdict::Invalid,
        }
    }

    /// Whether robot `name` exists and has not expired at `now` (a refresh token's re-check).
    pub fn is_active(&self, name: &str, now: i64) -> bool {
        self.robots
            .get(name)
            .is_some_and(|r| r.expires.is_none_or(|at| now < at))
    }
}

/// Parses a lifetime such as `90d`, `12h`, `30m` or `45s` into seconds.
pub fn parse_lifetime(text: &str) -> Result<i64, String> {
    let bad = || format!("\"{text}\" is not a lifetime: use a number and d, h, m or s, e.g. 90d");
    let unit = text.chars().last().ok_or_else(bad)?;
    let per = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    let count: i64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    match count.checked_mul(per) {
        Some(seconds) if seconds > 0 => Ok(seconds),
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[path = "robots_tests.rs"]
mod tests;
