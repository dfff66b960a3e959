//! `portcullis explain`: what the ACL decides, and which rule decides it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::acl::{Acl, Decision, Kind, Subject};
use crate::auth::cache::CredentialCache;
use crate::auth::ldap::{Directory, LdapFailure, LdapUser};
use crate::auth::oidc::OidcIdentity;
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
    /// The holder of a token from this [[auth.oidc]] issuer (instead of --user).
    #[arg(long, conflicts_with_all = ["user", "certificate", "robot"])]
    pub oidc: Option<String>,
    /// The OIDC token's string claims, as name=value,name=value (with --oidc).
    #[arg(long, requires = "oidc", default_value = "")]
    pub claims: String,
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
    let identity = args
        .oidc
        .as_deref()
        .map(|issuer| oidc_identity(issuer, &args.claims));
    let identity = identity.transpose()?;
    let machine_user = match (&args.robot, &identity) {
        (Some(robot), _) => Some(format!("robot${robot}")),
        (None, Some(id)) => Some(id.user()),
        (None, None) => None,
    };
    let kind = match (&args.robot, &identity, args.certificate) {
        (Some(name), _, _) => Kind::Robot(name),
        (None, Some(id), _) => Kind::Oidc(id),
        (None, None, true) => Kind::Certificate,
        (None, None, false) => Kind::User,
    };
    let directory = match (&args.user, kind) {
        (Some(user), Kind::User) => directory_user(&config, user)?,
        _ => None,
    };
    let subject = Subject {
        user: machine_user
            .as_deref()
            .or(directory.as_ref().map(|d| d.name.as_str()))
            .or(args.user.as_deref()),
        kind,
        ip: args.ip,
        directory_groups: directory.as_ref().map_or(&[], |d| &d.groups[..]),
    };
    let who = match (&args.robot, &machine_user, &args.user) {
        (Some(robot), _, _) => format!("robot {robot}"),
        (None, Some(oidc), _) => format!("OIDC {oidc}"),
        (None, None, Some(user)) => format!("user {user}"),
        (None, None, None) => "anonymous".to_string(),
    };
    match config.limits.pull_limit(&config.acl, &subject) {
        Some(limit) => println!(
            "limits: {who}'s manifest GETs count against {}",
            limit.describe()
        ),
        None if !config.limits.pulls.is_empty() => {
            println!("limits: no pull limit applies to {who}")
        }
        None => {}
    }
    if let (Some(max), Some(_)) = (config.limits.max_concurrent_uploads, subject.user) {
        println!("limits: at most {max} upload requests of {who} at once");
    }
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
        explain_immutable(&config.acl, &subject, request);
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

/// `user` as the `[auth.ldap]` directory knows them (name and groups), as the gateway
/// would see them: `None` when there is no directory, the htpasswd file has the user (it
/// is tried first), or the directory does not.
fn directory_user(config: &Config, user: &str) -> Result<Option<LdapUser>, String> {
    let Some(settings) = &config.auth.ldap else {
        return Ok(None);
    };
    if config
        .auth
        .htpasswd
        .as_ref()
        .is_some_and(|h| h.db.has_user(user))
    {
        println!("directory: not asked, {user} is in the htpasswd file (tried first)");
        return Ok(None);
    }
    let directory = Directory::start(settings.clone(), CredentialCache::new(Duration::ZERO, 0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match runtime.block_on(directory.lookup(user)) {
        Ok(Some(found)) => {
            let groups: Vec<String> = found.groups.iter().map(|g| format!("ldap:{g}")).collect();
            let groups = match groups.is_empty() {
                true => "no groups".to_string(),
                false => groups.join(", "),
            };
            println!("directory: {} is in {groups}", found.name);
            Ok(Some(found))
        }
        Ok(None) => {
            println!("directory: {user} is not in the directory (a login as {user} would fail)");
            Ok(None)
        }
        Err(LdapFailure::Unavailable(why) | LdapFailure::Refused(why)) => {
            Err(format!("cannot look up {user} in the directory: {why}"))
        }
    }
}

/// The identity `--oidc ISSUER --claims k=v,...` describes (`sub` from the claims).
fn oidc_identity(issuer: &str, claims: &str) -> Result<OidcIdentity, String> {
    let mut map = std::collections::BTreeMap::new();
    for pair in claims.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--claims: \"{pair}\" is not name=value"))?;
        map.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(OidcIdentity {
        issuer: issuer.to_string(),
        subject: map.get("sub").cloned().unwrap_or_else(|| "-".into()),
        claims: map,
    })
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

/// For a manifest `PUT` or `DELETE`: the `[[acl.immutable]]` rule covering it, if any, and
/// whether the subject may override it.
fn explain_immutable(acl: &Acl, subject: &Subject<'_>, request: &str) {
    use crate::auth::immutable::{guard, overwrite_rule, Guard};
    let (method, path) = request.trim().split_once(' ').unwrap_or_default();
    let path = path.trim().split('?').next().unwrap_or_default();
    let Ok(crate::registry::scope::ApiCall::Manifest(name)) =
        crate::registry::scope::api_call(path)
    else {
        return;
    };
    let reference = path.rsplit('/').next().unwrap_or_default();
    let method = method.to_ascii_uppercase();
    let what = match guard(&acl.immutable, &method, &name, reference) {
        Guard::Free => return,
        Guard::Put { tag, rule } => format!(
            "tag {tag} is immutable by {}: refused once it exists, unless the same manifest",
            rule.describe()
        ),
        Guard::DeleteTag { tag, rule } => format!(
            "tag {tag} is immutable by {}: refused while it exists",
            rule.describe()
        ),
        Guard::DeleteDigest { digest } => {
            format!("{digest} is refused if an immutable tag of {name} points to it")
        }
    };
    let overwrite = match overwrite_rule(acl, subject, &name) {
        Some(n) => format!(
            "; this subject may override it (overwrite, rule {n}), and the override is audited"
        ),
        None => "; this subject may not override it (no overwrite)".to_string(),
    };
    println!("  immutable: {what}{overwrite}");
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
