//! Command-line interface: `serve`, `check`, `certs`, `htpasswd`, `keygen`, `probe`,
//! `explain`, `robot`.

pub mod devcerts;
pub mod explain;
pub mod robot;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::format_time;
use crate::config::Config;
use crate::runtime::server;
use crate::telemetry::request_log;

/// TLS-terminating gateway for container registries.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short, default_value = "conf/portcullis.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and certificates, print a summary, and exit
    /// (0 when good, 1 with every problem listed when not).
    Check {
        #[arg(long, short, default_value = "conf/portcullis.toml")]
        config: PathBuf,
    },
    /// Write development certificates: a CA, an intermediate, and a server certificate
    /// (leaf + intermediate) for the given names. Not for production.
    Certs {
        /// Folder to write ca.crt, server.crt, server.key (and the CA keys) into.
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
        /// DNS names and IP addresses the server certificate is for.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1", "::1"])]
        names: Vec<String>,
        /// Also make a client certificate with this common name, in clients/NAME/
        /// (ca.crt, client.cert, client.key: a ready certs.d folder). Repeatable.
        #[arg(long = "client")]
        clients: Vec<String>,
    },
    /// Print an htpasswd line (bcrypt) for USER. The password is asked for, or read from
    /// standard input when that is not a terminal.
    Htpasswd {
        user: String,
        /// bcrypt cost (4..=31); each step doubles the work.
        #[arg(short = 'C', long = "cost", default_value_t = 10)]
        cost: u32,
    },
    /// Write a token signing key (token.key, ES256) and its certificate (token.crt), for
    /// [auth.token] and for registry:2's auth.token.rootcertbundle.
    Keygen {
        #[arg(long, default_value = "certs/token")]
        out: PathBuf,
        /// Common name of the certificate.
        #[arg(long, default_value = "Portcullis token signer")]
        name: String,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 1825)]
        days: i64,
    },
    /// GET a URL on the admin listener and exit 0 on 200 (container health checks).
    Probe {
        #[arg(default_value = "http://127.0.0.1:9444/healthz")]
        url: String,
    },
    /// Show what the ACL decides for a user and a request or scope, and which rule decides.
    /// Exits 0 when everything asked is allowed, 1 otherwise.
    Explain(crate::cli::explain::ExplainArgs),
    /// Robot accounts for machines without an identity provider: add (prints the secret
    /// once), list, remove.
    Robot(crate::cli::robot::RobotArgs),
}

/// Runs the parsed command; errors are printed here and turned into the exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => check(&config),
        Command::Certs {
            out,
            names,
            clients,
        } => certs(&out, &names, &clients),
        Command::Htpasswd { user, cost } => htpasswd(&user, cost),
        Command::Keygen { out, name, days } => keygen(&out, &name, days),
        Command::Explain(args) => crate::cli::explain::run(&args),
        Command::Probe { url } => probe(&url),
        Command::Robot(args) => crate::cli::robot::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portcullis: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    request_log::init(&config.log);
    server::serve(config, path)
}

fn check(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    println!("{}: OK", path.display());
    println!(
        "  listen:    {}",
        config
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  upstream:  {}",
        config
            .upstreams
            .iter()
            .map(|u| format!("{} ({})", u.url, u.addr))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tls = &config.tls;
    println!(
        "  tls:       min {}, ALPN {}",
        match tls.min_version {
            crate::config::TlsVersion::Tls12 => "1.2",
            crate::config::TlsVersion::Tls13 => "1.3",
        },
        if tls.http2 {
            "h2, http/1.1"
        } else {
            "http/1.1"
        }
    );
    if let Some(acme) = tls.acme() {
        println!(
            "  acme:      {} for {} by {}, stored in {} (not contacted by check)",
            acme.directory,
            acme.domains.join(", "),
            acme.challenge.as_str(),
            acme.storage.display()
        );
        if let Some(http) = acme.http_listen {
            println!("  http:      {http} (http-01 answers, the rest redirected to https)");
        }
    }
    let no_warnings = Vec::new();
    let (chain, warnings) = tls
        .identity()
        .map_or((&[][..], &no_warnings), |i| (&i.chain[..], &i.warnings));
    for (index, cert) in chain.iter().enumerate() {
        let role = if index == 0 { "server" } else { "chain" };
        println!("  {role} #{}: {}", index + 1, cert.subject);
        println!("      issuer: {}", cert.issuer);
        if !cert.names.is_empty() {
            println!("      names:  {}", cert.names.join(", "));
        }
        println!(
            "      valid:  {} .. {}",
            format_time(cert.not_before),
            format_time(cert.not_after)
        );
    }
    if let Some(ldap) = &config.auth.ldap {
        println!(
            "  ldap:      {} (not contacted by check)",
            ldap_summary(ldap)
        );
    }
    for warning in warnings {
        println!("  warning: tls.certificate: {warning}");
    }
    for warning in config.warnings() {
        println!("  warning: {warning}");
    }
    Ok(())
}

/// `[auth.ldap]` in one line: where, as whom, and where groups come from.
fn ldap_summary(ldap: &crate::auth::ldap::LdapSettings) -> String {
    use crate::auth::ldap::GroupLookup;
    let groups = match &ldap.groups {
        GroupLookup::None => "no groups".to_string(),
        GroupLookup::Search { base_dn, filter } => {
            format!("groups {} under {base_dn}", filter.as_str())
        }
        GroupLookup::MemberOf { attribute } => format!("groups from {attribute}"),
    };
    let tls = match (ldap.tls.is_some(), ldap.start_tls) {
        (true, true) => ", StartTLS",
        (true, false) => "",
        (false, _) => ", UNENCRYPTED (allow_insecure)",
    };
    format!(
        "{}{tls}, users {} under {} as {}, {groups}",
        ldap.url,
        ldap.user_filter.as_str(),
        ldap.base_dn,
        ldap.bind_dn
    )
}

/// A minimal HTTP/1.0 GET, so images need no curl.
fn probe(url: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs (the admin listener)")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(format!("cannot resolve {authority}"))?;
    let timeout = std::time::Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{url}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split(' ').nth(1).unwrap_or("no answer");
    if status == "200" {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

fn keygen(out: &Path, name: &str, days: i64) -> Result<(), String> {
    let (key, cert) = devcerts::write_token_key(out, name, days)?;
    println!("wrote {} and {}", key.display(), cert.display());
    println!(
        "[auth.token]\nkey = \"{}\"\ncertificate = \"{}\"",
        key.display(),
        cert.display()
    );
    println!(
        "registry:2 accepting these tokens: auth.token.rootcertbundle: {}",
        cert.display()
    );
    Ok(())
}

fn htpasswd(user: &str, cost: u32) -> Result<(), String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    println!(
        "{}",
        crate::auth::htpasswd::hash_line(user, &password, cost)?
    );
    Ok(())
}

fn certs(out: &Path, names: &[String], clients: &[String]) -> Result<(), String> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let set = devcerts::write_dev_set_with_clients(out, &names, &clients)?;
    for client in &clients {
        println!(
            "client certificate for {client}: {} (copy to /etc/docker/certs.d/HOST:PORT/)",
            out.join("clients").join(client).display()
        );
    }
    println!("wrote development certificates to {}", out.display());
    println!("  tls.certificate = \"{}\"", set.server_cert.display());
    println!("  tls.key         = \"{}\"", set.server_key.display());
    println!(
        "clients trust {}: copy it to /etc/docker/certs.d/HOST:PORT/ca.crt,",
        set.ca_cert.display()
    );
    println!(
        "  or give skopeo/podman --cert-dir {}",
        set.trust_dir.display()
    );
    Ok(())
}
