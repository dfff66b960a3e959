//! Immutable tags (`[[acl.immutable]]`): which tags never move once they exist, and who may
//! move or delete them anyway (pure). The gateway asks the registry whether a tag exists
//! and what it points to; this module only says what to ask and what the answer means.

use super::acl::{text_glob, Acl, Pattern, Subject};
use crate::registry::scope::Resource;

/// One `[[acl.immutable]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableRule {
    /// 1-based position, for messages and `explain`.
    pub number: usize,
    pub comment: Option<String>,
    pub repositories: Vec<Pattern>,
    /// Tag globs (`v*`).
    pub tags: Vec<String>,
}

impl ImmutableRule {
    /// Whether tag `tag` of `repository` is immutable by this rule.
    pub fn covers(&self, repository: &str, tag: &str) -> bool {
        self.repositories
            .iter()
            .any(|p| p.matches(repository, None))
            && self.tags.iter().any(|t| text_glob(t, tag))
    }

    /// `rule 1 (released versions never move)`.
    pub fn describe(&self) -> String {
        match &self.comment {
            Some(c) => format!("immutable rule {} ({c})", self.number),
            None => format!("immutable rule {}", self.number),
        }
    }
}

/// What a manifest request means for immutable tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard<'a> {
    /// Nothing to check.
    Free,
    /// `PUT` of a tag `rule` covers: refused if the tag exists and points elsewhere.
    Put {
        tag: &'a str,
        rule: &'a ImmutableRule,
    },
    /// `DELETE` of a tag `rule` covers: refused if it exists.
    DeleteTag {
        tag: &'a str,
        rule: &'a ImmutableRule,
    },
    /// `DELETE` of a manifest by digest: refused if an immutable tag points to it.
    DeleteDigest { digest: &'a str },
}

/// Whether `reference` is a digest (`sha256:...`) rather than a tag.
pub fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// The check a `method` on manifest `reference` of `repository` needs.
pub fn guard<'a>(
    rules: &'a [ImmutableRule],
    method: &str,
    repository: &str,
    reference: &'a str,
) -> Guard<'a> {
    if rules.is_empty() {
        return Guard::Free;
    }
    let rule = || rules.iter().find(|r| r.covers(repository, reference));
    match (method, is_digest(reference)) {
        ("DELETE", true)
            if rules
                .iter()
                .any(|r| r.repositories.iter().any(|p| p.matches(repository, None))) =>
        {
            Guard::DeleteDigest { digest: reference }
        }
        ("PUT", false) => rule().map_or(Guard::Free, |rule| Guard::Put {
            tag: reference,
            rule,
        }),
        ("DELETE", false) => rule().map_or(Guard::Free, |rule| Guard::DeleteTag {
            tag: reference,
            rule,
        }),
        _ => Guard::Free,
    }
}

/// The immutable rule covering `tag` of `repository`, if any.
pub fn rule_for<'a>(
    rules: &'a [ImmutableRule],
    repository: &str,
    tag: &str,
) -> Option<&'a ImmutableRule> {
    rules.iter().find(|r| r.covers(repository, tag))
}

/// The `[[acl.rules]]` rule letting `subject` move or delete immutable tags of
/// `repository`: the first rule that applies decides, as for every action.
pub fn overwrite_rule(acl: &Acl, subject: &Subject<'_>, repository: &str) -> Option<usize> {
    let resource = Resource::Repository(repository.to_string());
    acl.rules
        .iter()
        .find(|r| acl.applies(r, subject, &resource))
        .filter(|r| r.overwrite)
        .map(|r| r.number)
}

/// The refusal's message: names the tag, the repository and the rule.
pub fn refusal_message(repository: &str, tag: &str, rule: &ImmutableRule, what: &str) -> String {
    format!(
        "tag {tag} of {repository} is immutable ({}): {what}",
        rule.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<ImmutableRule> {
        vec![ImmutableRule {
            number: 1,
            comment: Some("released versions never move".into()),
            repositories: vec![Pattern::parse("prod/*").unwrap()],
            tags: vec!["v*".into(), "release-*".into()],
        }]
    }

    #[test]
    fn tags_are_guarded_by_their_rule_only() {
        let rules = rules();
        assert!(matches!(
            guard(&rules, "PUT", "prod/app", "v1"),
            Guard::Put { tag: "v1", .. }
        ));
        assert!(matches!(
            guard(&rules, "PUT", "prod/app", "release-2"),
            Guard::Put { .. }
        ));
        assert_eq!(guard(&rules, "PUT", "prod/app", "latest"), Guard::Free);
        assert_eq!(guard(&rules, "PUT", "dev/app", "v1"), Guard::Free);
        assert_eq!(
            guard(&rules, "PUT", "prod/app", "sha256:ab"),
            Guard::Free,
            "a digest never moves"
        );
        assert!(matches!(
            guard(&rules, "DELETE", "prod/app", "v1"),
            Guard::DeleteTag { .. }
        ));
        assert_eq!(
            guard(&rules, "DELETE", "prod/app", "sha256:ab"),
            Guard::DeleteDigest {
                digest: "sha256:ab"
            }
        );
        assert_eq!(guard(&rules, "DELETE", "dev/app", "sha256:ab"), Guard::Free);
        assert_eq!(guard(&rules, "GET", "prod/app", "v1"), Guard::Free);
        assert_eq!(guard(&[], "PUT", "prod/app", "v1"), Guard::Free);
        let message = refusal_message("prod/app", "v1", &rules[0], "it already exists");
        assert_eq!(message, "tag v1 of prod/app is immutable (immutable rule 1 (released versions never move)): it already exists");
    }
}
