//! The decisions the proxy's `request_filter` hands out: a `/v2/` request checked (access,
//! limits, immutable tags), the version check answered at the gateway, and the token
//! endpoint.

use std::sync::Arc;

use http::Method;
use pingora::proxy::Session;

use super::backends;
use super::decide::registry_params;
use super::proxy::{upstream_target, Gateway, RequestCtx};
use super::respond::{read_form, write_answer, write_json};
use crate::registry::answers::{GatewayError, GatewayResponse, OAuthError};
use crate::registry::is_version_check;

impl Gateway {
    /// Decides a `/v2/` request; `Some(answer)` refuses it.
    pub(super) async fn check_registry_request(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> Option<GatewayResponse> {
        let req = session.req_header();
        let content_types = req.headers.get_all(http::header::CONTENT_TYPE).iter();
        let params = match registry_params(req.uri.query(), content_types.map(|v| v.as_bytes())) {
            Ok(params) => params,
            Err(refusal) => return Some(refusal.response(true)),
        };
        ctx.upstream_target = match upstream_target(req.uri.path(), &params) {
            Some(target) => Some(target),
            None => {
                let refusal = GatewayError::BadRequest("the request target is not usable");
                return Some(refusal.response(true));
            }
        };
        let identity = Self::identity(session);
        let facts = Self::facts(session, identity.as_ref(), ctx.client_ip);
        let live = Arc::clone(&ctx.live);
        let decision = live
            .access
            .registry_request(facts, ctx.call.as_ref(), &params)
            .await;
        let answer = match &decision.verdict {
            Ok(principal) => {
                ctx.user = Some(principal.user.clone()).filter(|u| !u.is_empty());
                None
            }
            Err(refusal) => Some(refusal.answer.response(true)),
        };
        ctx.decision = Some(decision);
        if answer.is_some() {
            return answer;
        }
        match self.limit(session, ctx).await {
            Some(answer) => Some(answer),
            None => self.guard_tags(session, ctx).await,
        }
    }

    /// Whether an allowed request is the version check the gateway answers itself: only
    /// when the registry's answer would be the same, i.e. the health check found it up and
    /// answering an anonymous `/v2/` with 200 (no auth of its own), and credentials are not
    /// meant for it (`forward_authorization`). Otherwise the request goes to the registry.
    pub(super) fn answers_version_check(&self, session: &Session) -> bool {
        let req = session.req_header();
        is_version_check(&req.method, req.uri.path())
            && !self.state.boot.forward_authorization
            && self.open_registry.get()
            && backends::any_healthy(&self.pool)
    }

    /// Answers the token endpoint.
    pub(super) async fn serve_token_endpoint(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let mut body = None;
        if session.req_header().method == Method::POST {
            match read_form(session).await? {
                Some(form) => body = Some(form),
                None => {
                    let answer =
                        GatewayError::TokenRequest(OAuthError::InvalidRequest).response(false);
                    return write_answer(session, &answer).await;
                }
            }
        }
        let identity = Self::identity(session);
        let facts = Self::facts(session, identity.as_ref(), ctx.client_ip);
        let live = Arc::clone(&ctx.live);
        match live.access.token_request(facts, body.as_deref()).await {
            Ok((json, user)) => {
                ctx.user = Some(user).filter(|u| !u.is_empty());
                write_json(session, json).await
            }
            Err(refusal) => write_answer(session, &refusal.response(false)).await,
        }
    }
}
