//! Parsing the address-like keys: `listen`, `upstream`, `trusted_proxies`, `[admin]`.

use std::net::{SocketAddr, ToSocketAddrs};

use super::file::{self, FileConfig};
use super::{Problem, Upstream};
use crate::registry::forwarding::TrustedProxies;

pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub(super) fn parse_listen(listen: &[String]) -> Result<Vec<SocketAddr>, Vec<Problem>> {
    if listen.is_empty() {
        return Err(vec![Problem::new(
            "listen",
            "is empty; give at least one address such as \"0.0.0.0:5443\"",
        )]);
    }
    let mut problems = Vec::new();
    let mut addrs = Vec::new();
    for text in listen {
        match text.parse::<SocketAddr>() {
            Ok(addr) => addrs.push(addr),
            Err(_) => problems.push(Problem::new(
                "listen",
                format!(
                "\"{text}\" is not an IP:PORT address; write e.g. \"0.0.0.0:5443\" or \"[::]:5443\""
            ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(addrs)
    } else {
        Err(problems)
    }
}

pub(super) fn parse_upstreams(
    upstream: Option<&file::OneOrMany>,
) -> Result<Vec<Upstream>, Vec<Problem>> {
    let Some(list) = upstream else {
        return parse_upstream(None).map(|u| vec![u]);
    };
    let items = list.items();
    if items.is_empty() {
        return Err(vec![Problem::new(
            "upstream",
            "is an empty list; give at least one registry URL",
        )]);
    }
    let mut problems = Vec::new();
    let parsed: Vec<Upstream> = items
        .into_iter()
        .filter_map(|u| {
            parse_upstream(Some(u))
                .map_err(|mut p| problems.append(&mut p))
                .ok()
        })
        .collect();
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(problems)
    }
}

pub(super) fn parse_upstream(upstream: Option<&str>) -> Result<Upstream, Vec<Problem>> {
    let bad = |m: String| vec![Problem::new("upstream", m)];
    let url = upstream.ok_or_else(|| {
        bad("is missing; set it to the plain-HTTP registry, e.g. \"http://127.0.0.1:5000\"".into())
    })?;
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        bad(format!("\"{url}\" must start with http://; Portcullis terminates TLS and talks plain HTTP to the registry"))
    })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(bad(format!(
            "\"{url}\" must be http://HOST:PORT with no path"
        )));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            bad(format!(
                "cannot resolve \"{authority}\"; check the host name and port"
            ))
        })?;
    Ok(Upstream {
        url: url.to_string(),
        addr,
    })
}

pub(super) fn parse_cidrs(cidrs: &[String]) -> Result<TrustedProxies, Vec<Problem>> {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    for text in cidrs {
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => problems.push(Problem::new(
                "trusted_proxies",
                format!("\"{text}\" is not a CIDR or IP address; write e.g. \"10.0.0.0/8\""),
            )),
        }
    }
    if problems.is_empty() {
        Ok(TrustedProxies(nets))
    } else {
        Err(problems)
    }
}

pub(super) fn parse_admin(file: &FileConfig) -> Result<Option<SocketAddr>, Vec<Problem>> {
    if !file.admin.enabled {
        return Ok(None);
    }
    file.admin.listen.parse::<SocketAddr>().map(Some).map_err(|_| {
        vec![Problem::new("admin.listen", format!("\"{}\" is not an IP:PORT address; write e.g. \"127.0.0.1:9444\", or set admin.enabled = false", file.admin.listen))]
    })
}
