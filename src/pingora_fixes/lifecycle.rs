//! Graceful shutdown: stop accepting, let in-flight requests finish, then exit.
//!
//! pingora, on a graceful stop, closes its listeners and then sleeps the whole grace period
//! even when nothing is in flight. Portcullis counts requests in flight and exits as soon as
//! the count reaches zero; pingora's sleep is only the upper bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

/// Counts requests being served; each holds an [`InFlightGuard`].
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

/// Held for the life of one request; dropping it ends the request's count.
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicUsize>);

impl InFlight {
    /// Marks one more request in flight until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(Arc::clone(&self.0))
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Turns SIGTERM and SIGINT into pingora's graceful terminate, then exits the process as soon
/// as no request is in flight (or pingora's grace period ends, whichever is first).
pub struct GracefulStop {
    pub in_flight: InFlight,
    pub grace_period: Duration,
    /// Runs once nothing is in flight, before the exit, with the grace period's end (the
    /// webhooks deliver what is queued).
    pub before_exit: Arc<dyn Fn(Instant) + Send + Sync>,
}

#[async_trait]
impl ShutdownSignalWatch for GracefulStop {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping now");
            return ShutdownSignal::FastShutdown;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            in_flight = self.in_flight.count(),
            grace_period_s = self.grace_period.as_secs(),
            "stopping: no new connections; waiting for requests in flight"
        );
        let in_flight = self.in_flight.clone();
        // pingora ends the process when the grace period is over; finish a second before.
        let deadline = Instant::now() + self.grace_period.saturating_sub(Duration::from_secs(1));
        let before_exit = Arc::clone(&self.before_exit);
        std::thread::spawn(move || exit_when_idle(&in_flight, deadline, &*before_exit));
        ShutdownSignal::GracefulTerminate
    }
}

/// Polls the in-flight count and, once it is zero, runs `before_exit` and exits the
/// process.
fn exit_when_idle(
    in_flight: &InFlight,
    deadline: Instant,
    before_exit: &(dyn Fn(Instant) + Send + Sync),
) {
    // Give pingora a moment to close its listeners before the first look.
    std::thread::sleep(Duration::from_millis(200));
    loop {
        if in_flight.count() == 0 {
            before_exit(deadline);
            tracing::info!("no requests in flight; exiting");
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
