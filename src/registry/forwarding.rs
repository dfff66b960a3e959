//! Forwarded headers towards the registry (pure).
//!
//! distribution builds upload `Location` URLs from `Forwarded` (which wins over everything),
//! else `X-Forwarded-Proto` and the first `X-Forwarded-Host`, else `Host`; and it trusts any
//! sender. So the gateway drops every such header a client sent, unless the client is a
//! configured trusted proxy, and sets its own.

use std::net::IpAddr;

use ipnet::IpNet;

/// Headers the gateway owns towards the backend. Whatever a client sent under these names is
/// removed before the gateway's own values are set.
pub const FORWARDING_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
];

/// Networks whose `X-Forwarded-*` headers are believed (`trusted_proxies` in the config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` lies in a trusted network; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// What the client sent that matters for forwarding.
#[derive(Debug, Clone, Default)]
pub struct ForwardingInput<'a> {
    /// The TCP peer's address.
    pub peer: Option<IpAddr>,
    /// `Host`, or the HTTP/2 `:authority`.
    pub host: Option<&'a str>,
    /// Every `X-Forwarded-For` header value, in order.
    pub x_forwarded_for: Vec<&'a str>,
    pub x_forwarded_proto: Option<&'a str>,
    pub x_forwarded_host: Option<&'a str>,
}

/// The headers the gateway sends to the backend, and the client address it decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// The original client: the peer, or for a trusted peer the nearest untrusted hop of
    /// `X-Forwarded-For`. Used for `X-Real-IP` and the access log.
    pub client_ip: Option<IpAddr>,
    /// `(name, value)` pairs to set after removing [`FORWARDING_HEADERS`].
    pub set: Vec<(&'static str, String)>,
}

/// Decides the forwarded headers for one request.
pub fn plan_forwarding(input: &ForwardingInput<'_>, trusted: &TrustedProxies) -> Forwarding {
    let peer_trusted = input.peer.is_some_and(|p| trusted.contains(p));
    let chain: Vec<&str> = if peer_trusted {
        input
            .x_forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let client_ip = client_from_chain(&chain, input.peer, trusted);

    let mut set = Vec::with_capacity(5);
    let peer_text = input.peer.map(|p| p.to_canonical().to_string());
    let xff = match (chain.is_empty(), &peer_text) {
        (false, Some(peer)) => Some(format!("{}, {peer}", chain.join(", "))),
        (false, None) => Some(chain.join(", ")),
        (true, peer) => peer.clone(),
    };
    if let Some(xff) = xff {
        set.push(("X-Forwarded-For", xff));
    }
    if let Some(ip) = client_ip {
        set.push(("X-Real-IP", ip.to_string()));
    }
    let proto = trusted_value(peer_trusted, input.x_forwarded_proto).unwrap_or("https");
    set.push(("X-Forwarded-Proto", proto.to_string()));
    if let Some(host) = trusted_value(peer_trusted, input.x_forwarded_host).or(input.host) {
        set.push(("X-Forwarded-Host", host.to_string()));
    }
    Forwarding { client_ip, set }
}

/// A client-sent value, kept only when the peer is a trusted proxy and the value is not blank.
fn trusted_value(peer_trusted: bool, value: Option<&str>) -> Option<&str> {
    value
        .map(str::trim)
        .filter(|v| peer_trusted && !v.is_empty())
}

/// Walks `X-Forwarded-For` from the right past trusted hops; the first untrusted hop is the
/// client. An unparsable hop stops the walk at the hop after it (it cannot be vouched for).
fn client_from_chain(
    chain: &[&str],
    peer: Option<IpAddr>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = peer.map(|p| p.to_canonical())?;
    for hop in chain.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    Some(client)
}

/// Parses an `X-Forwarded-For` hop: a bare address, `[v6]:port`, or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// The host the client addressed: `Host`, else the request URI's authority (HTTP/2).
pub fn effective_host<'a>(
    host_header: Option<&'a str>,
    authority: Option<&'a str>,
) -> Option<&'a str> {
    host_header
        .or(authority)
        .map(str::trim)
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn get<'a>(f: &'a Forwarding, name: &str) -> Option<&'a str> {
        f.set
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn untrusted_peer_headers_are_replaced() {
        let input = ForwardingInput {
            peer: Some("203.0.113.7".parse().unwrap()),
            host: Some("registry.example.com:5443"),
            x_forwarded_for: vec!["6.6.6.6"],
            x_forwarded_proto: Some("http"),
            x_forwarded_host: Some("evil.example"),
        };
        let f = plan_forwarding(&input, &trusted(&["10.0.0.0/8"]));
        assert_eq!(get(&f, "X-Forwarded-For"), Some("203.0.113.7"));
        assert_eq!(get(&f, "X-Real-IP"), Some("203.0.113.7"));
        assert_eq!(get(&f, "X-Forwarded-Proto"), Some("https"));
        assert_eq!(
            get(&f, "X-Forwarded-Host"),
            Some("registry.example.com:5443")
        );
        assert_eq!(f.client_ip, Some("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn trusted_peer_chain_is_extended_and_client_found() {
        let input = ForwardingInput {
            peer: Some("10.0.0.2".parse().unwrap()),
            host: Some("internal:5443"),
            x_forwarded_for: vec!["198.51.100.9, 10.0.0.1"],
            x_forwarded_proto: Some("https"),
            x_forwarded_host: Some("registry.example.com"),
        };
        let f = plan_forwarding(&input, &trusted(&["10.0.0.0/8"]));
        assert_eq!(
            get(&f, "X-Forwarded-For"),
            Some("198.51.100.9, 10.0.0.1, 10.0.0.2")
        );
        assert_eq!(get(&f, "X-Real-IP"), Some("198.51.100.9"));
        assert_eq!(get(&f, "X-Forwarded-Host"), Some("registry.example.com"));
    }

    #[test]
    fn trusted_peer_cannot_smuggle_garbage_as_client() {
        let input = ForwardingInput {
            peer: Some("10.0.0.2".parse().unwrap()),
            x_forwarded_for: vec!["not-an-ip"],
            ..Default::default()
        };
        let f = plan_forwarding(&input, &trusted(&["10.0.0.0/8"]));
        assert_eq!(f.client_ip, Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_peer_is_matched_as_ipv4() {
        let t = trusted(&["127.0.0.0/8"]);
        assert!(t.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.contains("::1".parse().unwrap()));
    }

    #[test]
    fn hops_with_ports_parse() {
        assert_eq!(parse_hop("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(parse_hop("192.0.2.1:80"), "192.0.2.1".parse().ok());
        assert_eq!(parse_hop("unknown"), None);
    }

    #[test]
    fn host_falls_back_to_authority() {
        assert_eq!(effective_host(None, Some("h:1")), Some("h:1"));
        assert_eq!(effective_host(Some("a:2"), Some("h:1")), Some("a:2"));
        assert_eq!(effective_host(Some(" "), None), None);
    }
}
