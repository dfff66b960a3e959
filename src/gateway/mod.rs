//! The gateway proper: one access decision per request ([`decide`]), what it records
//! ([`observe`]), and the pingora hooks that wire them ([`proxy`]).

pub mod backends;
mod checks;
pub mod decide;
mod guards;
pub mod immutable;
mod limiting;
pub mod observe;
pub mod proxy;
pub mod registry_client;
pub mod respond;
pub mod state;
