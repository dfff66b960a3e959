//! Immutable tags at request time: before a manifest `PUT` or `DELETE` the registry is
//! asked whether the tag exists and what it points to ([`RegistryClient`]), and the
//! decision of [`crate::auth::immutable`] is applied.
//!
//! Re-pushing the identical manifest must pass, so a `PUT` to an existing immutable tag is
//! forwarded with its body held back ([`BodyCheck`]) until the body's digest is known: the
//! same digest is sent on, any other is refused (403) and the registry gets nothing it
//! could store. Pushes to one tag through this gateway are serialized ([`TagLocks`]) from
//! the question to the registry's answer, so two first pushes of `v1` cannot both see "no
//! such tag".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use ring::digest;
use tokio::sync::OwnedMutexGuard;

use super::registry_client::RegistryClient;
use crate::auth::acl::{Acl, Subject};
use crate::auth::immutable::{guard, overwrite_rule, refusal_message, rule_for, Guard};
use crate::registry::answers::GatewayError;

/// distribution's own limit on a manifest's size.
const MAX_MANIFEST: usize = 4 << 20;

/// What the proxy does with an allowed manifest request.
pub enum Plan {
    /// Forward it as it is.
    Pass,
    /// Forward it, holding the body until its digest shows it is the manifest already there.
    CheckBody(Box<BodyCheck>),
    /// An `overwrite` rule lets this principal move or delete the tag: forward, and audit
    /// the override with the digest the tag pointed to.
    Override {
        tag: String,
        previous: String,
        rule: usize,
    },
}

/// The plan for `method` on manifest `reference` of `repository`, asking the registry.
pub async fn plan(
    acl: &Acl,
    subject: &Subject<'_>,
    registry: &RegistryClient<'_>,
    method: &str,
    repository: &str,
    reference: &str,
) -> Result<Plan, GatewayError> {
    let unreachable = |why: String| {
        tracing::warn!(
            repository,
            reference,
            "cannot check an immutable tag: {why}"
        );
        GatewayError::BackendUnreachable
    };
    let may_overwrite = || overwrite_rule(acl, subject, repository);
    match guard(&acl.immutable, method, repository, reference) {
        Guard::Free => Ok(Plan::Pass),
        Guard::Put { tag, rule } | Guard::DeleteTag { tag, rule } => {
            let Some(previous) = registry
                .manifest_digest(repository, tag)
                .await
                .map_err(unreachable)?
            else {
                return Ok(Plan::Pass);
            };
            if let Some(rule) = may_overwrite() {
                return Ok(Plan::Override {
                    tag: tag.into(),
                    previous,
                    rule,
                });
            }
            match method {
                "PUT" => {
                    let message = refusal_message(
                        repository,
                        tag,
                        rule,
                        "it exists and can only be pushed again with the same manifest",
                    );
                    BodyCheck::new(&previous, GatewayError::ImmutableTag(message))
                        .map(|check| Plan::CheckBody(Box::new(check)))
                }
                _ => Err(GatewayError::ImmutableTag(refusal_message(
                    repository,
                    tag,
                    rule,
                    "it cannot be deleted",
                ))),
            }
        }
        Guard::DeleteDigest { digest } => {
            for tag in registry.tags(repository).await.map_err(unreachable)? {
                let Some(rule) = rule_for(&acl.immutable, repository, &tag) else {
                    continue;
                };
                let points_to = registry
                    .manifest_digest(repository, &tag)
                    .await
                    .map_err(unreachable)?;
                if points_to.as_deref() != Some(digest) {
                    continue;
                }
                return match may_overwrite() {
                    Some(rule) => Ok(Plan::Override {
                        tag,
                        previous: digest.into(),
                        rule,
                    }),
                    None => Err(GatewayError::ImmutableTag(refusal_message(
                        repository,
                        &tag,
                        rule,
                        &format!("it points to {digest}, which cannot be deleted"),
                    ))),
                };
            }
            Ok(Plan::Pass)
        }
    }
}

/// A manifest body held back until its digest is known.
pub struct BodyCheck {
    expected: String,
    context: digest::Context,
    prefix: &'static str,
    held: Vec<u8>,
    refusal: GatewayError,
}

impl BodyCheck {
    /// A check against `expected` (`sha256:...` or `sha512:...`).
    fn new(expected: &str, refusal: GatewayError) -> Result<BodyCheck, GatewayError> {
        let (prefix, algorithm) = match expected.split_once(':').map(|(a, _)| a) {
            Some("sha256") => ("sha256:", &digest::SHA256),
            Some("sha512") => ("sha512:", &digest::SHA512),
            _ => {
                tracing::warn!(
                    digest = expected,
                    "an immutable tag points to a digest of an unknown algorithm"
                );
                return Err(refusal);
            }
        };
        Ok(BodyCheck {
            expected: expected.to_string(),
            context: digest::Context::new(algorithm),
            prefix,
            held: Vec::new(),
            refusal,
        })
    }

    /// Takes the next piece of the body; what to send on: nothing (an empty piece) until
    /// the end, then the whole body if it is the expected manifest. `Err`: refuse.
    pub fn feed(&mut self, chunk: Option<Bytes>, end: bool) -> Result<Option<Bytes>, GatewayError> {
        if let Some(chunk) = chunk {
            if self.held.len() + chunk.len() > MAX_MANIFEST {
                return Err(GatewayError::BadRequest(
                    "the manifest is larger than 4 MiB",
                ));
            }
            self.context.update(&chunk);
            self.held.extend_from_slice(&chunk);
        }
        if !end {
            return Ok(Some(Bytes::new()));
        }
        let hex: String = self
            .context
            .clone()
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        match format!("{}{hex}", self.prefix) == self.expected {
            true => Ok(Some(Bytes::from(std::mem::take(&mut self.held)))),
            false => Err(self.refusal.clone()),
        }
    }
}

/// One lock per repository and tag, held from the question to the registry's answer.
#[derive(Default)]
pub struct TagLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl TagLocks {
    /// Waits for the lock of `key` (`repository:tag`).
    pub async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > 1024 {
                locks.retain(|_, weak| weak.strong_count() > 0);
            }
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(data: &[u8]) -> String {
        let d = digest::digest(&digest::SHA256, data);
        format!(
            "sha256:{}",
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    #[test]
    fn the_same_manifest_passes_whole_and_another_is_refused() {
        let manifest = b"{\"schemaVersion\":2}";
        let refusal = GatewayError::ImmutableTag("no".into());
        let mut same = BodyCheck::new(&sha256(manifest), refusal.clone()).unwrap();
        assert_eq!(
            same.feed(Some(Bytes::from_static(&manifest[..5])), false)
                .unwrap(),
            Some(Bytes::new())
        );
        let out = same
            .feed(Some(Bytes::from_static(&manifest[5..])), true)
            .unwrap();
        assert_eq!(out.as_deref(), Some(&manifest[..]));
        let mut other = BodyCheck::new(&sha256(manifest), refusal.clone()).unwrap();
        other.feed(Some(Bytes::from_static(b"{}")), false).unwrap();
        assert_eq!(other.feed(None, true), Err(refusal.clone()));
        assert!(BodyCheck::new("md5:00", refusal).is_err());
    }

    #[tokio::test]
    async fn locks_serialize_one_tag_only() {
        let locks = TagLocks::default();
        let held = locks.lock("a:v1".into()).await;
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a:v2".into()),
        )
        .await;
        assert!(other.is_ok(), "another tag is not blocked");
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a:v1".into()),
        )
        .await;
        assert!(same.is_err(), "the same tag waits");
        drop(held);
        assert!(tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("a:v1".into())
        )
        .await
        .is_ok());
    }
}
