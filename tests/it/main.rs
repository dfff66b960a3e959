//! The integration tests, in one binary so the suite links once: each module starts real
//! servers (the registry, Portcullis, peers) and real clients; `common` is their harness.

mod common;

mod acme;
mod auth_basic;
mod auth_cert;
mod auth_token;
mod bench;
mod cli;
mod deploy;
mod engines;
mod events;
mod headers;
mod idle_timeout;
mod immutable;
mod layers;
mod ldap;
mod lifecycle;
mod limits;
mod oidc;
mod operations;
mod python_dxf;
mod reload;
mod replicas;
mod request_params;
mod robots;
mod skopeo;
mod streaming;
mod tls;
mod token_attacks;
