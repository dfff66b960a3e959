//! `portcullis explain`: what the ACL decides, and which rule decides it.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::auth::acl::{Acl, Decision, Kind, Subject};
use crate::config::Config;
use crate::registry::params::Params;
use crate::registry::scope::{format_scopes, parse_scopes, required_scopes, Scope};

/// Arguments of `portcullis explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    #[arg(long, short, default_value = "conf/portcullis.toml")]
    pub config: PathBuf,
    /// The user asking; leave out for an anonymous request.
    #[arg(long)]
    pub user: Option<String>,
    /// The user name comes from a client certificate.
    #[arg(long)]
    pub certificate: bool,
    /// The robot account asking (instead of --user).
    #[arg(long, conflicts_with_all = ["user", "certificate"])]
    pub robot: Option<String>,
    /// The client address (for rules with networks).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// A request such as 'PUT /v2/team-a/app/manifests/1'. Repeatable.
    #[arg(long = "request")]
    pub requests: Vec<String>,
    /// A token scope such as repository:team-a/app:pull,push. Repeatable.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// Prints each decision; `Err` when something asked is denied or the input is bad.
pub fn run(args: &ExplainArgs) -> Result<(), String> {
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    if args.requests.is_empty() && args.scopes.is_empty() {
        return Err("give --request 'METHOD /v2/...' or --scope TYPE:NAME:ACTIONS".into());
    }
    let robot_user = args.robot.as_deref().map(|r| format!("robot${r}"));
    let kind = match (&args.robot, args.certificate) {
        (Some(name), _) => Kind::Robot(name),
        (None, true) => Kind::Certificate,
        (None, false) => Kind::User,
    };
    let subject = Subject {
        user: robot_user.as_deref().or(args.user.as_deref()),
        kind,
        ip: args.ip,
    };
    let who = match (&args.robot, &args.user) {
        (Some(robot), _) => format!("robot {robot}"),
        (None, Some(user)) => format!("user {user}"),
        (None, None) => "anonymous".to_string(),
    };
    let mut all_allowed = true;
    for request in &args.requests {
        let scopes = scopes_of_request(request)?;
        println!(
            "{request} needs {}",
            if scopes.is_empty() {
                "no scope (authentication only)".to_string()
            } else {
                format_scopes(&scopes)
            }
        );
        all_allowed &= explain_scopes(&config.acl, &subject, &who, &scopes);
    }
    for text in &args.scopes {
        let scopes = parse_scopes(text);
        if scopes.is_empty() {
            return Err(format!(
                "\"{text}\" is not a scope such as repository:team-a/app:pull"
            ));
        }
        all_allowed &= explain_scopes(&config.acl, &subject, &who, &scopes);
    }
    if all_allowed {
        println!("decision: ALLOWED");
        Ok(())
    } else {
        Err("decision: DENIED".into())
    }
}

fn scopes_of_request(request: &str) -> Result<Vec<Scope>, String> {
    let (method, target) = request
        .trim()
        .split_once(' ')
        .ok_or_else(|| format!("\"{request}\" is not 'METHOD /v2/PATH'"))?;
    let (path, query) = match target.trim().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target.trim(), None),
    };
    let params = Params::parse(query).map_err(|e| format!("{request}: {e}"))?;
    required_scopes(&method.to_ascii_uppercase(), path, &params)
        .map_err(|e| format!("{request}: {e}; the gateway answers it without the registry"))
}

/// Prints one line per action; true when all are allowed.
fn explain_scopes(acl: &Acl, subject: &Subject<'_>, who: &str, scopes: &[Scope]) -> bool {
    let mut allowed = true;
    for scope in scopes {
        for action in &scope.actions {
            let decision = acl.decide(subject, &scope.resource, *action);
            let (kind, name) = scope.resource.type_and_name();
            let what = format!("{who}: {} {kind}:{name}", action.as_str());
            let rule_text =
                |n: Option<usize>| match n.and_then(|n| acl.rules.iter().find(|r| r.number == n)) {
                    Some(rule) => format!(
                        "rule {}{}",
                        rule.number,
                        rule.comment
                            .as_deref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    ),
                    None => "no rule (no [acl]: every authenticated user is allowed)".to_string(),
                };
            match &decision {
                Decision::Allow { rule } => println!("  {what}: allowed by {}", rule_text(*rule)),
                Decision::Deny { rule: Some(n), .. } => {
                    println!("  {what}: denied by {}", rule_text(Some(*n)))
                }
                Decision::Deny { rule: None, reason } => println!("  {what}: denied: {reason}"),
                Decision::ReadOnly => println!("  {what}: denied: read_only = true"),
            }
            allowed &= decision.allowed();
        }
    }
    allowed
}
