//! The proxy's part in immutable tags: after the access decision, a manifest `PUT` or
//! `DELETE` is checked against `[[acl.immutable]]` by asking the registry (see
//! [`crate::gateway::immutable`]); a refusal is recorded as the request's decision, so it
//! is audited and counted like any other.

use std::sync::Arc;

use pingora::proxy::Session;

use super::backends;
use super::decide::{Decision, Refusal};
use super::immutable::{plan, Plan};
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

/// Records `answer` as the request's decision (audited as the user, counted as denied).
fn refuse(ctx: &mut RequestCtx, answer: GatewayError) {
    if let Some(decision) = ctx.decision.as_mut() {
        if let Ok(principal) = &decision.verdict {
            let user = principal.user.clone();
            decision.verdict = Err(Refusal {
                answer,
                audit_as: Some(user),
                method: None,
            });
        }
    }
}

/// A refusal decided while the body was read: recorded, and its answer kept for
/// `fail_to_proxy` to send.
pub(super) fn refuse_late(ctx: &mut RequestCtx, answer: GatewayError) {
    tracing::info!(user = ctx.user.as_deref().unwrap_or("-"), reason = ?answer, "push refused after reading the manifest");
    ctx.late_refusal = Some(answer.response(true));
    refuse(ctx, answer);
}
