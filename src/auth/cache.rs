//! Recently verified credentials, so a push of many layers costs one bcrypt, not one per
//! request (docker and skopeo send the password with every request).
//!
//! Keyed by HMAC-SHA256 under a per-process random key of the user and password: the cache
//! never holds a password, and its keys are useless outside this process. Entries expire
//! after a short TTL; the whole cache is cleared when the htpasswd file changes. An entry
//! can carry what the check found (an LDAP user's groups).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

type Key = [u8; 32];

/// A bounded TTL map of verified (user, password) pairs to what their check found.
pub struct CredentialCache<V = ()> {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Key, (Instant, V)>>,
}

impl CredentialCache<()> {
    /// Remembers a pair that bcrypt just verified.
    pub fn insert(&self, user: &str, password: &str) {
        self.insert_value(user, password, ());
    }
}

impl<V: Clone> CredentialCache<V> {
    /// An empty cache; `capacity` 0 or `ttl` 0 disables it.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let key =
            hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).unwrap_or_else(|_| {
                hmac::Key::new(
                    hmac::HMAC_SHA256,
                    &Instant::now().elapsed().as_nanos().to_le_bytes(),
                )
            });
        Self {
            key,
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fingerprint(&self, user: &str, password: &str) -> Key {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_le_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether this exact pair was verified within the TTL.
    pub fn contains(&self, user: &str, password: &str) -> bool {
        self.get(user, password).is_some()
    }

    /// What the check of this exact pair found, if it was verified within the TTL.
    pub fn get(&self, user: &str, password: &str) -> Option<V> {
        if self.capacity == 0 || self.ttl.is_zero() {
            return None;
        }
        let fp = self.fingerprint(user, password);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&fp)
            .filter(|(expires, _)| Instant::now() < *expires)
            .map(|(_, value)| value.clone())
    }

    /// Remembers a pair just verified, with what its check found.
    pub fn insert_value(&self, user: &str, password: &str, value: V) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        let fp = self.fingerprint(user, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (expires, _)| now < *expires);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(fp, (now + self.ttl, value));
    }

    /// Forgets everything (the user file changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_pairs_only() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        cache.insert("alice", "secret");
        assert!(cache.contains("alice", "secret"));
        assert!(!cache.contains("alice", "Secret"));
        assert!(
            !cache.contains("alic", "esecret"),
            "user/password boundary is part of the key"
        );
        cache.clear();
        assert!(!cache.contains("alice", "secret"));
    }

    #[test]
    fn entries_expire() {
        let cache = CredentialCache::new(Duration::from_millis(20), 10);
        cache.insert("alice", "secret");
        std::thread::sleep(Duration::from_millis(40));
        assert!(!cache.contains("alice", "secret"));
    }

    #[test]
    fn stays_bounded() {
        let cache = CredentialCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.insert(&format!("u{i}"), "p");
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert!(cache.contains("u9", "p"));
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = CredentialCache::new(Duration::from_secs(60), 0);
        cache.insert("alice", "secret");
        assert!(!cache.contains("alice", "secret"));
    }
}
