//! The gateway proper: one access decision per request ([`decide`]), what it records
//! ([`observe`]), and the pingora hooks that wire them ([`proxy`]).

pub mod backends;
pub mod decide;
pub mod observe;
pub mod proxy;
pub mod respond;
pub mod state;
