#![forbid(unsafe_code)]
//! Portcullis: a TLS-terminating gateway for container registries, on pingora.
//!
//! Pure protocol logic lives in [`registry`], [`headers`] and [`errors`]; [`config`] turns the
//! TOML into a validated [`config::Config`]; [`proxy`] wires pingora's hooks to them.

pub mod access;
pub mod access_log;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod backends;
pub mod cli;
pub mod clock;
pub mod config;
pub mod devcerts;
pub mod errors;
pub mod explain;
pub mod headers;
pub mod hop_by_hop;
pub mod lifecycle;
pub mod metrics;
pub mod observe;
pub mod params;
pub mod pingora_fixes;
pub mod problem;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod server;
pub mod stall;
pub mod tls;
