#![forbid(unsafe_code)]
//! Portcullis: a TLS-terminating gateway for container registries, on pingora.
//!
//! Layers, each using only those above it: [`problem`], [`clock`], [`stats`] and [`background`] (vocabulary); [`store`] (counters shared by replicas);
//! [`registry`] (the registry protocol, pure); [`tls`] and [`auth`] (the two ways to prove
//! who you are, and what a principal may do) and [`events`] (webhooks for other systems); [`config`] (the file turned into each domain's
//! settings); [`pingora_fixes`] (every workaround for what pingora lacks); [`gateway`] (one
//! access decision per request and the pingora hooks that wire it); [`runtime`] (the shared
//! state, reload, server, admin listener, metrics, audit and logs); [`cli`] (the commands).

pub mod auth;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod events;
pub mod gateway;
pub mod pingora_fixes;
pub mod problem;
pub mod registry;
pub mod runtime;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod tls;
