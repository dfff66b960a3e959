//! `portcullis robot add|list|remove`: robot accounts in the robots file.
//!
//! The file is rewritten whole (a temporary file renamed over it), so a running gateway
//! reads either the old or the new version, never half of one; it notices the change
//! within a second.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::auth::robots::{parse_lifetime, Robot, RobotsDb, USER_PREFIX};
use crate::clock::{format_time, unix_now};

/// Arguments of `portcullis robot`.
#[derive(Debug, clap::Args)]
pub struct RobotArgs {
    #[command(subcommand)]
    pub action: RobotAction,
    /// The robots file; default: `[auth.robots] path` of --config.
    #[arg(long, global = true)]
    pub file: Option<PathBuf>,
    #[arg(long, short, global = true, default_value = "conf/portcullis.toml")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum RobotAction {
    /// Create robot NAME and print its secret, once (the file keeps only a hash). Creates
    /// the file when it does not exist.
    Add {
        name: String,
        /// Lifetime: a number and d, h, m or s (e.g. 90d). Default: never expires.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show each robot's name, creation, expiry and description.
    List,
    /// Revoke robot NAME at once.
    Remove { name: String },
}

/// Runs one `robot` command.
pub fn run(args: &RobotArgs) -> Result<(), String> {
    let path = match &args.file {
        Some(path) => path.clone(),
        None => robots_path_of(&args.config)?,
    };
    match &args.action {
        RobotAction::Add {
            name,
            expires,
            description,
        } => add(&path, name, expires.as_deref(), description),
        RobotAction::List => list(&path),
        RobotAction::Remove { name } => remove(&path, name),
    }
}

/// `auth.robots.path` of the configuration file, relative to its folder, read without
/// validating the rest (the robots file may not exist yet).
fn robots_path_of(config: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("cannot read {}: {e}; give --file", config.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", config.display(), e.message()))?;
    let path = table
        .get("auth")
        .and_then(|a| a.get("robots"))
        .and_then(|r| r.get("path"))
        .and_then(|p| p.as_str())
        .ok_or_else(|| {
            format!(
                "{} has no [auth.robots] path; add one, or give --file",
                config.display()
            )
        })?;
    let base = config.parent().unwrap_or(Path::new("."));
    Ok(crate::config::resolve_path(base, path))
}

/// The robots in `path`; none when it does not exist.
fn read(path: &Path) -> Result<RobotsDb, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            RobotsDb::parse(&text).map_err(|e| format!("{}: {}", path.display(), e.join("; ")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RobotsDb::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `path` with `db`'s text, atomically.
fn write(path: &Path, db: &RobotsDb) -> Result<(), String> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let written = std::fs::File::create(&temporary)
        .and_then(|mut f| {
            f.write_all(db.to_text().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn add(path: &Path, name: &str, expires: Option<&str>, description: &str) -> Result<(), String> {
    let mut db = read(path)?;
    let now = unix_now();
    let expires = expires
        .map(|text| parse_lifetime(text).map(|seconds| now + seconds))
        .transpose()?;
    let (robot, secret) = Robot::create(name, now, expires, description)?;
    db.add(robot)?;
    write(path, &db)?;
    eprintln!(
        "robot {name} added to {}; it logs in as user {USER_PREFIX}{name}{}. The secret is shown once:",
        path.display(),
        expires.map_or(String::new(), |at| format!(" until {}", format_time(at)))
    );
    println!("{secret}");
    Ok(())
}

fn list(path: &Path) -> Result<(), String> {
    let db = read(path)?;
    let now = unix_now();
    println!(
        "{:<24} {:<22} {:<30} DESCRIPTION",
        "NAME", "CREATED", "EXPIRES"
    );
    for robot in db.robots() {
        let expires = match robot.expires {
            None => "never".to_string(),
            Some(at) if at <= now => format!("{} (expired)", format_time(at)),
            Some(at) => format_time(at),
        };
        println!(
            "{:<24} {:<22} {:<30} {}",
            robot.name,
            format_time(robot.created),
            expires,
            robot.description
        );
    }
    Ok(())
}

fn remove(path: &Path, name: &str) -> Result<(), String> {
    let mut db = read(path)?;
    if !db.remove(name) {
        return Err(format!("{} has no robot \"{name}\"", path.display()));
    }
    write(path, &db)?;
    eprintln!("robot {name} removed from {}", path.display());
    Ok(())
}
