//! Running the gateway: the server and its listeners, reload, the admin listener, registry
//! replicas, graceful stop, metrics, audit and the request log.

pub mod admin;
pub mod audit;
pub mod backends;
pub mod lifecycle;
pub mod metrics;
pub mod reload;
pub mod request_log;
pub mod server;
