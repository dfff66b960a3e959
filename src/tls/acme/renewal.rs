//! The renewal thread: orders when there is no certificate, when it does not cover every
//! configured name, and when `renew_before` is reached; retries failures with back-off.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::client::AcmeHttp;
use super::storage::Store;
use super::{order, schedule, Acme};
use crate::clock::{format_time, unix_now};
use crate::tls::certs::ServerIdentity;

/// Starts the thread (its own small runtime; ACME work never runs on the proxy's threads).
pub fn spawn(acme: Arc<Acme>, store: Store) -> Result<(), String> {
    let http = AcmeHttp::new(&acme.settings.ca).map_err(|e| format!("tls.acme: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tls.acme: cannot start the renewal thread: {e}"))?;
    std::thread::Builder::new()
        .name("acme".into())
        .spawn(move || runtime.block_on(run(acme, store, http)))
        .map_err(|e| format!("tls.acme: cannot start the renewal thread: {e}"))?;
    Ok(())
}

async fn run(acme: Arc<Acme>, store: Store, http: AcmeHttp) {
    let mut account = None;
    let mut failures = 0u32;
    let mut next = match acme.current() {
        Some(current) if store.covers(&current) => renewal_time(&acme, &current),
        Some(_) => {
            tracing::info!("tls.acme: the stored certificate does not name every domain in tls.acme.domains; ordering one that does");
            unix_now()
        }
        None => unix_now(),
    };
    loop {
        acme.counts.next_attempt.store(next, Ordering::Relaxed);
        let wait = u64::try_from(next - unix_now()).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        acme.counts.next_attempt.store(0, Ordering::Relaxed);
        match attempt(&acme, &http, &store, &mut account).await {
            Ok(identity) => {
                failures = 0;
                acme.counts.issued.fetch_add(1, Ordering::Relaxed);
                next = renewal_time(&acme, &identity);
                let leaf = identity.chain.first();
                tracing::info!(
                    domains = %acme.settings.domains.join(","),
                    expires = %leaf.map(|c| format_time(c.not_after)).unwrap_or_default(),
                    renew_at = %format_time(next),
                    "tls.acme: certificate issued; new handshakes get it"
                );
                acme.install(identity);
            }
            Err(e) => {
                failures += 1;
                acme.counts.failed.fetch_add(1, Ordering::Relaxed);
                let wait = schedule::retry_in(failures, http.take_retry_after(), SystemTime::now());
                next = unix_now() + wait.as_secs() as i64;
                let serving = acme
                    .current()
                    .and_then(|c| c.chain.first().map(|l| format!("still serving the certificate that expires {}", format_time(l.not_after))))
                    .unwrap_or_else(|| "no certificate to serve yet".into());
                tracing::warn!(failures, retry_in_seconds = wait.as_secs(), "tls.acme: order failed: {e}; {serving}");
            }
        }
    }
}

/// One order. The account is registered or restored once and kept; it is dropped after a
/// failure so the next attempt restores it again (and re-registers a forgotten one).
async fn attempt(
    acme: &Acme,
    http: &AcmeHttp,
    store: &Store,
    account: &mut Option<instant_acme::Account>,
) -> Result<ServerIdentity, String> {
    if account.is_none() {
        *account = Some(order::account(acme, http, store).await?);
    }
    let Some(current) = account.as_ref() else {
        return Err("no account".into());
    };
    let result = order::obtain(acme, current, store).await;
    if result.is_err() {
        *account = None;
    }
    result
}

fn renewal_time(acme: &Acme, identity: &ServerIdentity) -> i64 {
    identity.chain.first().map_or_else(unix_now, |leaf| {
        schedule::renew_at(leaf.not_before, leaf.not_after, acme.settings.renew_before)
    })
}
