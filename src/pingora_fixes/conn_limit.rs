//! `limits.max_connections`: at most so many TLS connections per client address (IPv6 by
//! /64) at once, counted in this replica. A connection beyond it is closed right after the
//! handshake, before any request is read, and counted in `portcullis_limited_total`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The per-address counts.
#[derive(Debug)]
pub struct ConnectionLimit {
    max: u32,
    counts: Mutex<HashMap<String, u32>>,
}

/// One connection's place in its address's count, given back on drop.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<ConnectionLimit>,
    key: String,
}

impl ConnectionLimit {
    pub fn new(max: u32) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `ip`, or `None` when the address has `max` already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = crate::auth::limits::address_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            limit: Arc::clone(self),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limit.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_and_gets_its_places_back() {
        let limit = ConnectionLimit::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = limit.take(ip).unwrap();
        let _b = limit.take(ip).unwrap();
        assert!(limit.take(ip).is_none());
        assert!(
            limit.take("10.0.0.2".parse().unwrap()).is_some(),
            "others are not affected"
        );
        drop(a);
        assert!(limit.take(ip).is_some());
    }
}
