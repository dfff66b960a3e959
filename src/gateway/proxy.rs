//! The pingora `ProxyHttp` implementation. It only wires hooks to the pure modules
//! ([`classify`], [`plan_forwarding`], [`GatewayError`]) and to the access decision of
//! [`crate::gateway::decide`], made on the one live state loaded when the request starts;
//! `logging` records metrics and audit events once, from that decision.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use crate::gateway::backends::{self, OpenRegistry, Pool};
use crate::gateway::decide::{Decision, Refusal, RequestFacts};
use crate::gateway::guards::refuse_late;
use crate::gateway::immutable::{BodyCheck, TagLocks};
use crate::gateway::observe;
use crate::gateway::respond::{failure_answer, write_answer, write_health};
use crate::gateway::state::{Live, State};
use crate::pingora_fixes;
use crate::pingora_fixes::lifecycle::{InFlight, InFlightGuard};
use crate::registry::answers::{GatewayError, GatewayResponse, API_VERSION, API_VERSION_HEADER};
use crate::registry::forwarding::{
    effective_host, plan_forwarding, Forwarding, ForwardingInput, FORWARDING_HEADERS,
};
use crate::registry::params::Params;
use crate::registry::scope::{api_call, ApiCall};
use crate::registry::{classify, version_check_response, Endpoint};
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::request_log;
use crate::tls::client_auth::ClientIdentity;

/// The gateway: the shared state, telemetry, the registry replicas and the in-flight
/// counter.
pub struct Gateway {
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    /// The registry replicas and their health.
    pub pool: Arc<Pool>,
    /// Whether the registry has no auth of its own, per the health check.
    pub open_registry: OpenRegistry,
    pub in_flight: InFlight,
    /// One lock per immutable tag being pushed.
    pub tag_locks: TagLocks,
    /// Webhooks.
    pub events: Arc<crate::events::Events>,
}

/// Per-request state, from the first hook to the access log.
pub struct RequestCtx {
    pub(super) started: Instant,
    /// The live state the whole request is decided on (a reload may land meanwhile).
    pub(super) live: Arc<Live>,
    pub(super) route: Endpoint,
    /// The registry API call a `/v2/` path is, parsed once.
    pub(super) call: Option<ApiCall>,
    /// The access decision of a `/v2/` request, recorded in `logging`.
    pub(super) decision: Option<Decision>,
    /// Host the client addressed, and the forwarding headers for the backend.
    pub(super) host: Option<String>,
    pub(super) forwarding: Option<Forwarding>,
    pub(super) client_ip: Option<IpAddr>,
    pub(super) user: Option<String>,
    /// The request target the registry gets: the checked path and the query rebuilt from
    /// what the gateway parsed and authorized (see [`crate::registry::params`]).
    pub(super) upstream_target: Option<http::Uri>,
    /// What the client's `Connection` headers ask for (read in `early_request_filter`).
    pub(super) connection: crate::registry::hop_by_hop::ConnectionPlan,
    /// When the request went to the registry, for the latency histogram.
    pub(super) upstream_sent: Option<Instant>,
    /// A manifest body held back for an immutable tag's digest check.
    pub(super) body_check: Option<Box<BodyCheck>>,
    /// The answer of a refusal decided while the body was read (sent by `fail_to_proxy`).
    pub(super) late_refusal: Option<GatewayResponse>,
    /// An immutable tag this request moves or deletes by an `overwrite` rule.
    pub(super) overwrite: Option<(String, String, usize)>,
    /// Held while a push of an immutable tag is checked and carried out.
    pub(super) tag_lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The registry's `Docker-Content-Digest` and `Content-Type`, for events.
    pub(super) answered: (Option<String>, Option<String>),
    /// `RateLimit-Limit` and `RateLimit-Remaining` for the answer, under a pull limit.
    pub(super) rate_headers: Option<(String, String)>,
    /// The shared counter of the user's uploads in progress this request counts in.
    pub(super) upload_slot: Option<String>,
    pub(super) _in_flight: InFlightGuard,
}

impl Gateway {
    fn peer_ip(session: &Session) -> Option<IpAddr> {
        session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_canonical())
    }

    /// The forwarding plan for this request (see [`plan_forwarding`]).
    fn forwarding(&self, session: &Session) -> (Option<String>, Forwarding) {
        let req = session.req_header();
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let host = effective_host(header("host"), req.uri.authority().map(|a| a.as_str()))
            .map(str::to_string);
        let input = ForwardingInput {
            peer: Self::peer_ip(session),
            host: host.as_deref(),
            x_forwarded_for: req
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect(),
            x_forwarded_proto: header("x-forwarded-proto"),
            x_forwarded_host: header("x-forwarded-host"),
        };
        let plan = plan_forwarding(&input, &self.state.boot.trusted_proxies);
        (host, plan)
    }

    /// The request facts access decisions are made on.
    pub(super) fn facts<'a>(
        session: &'a Session,
        identity: Option<&'a ClientIdentity>,
        client_ip: Option<IpAddr>,
    ) -> RequestFacts<'a> {
        let req = session.req_header();
        RequestFacts {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query(),
            authorization: req
                .headers
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            certificate: identity,
            client_ip,
        }
    }

    /// The verified client certificate's identity, if the connection has one.
    pub(super) fn identity(session: &Session) -> Option<ClientIdentity> {
        session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|tls| tls.extension.get::<ClientIdentity>())
            .cloned()
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            live: self.state.live(),
            route: Endpoint::Other,
            call: None,
            decision: None,
            host: None,
            forwarding: None,
            client_ip: None,
            user: None,
            upstream_target: None,
            connection: Default::default(),
            upstream_sent: None,
            body_check: None,
            late_refusal: None,
            overwrite: None,
            tag_lock: None,
            answered: (None, None),
            rate_headers: None,
            upload_slot: None,
            _in_flight: self.in_flight.enter(),
        }
    }

    /// Idle timeouts instead of pingora's 60 s per-read default, so slow layers are not cut;
    /// no write timeout: the kernel cuts stalled sends (see `stall.rs`).
    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let t = self.state.boot.timeouts;
        session.set_read_timeout(Some(t.idle));
        session.set_write_timeout(None);
        session.set_keepalive(Some(t.keepalive.as_secs()));
        // Requests pipelined behind this one are answered in order (RFC 9112 §9.3.2); without
        // this, pingora answered the first and closed the connection.
        ctx.connection = pingora_fixes::per_request(session);
        let path = session.req_header().uri.path();
        ctx.route = match ctx.live.access.token_path() {
            Some(token_path) if token_path == path => Endpoint::Token,
            _ => classify(path),
        };
        if ctx.route == Endpoint::RegistryApi {
            ctx.call = api_call(path).ok();
        }
        let (host, forwarding) = self.forwarding(session);
        ctx.client_ip = forwarding.client_ip;
        ctx.host = host;
        ctx.forwarding = Some(forwarding);
        Ok(())
    }

    /// Answers `/` and unknown paths at the gateway; lets authenticated `/v2/` through.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if !session.req_header().raw_path().starts_with(b"/") {
            // `*`, `v2/...` or an absolute-form URL: not a path this gateway serves (and
            // never the `/` health check).
            let refusal = GatewayError::BadRequest("the request target must be a path");
            write_answer(session, &refusal.response(false)).await?;
            return Ok(true);
        }
        match ctx.route {
            Endpoint::Token => {
                self.serve_token_endpoint(session, ctx).await?;
                Ok(true)
            }
            Endpoint::RegistryApi => match self.check_registry_request(session, ctx).await {
                None if self.answers_version_check(session) => {
                    write_answer(session, &version_check_response()).await?;
                    Ok(true)
                }
                None => {
                    pingora_fixes::settle_connection_header(
                        session.req_header_mut(),
                        &ctx.connection,
                    );
                    Ok(false)
                }
                Some(refusal) => {
                    write_answer(session, &refusal).await?;
                    Ok(true)
                }
            },
            Endpoint::Health => {
                let method = &session.req_header().method;
                if method == Method::GET || method == Method::HEAD {
                    write_health(session).await?;
                } else {
                    write_answer(
                        session,
                        &GatewayError::MethodNotAllowed("GET, HEAD").response(false),
                    )
                    .await?;
                }
                Ok(true)
            }
            Endpoint::Other => {
                write_answer(session, &GatewayError::NotFound.response(false)).await?;
                Ok(true)
            }
        }
    }

    /// Works around pingora 0.9.1 writing the chunked terminator twice (see
    /// [`pingora_fixes::drop_empty_final_chunk`]).
    /// Holds back a manifest pushed to an existing immutable tag until its digest is known
    /// (see [`BodyCheck`]).
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(check) = ctx.body_check.as_mut() {
            match check.feed(body.take(), end_of_stream) {
                Ok(out) => *body = out,
                Err(answer) => {
                    refuse_late(ctx, answer);
                    return Err(Error::explain(ErrorType::HTTPStatus(403), "immutable tag"));
                }
            }
        }
        pingora_fixes::drop_empty_final_chunk(body, end_of_stream);
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let t = self.state.boot.timeouts;
        let addr = backends::pick(&self.pool, self.state.boot.upstreams[0].addr);
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(t.connect);
        peer.options.read_timeout = Some(t.idle);
        peer.options.tcp_keepalive = Some(crate::pingora_fixes::stall::upstream_keepalive(t.idle));
        peer.options.idle_timeout = Some(t.keepalive);
        Ok(Box::new(peer))
    }

    /// `Host` as the client sent it (or HTTP/2's `:authority`), the gateway's own
    /// forwarding headers in place of any the client sent, and no `Authorization` unless
    /// `auth.forward_authorization`.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let target = ctx.upstream_target.take().ok_or_else(|| {
            Error::explain(ErrorType::InternalError, "proxying an unchecked request")
        })?;
        upstream.set_uri(target);
        for name in FORWARDING_HEADERS {
            upstream.remove_header(name);
        }
        if !self.state.boot.forward_authorization {
            upstream.remove_header(&http::header::AUTHORIZATION);
        }
        if let Some(host) = ctx.host.take() {
            upstream.insert_header(http::header::HOST, host)?;
        }
        for (name, value) in ctx.forwarding.take().map(|f| f.set).unwrap_or_default() {
            upstream.insert_header(name, value)?;
        }
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    /// Every response under `/v2/` carries the API-version header, whatever the backend sent.
    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if ctx.route == Endpoint::RegistryApi {
            response.insert_header(API_VERSION_HEADER, API_VERSION)?;
            if let Some((limit, remaining)) = ctx.rate_headers.take() {
                response.insert_header("RateLimit-Limit", limit)?;
                response.insert_header("RateLimit-Remaining", remaining)?;
            }
            if let Some(sent) = ctx.upstream_sent.take() {
                self.metrics.upstream_latency(sent.elapsed());
            }
            let req = session.req_header();
            let digest = response
                .headers
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok());
            if !self.events.is_off() {
                let content_type = response.headers.get(http::header::CONTENT_TYPE);
                ctx.answered = (
                    digest.map(str::to_string),
                    content_type
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                );
            }
            let user = ctx.user.as_deref().unwrap_or_default();
            let audited = observe::Audited {
                call: ctx.call.as_ref(),
                method: req.method.as_str(),
                path: req.uri.path(),
                status: response.status.as_u16(),
                user,
                client: ctx.client_ip,
            };
            observe::audit_write(&self.audit, &audited, digest);
            if let Some((tag, previous, rule)) = &ctx.overwrite {
                let overwrite = observe::Overwrite {
                    tag,
                    previous,
                    rule: *rule,
                };
                observe::audit_overwrite(&self.audit, &audited, digest, &overwrite);
            }
            if self.state.boot.audit_pulls {
                let auth = ctx.decision.as_ref().map_or("-", |d| d.method);
                let agent = req
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok());
                observe::audit_pull(&self.audit, &audited, digest, auth, agent);
            }
        }
        Ok(())
    }

    /// With several replicas, a refused connection is retried on another one (nothing was
    /// sent yet, so any request may be retried).
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if self.state.boot.upstreams.len() > 1 {
            e.set_retry(true);
        }
        e
    }

    /// Backend failures become registry-shaped JSON answers with the API-version header.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(answer) = ctx.late_refusal.take() {
            session.set_keepalive(None);
            if let Err(write_err) = write_answer(session, &answer).await {
                tracing::debug!(error = %write_err, "could not send the refusal");
            }
            return FailToProxy {
                error_code: answer.status.as_u16(),
                can_reuse_downstream: false,
            };
        }
        let error_code = match failure_answer(e) {
            Some(err) => {
                let response = err.response(ctx.route == Endpoint::RegistryApi);
                session.set_keepalive(None);
                if session.response_written().is_none() {
                    if let Err(write_err) = write_answer(session, &response).await {
                        tracing::debug!(error = %write_err, "could not send the error answer");
                    }
                }
                response.status.as_u16()
            }
            None => 0,
        };
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let req = session.req_header();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let class = observe::route_class(ctx.route, ctx.call.as_ref());
        self.metrics.request(
            req.method.as_str(),
            status,
            class,
            session.body_bytes_read() as u64,
            session.body_bytes_sent() as u64,
        );
        if let Some(decision) = &ctx.decision {
            self.metrics.auth(decision.method, decision.outcome());
            if let Err(Refusal {
                answer,
                audit_as: Some(user),
                ..
            }) = &decision.verdict
            {
                let audited = observe::Audited {
                    call: ctx.call.as_ref(),
                    method: req.method.as_str(),
                    path: req.uri.path(),
                    status: answer.status().as_u16(),
                    user,
                    client: ctx.client_ip,
                };
                observe::audit_refusal(&self.audit, &audited);
            }
        }
        self.emit_events(session, status, ctx);
        self.release_upload_slot(ctx).await;
        if self.state.boot.log.access {
            request_log::log_request(session, e, ctx.client_ip, ctx.user.as_deref(), ctx.started);
        }
    }
}

/// `path?query` as the registry receives it: the query is only what [`Params`] parsed.
pub(super) fn upstream_target(path: &str, params: &Params) -> Option<http::Uri> {
    match params.encode() {
        Some(query) => format!("{path}?{query}").parse().ok(),
        None => path.parse().ok(),
    }
}
