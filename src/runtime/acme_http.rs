//! `[tls.acme] http_listen`: the plain-HTTP listener. It answers the ACME server's http-01
//! validations (`GET /.well-known/acme-challenge/TOKEN`) and sends everything else to https
//! with a 308, so nothing is ever served in clear text.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::tls::acme::Acme;

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Serves `http_listen`.
pub struct AcmeHttpApp {
    pub acme: Arc<Acme>,
    /// The port of the first TLS `listen` address, for redirects (left out when 443).
    pub https_port: u16,
}

#[async_trait]
impl ServeHttp for AcmeHttpApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        if let Some(token) = path.strip_prefix(CHALLENGE_PREFIX) {
            return match self.acme.http_answer(token) {
                Some(answer) => {
                    tracing::info!("tls.acme: http-01 validation answered");
                    plain(200, answer.into_bytes())
                }
                None => plain(404, b"no such challenge\n".to_vec()),
            };
        }
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri.host());
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        match host.and_then(|h| redirect_location(h, target, self.https_port)) {
            Some(location) => Response::builder()
                .status(308)
                .header(http::header::LOCATION, location)
                .header(http::header::CONTENT_LENGTH, 0)
                .body(Vec::new())
                .unwrap_or_default(),
            None => plain(
                400,
                b"a Host header naming this server is required\n".to_vec(),
            ),
        }
    }
}

/// `https://HOST[:PORT]TARGET` for a request to `host` (its port dropped), or `None` when
/// `host` is not a plain host name or address.
pub fn redirect_location(host: &str, target: &str, https_port: u16) -> Option<String> {
    let name = match host.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next()?),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, _)| name)
            .to_string(),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-[]:".contains(c);
    if name.is_empty() || !name.chars().all(plain) {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let target = if target.starts_with('/') { target } else { "/" };
    Some(format!("https://{name}{port}{target}"))
}

fn plain(status: u16, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::redirect_location as location;

    #[test]
    fn redirects_keep_the_name_and_target_and_use_the_tls_port() {
        assert_eq!(
            location("registry.example.com", "/v2/?n=1", 443).as_deref(),
            Some("https://registry.example.com/v2/?n=1")
        );
        assert_eq!(
            location("registry.example.com:80", "/v2/", 5443).as_deref(),
            Some("https://registry.example.com:5443/v2/")
        );
        assert_eq!(
            location("[::1]:80", "/", 443).as_deref(),
            Some("https://[::1]/")
        );
        assert_eq!(location("evil.com/x", "/", 443), None);
        assert_eq!(location("a b", "/", 443), None);
        assert_eq!(location("", "/", 443), None);
        assert_eq!(
            location("r.example.com", "*", 443).as_deref(),
            Some("https://r.example.com/")
        );
    }
}
