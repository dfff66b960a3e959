//! The answers the gateway writes itself (its errors, tokens, the health check) and the
//! token endpoint's form body it reads: the session I/O the hooks in `proxy.rs` share.

use bytes::Bytes;
use http::Method;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use crate::auth::token_endpoint::MAX_FORM;
use crate::registry::answers::{GatewayError, GatewayResponse};

/// Reads a POST body up to the token endpoint's limit; `None` when it is larger.
pub async fn read_form(session: &mut Session) -> pingora::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_FORM {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A `200` JSON answer that must not be cached (tokens).
pub async fn write_json(session: &mut Session, json: Bytes) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(200, Some(3))?;
    header.insert_header("Content-Type", "application/json")?;
    header.insert_header("Content-Length", json.len().to_string())?;
    header.insert_header("Cache-Control", "no-store")?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(json), true).await
}

/// What to answer after a proxying error; `None` when the client is gone.
pub fn failure_answer(e: &Error) -> Option<GatewayError> {
    use ErrorType::*;
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(400)) => Some(GatewayError::BadRequest("the request could not be read")),
        (
            ErrorSource::Downstream,
            ReadTimedout | WriteTimedout | ReadError | WriteError | ConnectionClosed,
        ) => None,
        (ErrorSource::Downstream, _) => {
            Some(GatewayError::BadRequest("the request could not be read"))
        }
        (_, ConnectTimedout | ReadTimedout | WriteTimedout) => Some(GatewayError::BackendTimeout),
        (ErrorSource::Upstream, _) => Some(GatewayError::BackendUnreachable),
        _ => Some(GatewayError::Unavailable),
    }
}

/// `200` for the load balancer, without touching the backend.
pub async fn write_health(session: &mut Session) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(200, Some(3))?;
    header.insert_header("Content-Type", "text/plain; charset=utf-8")?;
    header.insert_header("Content-Length", "0")?;
    header.insert_header("Cache-Control", "no-cache")?;
    session.write_response_header(Box::new(header), true).await
}

/// Writes a gateway answer; HEAD gets the headers only.
pub async fn write_answer(
    session: &mut Session,
    response: &GatewayResponse,
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(response.status, Some(response.headers.len()))?;
    for (name, value) in &response.headers {
        header.insert_header(*name, value.as_str())?;
    }
    let head_only = session.req_header().method == Method::HEAD || response.body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::clone(&response.body)), true)
            .await?;
    }
    Ok(())
}
