//! instant-acme's HTTP, sent by the gateway's ureq agent (rustls on ring, the system's
//! CAs plus `tls.acme.ca`), on the blocking pool of the ACME thread's runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};

/// Time limit of one request to the ACME server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read (certificate chains are a few KiB).
const MAX_ANSWER: u64 = 1 << 20;

/// The client, remembering the last `Retry-After` the server sent with a 429 or 503.
#[derive(Clone)]
pub struct AcmeHttp {
    agent: ureq::Agent,
    retry_after: Arc<Mutex<Option<SystemTime>>>,
}

impl AcmeHttp {
    pub fn new(extra_roots: &[Vec<u8>]) -> Result<Self, String> {
        Ok(Self {
            agent: crate::tls::http_client::agent(extra_roots, REQUEST_TIMEOUT, true, false)?,
            retry_after: Arc::default(),
        })
    }

    /// The server's last `Retry-After`, taken (so it applies once).
    pub fn take_retry_after(&self) -> Option<SystemTime> {
        self.retry_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Full<Bytes>>, String> {
        let mut response = self.agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status();
        if status == http::StatusCode::TOO_MANY_REQUESTS
            || status == http::StatusCode::SERVICE_UNAVAILABLE
        {
            if let Some(at) = retry_after(response.headers()) {
                *self.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        let (parts, _) = response.into_parts();
        Ok(http::Response::from_parts(
            parts,
            Full::new(Bytes::from(body)),
        ))
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let client = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let Ok(collected) = body.collect().await;
            let body = collected.to_bytes().to_vec();
            let request = http::Request::from_parts(parts, body);
            let response = tokio::task::spawn_blocking(move || client.send(request))
                .await
                .map_err(|e| Error::Other(e.into()))?
                .map_err(|e| Error::Other(e.into()))?;
            Ok(BytesResponse::from(response))
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<SystemTime> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(SystemTime::now() + Duration::from_secs(seconds)),
        Err(_) => httpdate::parse_http_date(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        let at = retry_after(&headers).unwrap();
        let left = at.duration_since(SystemTime::now()).unwrap().as_secs();
        assert!((118..=120).contains(&left), "{left}");
        headers.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        let at = retry_after(&headers).unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
