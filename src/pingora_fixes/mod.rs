//! Everything Portcullis does because pingora 0.9.1 does not (yet), in one place, each
//! naming what it works around, so each can go when pingora catches up. Workarounds that
//! need a module of their own are listed here too:
//!
//! - `stall.rs`: pingora's write timeout bounds each whole write, so slow readers were cut;
//!   client connections are wrapped and judged by the kernel's progress counters.
//! - `handshake.rs`: pingora's listener cannot offer the ALPN list tls-alpn-01 needs and
//!   reports failed handshakes only as log lines; the listeners are plain TCP and handshakes
//!   run here, counted by reason.
//! - `tls/client_auth.rs` (`PeerMap`): rustls' verifier does not see the client address;
//!   the address is recorded before the handshake under the task id.
//! - `lifecycle.rs`: pingora sleeps through the whole grace period on a graceful stop;
//!   requests in flight are counted and the process exits when none are left.
//! - `tls/mod.rs`: pingora's certificate loader panics on a bad file; certificates are
//!   loaded and checked here and pingora gets a resolver.

pub mod conn_limit;
pub mod handshake;
pub mod lifecycle;
pub mod stall;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use crate::registry::hop_by_hop::ConnectionPlan;

/// Per request, before anything else (`early_request_filter`):
/// - pipelining is off by default in pingora 0.9, and pipelined bytes then make it answer
///   the first request and close; requests pipelined behind this one are answered in order
///   (RFC 9112 §9.3.2);
/// - pingora reads only the first `Connection` header for `close`; `close` in any one
///   counts.
///
/// Returns the request's [`ConnectionPlan`], read once, for [`settle_connection_header`].
pub fn per_request(session: &mut Session) -> ConnectionPlan {
    session.set_pipelining_enabled(true);
    let plan = connection_plan(session.req_header());
    if plan.options == Some("close") {
        session.set_keepalive(None);
    }
    plan
}

/// pingora 0.9.1 (issue #935, fix PR #936 not yet released): when an HTTP/2 client ends a
/// request body with an empty DATA frame carrying END_STREAM (Go clients such as crane,
/// `curl --http2 -T -`), the HTTP/1.1 upstream writer encodes the empty write as the
/// chunked terminator `0\r\n\r\n` and then writes it again when finishing. The registry
/// answers the extra bytes with a bare 400 and the next request on that pooled connection
/// fails. An empty last chunk is therefore handed on as "no data, end of body", which
/// pingora finishes with exactly one terminator. Remove once pingora ships the fix.
pub fn drop_empty_final_chunk(body: &mut Option<Bytes>, end_of_stream: bool) {
    if end_of_stream && body.as_ref().is_some_and(Bytes::is_empty) {
        *body = None;
    }
}

/// What the request's `Connection` headers ask for.
fn connection_plan(req: &RequestHeader) -> ConnectionPlan {
    crate::registry::hop_by_hop::plan(
        req.headers
            .get_all(http::header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// Removes the headers the client's `Connection` names (see `hop_by_hop.rs`) and keeps only
/// `close`/`keep-alive` in it, so pingora neither forwards them nor refuses the request.
pub fn settle_connection_header(req: &mut RequestHeader, plan: &ConnectionPlan) {
    for name in &plan.remove {
        req.remove_header(name.as_str());
    }
    req.remove_header(&http::header::CONNECTION);
    if let Some(options) = plan.options {
        // A static token: always a valid header value.
        let _ = req.insert_header(http::header::CONNECTION, options);
    }
}
