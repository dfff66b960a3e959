//! A thread of its own with a small tokio runtime, for clients whose connections must not
//! depend on the proxy's threads (the LDAP directory, Redis) and that `portcullis explain`
//! can use too (depends on nothing).

/// Starts thread `name` running a runtime until `stopped` fires or its sender is dropped;
/// returns the runtime's handle to spawn work on.
pub fn runtime_thread(
    name: &str,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Result<tokio::runtime::Handle, String> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return drop(handle_tx.send(Err(e.to_string()))),
            };
            let _ = handle_tx.send(Ok(runtime.handle().clone()));
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })
        .map_err(|e| e.to_string())?;
    handle_rx.recv().map_err(|e| e.to_string())?
}

/// Runs `work` to completion on a fresh current-thread runtime (unit tests of async code).
#[cfg(test)]
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(work)
}
