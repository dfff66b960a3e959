//! Running the gateway: the server and its listeners, reload, and the admin listener.

pub mod acme_http;
pub mod admin;
pub mod reload;
pub mod server;
