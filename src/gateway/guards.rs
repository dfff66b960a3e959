//! The proxy's part in immutable tags: after the access decision, a manifest `PUT` or
//! `DELETE` is checked against `[[acl.immutable]]` by asking the registry (see
//! [`crate::gateway::immutable`]); a refusal is recorded as the request's decision, so it
//! is audited and counted like any other.

use std::sync::Arc;

use pingora::proxy::Session;

use super::backends;
use super::decide::{Decision, Refusal};
use super::immutable::{plan, Plan};
use super::observe;
use super::proxy::{Gateway, RequestCtx};
use super::registry_client::RegistryClient;
use crate::auth::immutable::is_digest;
use crate::registry::answers::{GatewayError, GatewayResponse};
use crate::registry::scope::ApiCall;

impl Gateway {
    /// The refusal of an allowed manifest request that would move or delete an immutable
    /// tag; `None` lets it through (maybe with its body held for a digest check).
    pub(super) async fn guard_tags(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> Option<GatewayResponse> {
        let live = Arc::clone(&ctx.live);
        let acl = &live.access.acl;
        let req = session.req_header();
        let method = req.method.as_str();
        let (Some(ApiCall::Manifest(name)), true) = (&ctx.call, matches!(method, "PUT" | "DELETE"))
        else {
            return None;
        };
        let principal = match &ctx.decision {
            Some(Decision {
                verdict: Ok(principal),
                ..
            }) if !acl.immutable.is_empty() => principal.clone(),
            _ => return None,
        };
        let reference = req.uri.path().rsplit('/').next().unwrap_or_default();
        if method == "PUT" && !is_digest(reference) {
            ctx.tag_lock = Some(self.tag_locks.lock(format!("{name}:{reference}")).await);
        }
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let registry = RegistryClient {
            addr: backends::pick(&self.pool, self.state.boot.upstreams[0].addr),
            host: ctx.host.as_deref().unwrap_or("localhost"),
            authorization: authorization.filter(|_| self.state.boot.forward_authorization),
            timeout: self.state.boot.timeouts.connect,
        };
        let subject = principal.subject(ctx.client_ip);
        match plan(acl, &subject, &registry, method, name, reference).await {
            Ok(Plan::Pass) => None,
            Ok(Plan::CheckBody(check)) => {
                ctx.body_check = Some(check);
                None
            }
            Ok(Plan::Override {
                tag,
                previous,
                rule,
            }) => {
                tracing::info!(user = %principal.user, repository = %name, tag = %tag, previous = %previous, rule, "immutable tag overridden");
                ctx.overwrite = Some((tag, previous, rule));
                None
            }
            Err(answer) => {
                let response = answer.response(true);
                refuse(ctx, answer);
                Some(response)
            }
        }
    }
}

/// Records `answer` as the request's decision (see [`Decision::refuse_allowed`]).
pub(super) fn refuse(ctx: &mut RequestCtx, answer: GatewayError) {
    if let Some(decision) = ctx.decision.as_mut() {
        decision.refuse_allowed(answer);
    }
}

/// A refusal decided while the body was read: recorded, and its answer kept for
/// `fail_to_proxy` to send.
pub(super) fn refuse_late(ctx: &mut RequestCtx, answer: GatewayError) {
    tracing::info!(user = ctx.user.as_deref().unwrap_or("-"), reason = ?answer, "push refused after reading the manifest");
    ctx.late_refusal = Some(answer.response(true));
    refuse(ctx, answer);
}

impl Gateway {
    /// Queues the events a finished `/v2/` request makes for the webhooks that want them.
    pub(super) fn emit_events(&self, session: &Session, status: u16, ctx: &RequestCtx) {
        let Some(decision) = ctx.decision.as_ref().filter(|_| !self.events.is_off()) else {
            return;
        };
        let req = session.req_header();
        let header =
            |name: http::header::HeaderName| req.headers.get(name).and_then(|v| v.to_str().ok());
        let (user, refused) = match &decision.verdict {
            Ok(principal) => (principal.user.as_str(), false),
            Err(Refusal {
                audit_as: Some(user),
                ..
            }) => (user.as_str(), true),
            Err(_) => return,
        };
        let media_type = match req.method.as_str() {
            "PUT" => header(http::header::CONTENT_TYPE),
            _ => ctx.answered.1.as_deref(),
        };
        let happened = observe::Happened {
            req: observe::Audited {
                call: ctx.call.as_ref(),
                method: req.method.as_str(),
                path: req.uri.path(),
                status,
                user,
                client: ctx.client_ip,
            },
            refused,
            digest: ctx.answered.0.as_deref(),
            auth: decision.method,
            user_agent: header(http::header::USER_AGENT),
            host: header(http::header::HOST).or(req.uri.authority().map(|a| a.as_str())),
            media_type,
            bytes_in: session.body_bytes_read() as u64,
            bytes_out: session.body_bytes_sent() as u64,
            overwrite: ctx
                .overwrite
                .as_ref()
                .map(|(tag, previous, _)| (tag.as_str(), previous.as_str())),
        };
        for record in observe::records(&happened) {
            self.events.emit(&record);
        }
    }
}
