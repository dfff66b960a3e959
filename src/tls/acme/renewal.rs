//! The renewal thread: orders when there is no certificate, when it does not cover every
//! configured name, and when `renew_before` is reached; retries failures with back-off.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::client::AcmeHttp;
use super::storage::Store;
use super::{order, schedule, Acme};
use crate::clock::{format_time, unix_now};
use crate::tls::certs::ServerIdentity;

/// Starts the thread (its own small runtime; ACME work never runs on the proxy's threads).
pub fn spawn(acme: Arc<Acme>, store: Store, listener: SocketAddr) -> Result<(), String> {
    let http = AcmeHttp::new(&acme.settings.ca).map_err(|e| format!("tls.acme: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tls.acme: cannot start the renewal thread: {e}"))?;
    std::thread::Builder::new()
        .name("acme".into())
        .spawn(move || runtime.block_on(run(acme, store, http, listener)))
        .map_err(|e| format!("tls.acme: cannot start the renewal thread: {e}"))?;
    Ok(())
}

async fn run(acme: Arc<Acme>, store: Store, http: AcmeHttp, listener: SocketAddr) {
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
    // Only the first order can come before the listeners are up.
    wait_for_listener(listener).await;
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
                    .and_then(|c| {
                        c.chain.first().map(|l| {
                            format!(
                                "still serving the certificate that expires {}",
                                format_time(l.not_after)
                            )
                        })
                    })
                    .unwrap_or_else(|| "no certificate to serve yet".into());
                tracing::warn!(
                    failures,
                    retry_in_seconds = wait.as_secs(),
                    "tls.acme: order failed: {e}; {serving}"
                );
            }
        }
    }
}

/// One order. The account is registered or restored once and kept; it is dropped after a
/// failure so the next attempt restores it again. An account the server has forgotten
/// (a reset server) is registered again at once, within this attempt.
async fn attempt(
    acme: &Acme,
    http: &AcmeHttp,
    store: &Store,
    account: &mut Option<instant_acme::Account>,
) -> Result<ServerIdentity, String> {
    for _ in 0..2 {
        let current = match account.take() {
            Some(current) => current,
            None => order::account(acme, http, store).await?,
        };
        match order::obtain(acme, &current, store).await {
            Ok(identity) => {
                *account = Some(current);
                return Ok(identity);
            }
            Err(order::Failure::AccountGone) => {
                tracing::warn!("tls.acme: the ACME server does not know the stored account (was it reset?); registering a new one");
            }
            Err(order::Failure::Other(why)) => return Err(why),
        }
    }
    Err("the ACME server forgot the account registered a moment ago".into())
}

/// Waits (up to 30 s) until `listener` accepts connections: the gateway's listeners start
/// after this thread, and a validation that finds nothing listening fails the order. Once,
/// at start: each probe is a connection without a handshake, which the TLS listener counts
/// as a failed handshake (`eof`).
async fn wait_for_listener(listener: SocketAddr) {
    let target = match listener.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], listener.port()))
        }
        ip if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, listener.port()))
        }
        _ => listener,
    };
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(target).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(%listener, "tls.acme: the validation listener does not accept connections; ordering anyway");
}

fn renewal_time(acme: &Acme, identity: &ServerIdentity) -> i64 {
    identity.chain.first().map_or_else(unix_now, |leaf| {
        schedule::renew_at(leaf.not_before, leaf.not_after, acme.settings.renew_before)
    })
}
