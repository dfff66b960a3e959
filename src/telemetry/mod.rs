//! What the gateway tells its operators: Prometheus metrics, the audit log of writes and
//! refusals, and the request log. Writers only; what to record is decided in `gateway`.

pub mod audit;
pub mod metrics;
pub mod request_log;
