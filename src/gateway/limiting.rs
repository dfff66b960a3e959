//! The proxy's part in rate limits: an allowed manifest `GET` counts against the pull limit
//! that applies (its answer carries `RateLimit-*` headers); an upload request takes one of
//! the user's `max_concurrent_uploads` slots until it ends. Counters are in the shared
//! store, so every replica sees the same counts.

use std::sync::Arc;
use std::time::Duration;

use pingora::proxy::Session;

use super::decide::Decision;
use super::proxy::{Gateway, RequestCtx};
use crate::clock::{format_time, unix_now};
use crate::registry::answers::{GatewayError, GatewayResponse};
use crate::registry::scope::ApiCall;

/// How long an upload slot outlives its last change (a replica that died holding one).
const UPLOAD_SLOT_TTL: Duration = Duration::from_secs(3600);

impl Gateway {
    /// The refusal of an allowed request over a limit; `None` lets it through.
    pub(super) async fn limit(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
    ) -> Option<GatewayResponse> {
        let live = Arc::clone(&ctx.live);
        let access = &live.access;
        let limited = match &ctx.call {
            Some(ApiCall::Manifest(_)) => !access.limits.pulls.is_empty(),
            Some(ApiCall::UploadStart(_) | ApiCall::UploadChunk(_)) => {
                access.limits.max_concurrent_uploads.is_some()
            }
            _ => false,
        };
        if !limited {
            return None;
        }
        let store = &access.authn.store;
        let principal = match &ctx.decision {
            Some(Decision {
                verdict: Ok(principal),
                ..
            }) => principal.clone(),
            _ => return None,
        };
        let method = session.req_header().method.as_str();
        match (&ctx.call, method) {
            (Some(ApiCall::Manifest(_)), "GET") => {
                let subject = principal.subject(ctx.client_ip);
                let limit = access.limits.pull_limit(&access.acl, &subject)?;
                let count = store.hit(&limit.key(&subject), limit.window).await;
                let rate = (limit.limit_header(), limit.remaining_header(count.value));
                if count.value <= limit.count {
                    ctx.rate_headers = Some(rate);
                    return None;
                }
                self.metrics.limited(format!("pulls:{}", limit.number));
                let resets = unix_now() + count.reset_in.as_secs() as i64;
                let message = format!(
                    "pull limit reached: {} pulls per {} s ({}); it resets at {}",
                    limit.count,
                    limit.window.as_secs(),
                    limit.describe(),
                    format_time(resets)
                );
                let retry_after = count.reset_in.as_secs().max(1);
                Some(self.refuse(
                    ctx,
                    GatewayError::RateLimited {
                        message,
                        retry_after,
                        rate: Some(rate),
                    },
                ))
            }
            (Some(ApiCall::UploadStart(_) | ApiCall::UploadChunk(_)), _)
                if !principal.user.is_empty() =>
            {
                let max = access.limits.max_concurrent_uploads?;
                let key = format!("uploads:{}", principal.user);
                if store.add(&key, 1, UPLOAD_SLOT_TTL).await <= i64::from(max) {
                    ctx.upload_slot = Some(key);
                    return None;
                }
                store.add(&key, -1, UPLOAD_SLOT_TTL).await;
                self.metrics.limited("uploads".into());
                let message = format!("{} uploads of {} are in progress already (limits.max_concurrent_uploads); try again when one ends", max, principal.user);
                Some(self.refuse(
                    ctx,
                    GatewayError::RateLimited {
                        message,
                        retry_after: 1,
                        rate: None,
                    },
                ))
            }
            _ => None,
        }
    }

    /// Frees the upload slot a request held (from `logging`).
    pub(super) async fn release_upload_slot(&self, ctx: &mut RequestCtx) {
        if let Some(key) = ctx.upload_slot.take() {
            ctx.live
                .access
                .authn
                .store
                .add(&key, -1, UPLOAD_SLOT_TTL)
                .await;
        }
    }

    fn refuse(&self, ctx: &mut RequestCtx, answer: GatewayError) -> GatewayResponse {
        let response = answer.response(true);
        super::guards::refuse(ctx, answer);
        response
    }
}
