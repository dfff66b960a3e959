//! Access decisions for each request: authentication, then authorization, for the registry
//! API and the token endpoint. Plain async functions over request facts; the pingora hooks
//! in `proxy.rs` only gather those facts and write the answers.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::acl::{Acl, Decision as AclDecision};
use crate::auth::token::now;
use crate::auth::token_endpoint::{parse_get, parse_post, GrantKind, TokenRequest, TokenResponse};
use crate::auth::{show, Attempt, AuthMethod, Authenticator, Failure, Principal};
use crate::clock::format_time;
use crate::config::{Config, TokenConfig};
use crate::registry::answers::{BearerError, GatewayError, OAuthError};
use crate::registry::params::{is_form_content_type, Params};
use crate::registry::scope::Action;
use crate::registry::scope::{format_scopes, scopes_of, ApiCall, RouteError, Scope};
use crate::tls::client_auth::ClientIdentity;

/// How a refresh token's subject first proved who they are (its `auth_method` claim).
const BASIC: &str = "basic";
const CERTIFICATE: &str = "certificate";
const ROBOT: &str = "robot";
const LDAP: &str = "ldap";

/// What a request brings.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a [u8]>,
    pub certificate: Option<&'a ClientIdentity>,
    pub client_ip: Option<IpAddr>,
}

impl RequestFacts<'_> {
    /// What authentication looks at.
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            client_ip: self.client_ip,
            authorization: self.authorization,
            certificate: self.certificate,
        }
    }
}

/// Everything that decides access.
pub struct Access {
    /// Shared across reloads, so throttle and cache state survive them.
    pub authn: Arc<Authenticator>,
    pub acl: Acl,
    /// `[limits]`.
    pub limits: crate::auth::limits::Limits,
    pub token: Option<TokenConfig>,
    basic_realm: Option<String>,
    /// Whether any credentials can be presented (then `/v2/` challenges anonymous clients).
    credentials_matter: bool,
}

/// The outcome of deciding one `/v2/` request, kept until the request is logged: metrics
/// and the audit log are written from it, once.
#[derive(Debug)]
pub struct Decision {
    /// The authentication method that decided (`none`, `anonymous`, `basic`, `certificate`,
    /// `token`), or for a refusal the credentials presented (`basic`, `token`, `other`,
    /// `anonymous`).
    pub method: &'static str,
    pub verdict: Result<Principal, Refusal>,
}

/// Why a request is refused, and as whom it is audited.
#[derive(Debug)]
pub struct Refusal {
    pub answer: GatewayError,
    /// The user to audit the refusal as (empty when the credentials named nobody);
    /// `None` when it is not audited: refusals of clients that sent no credentials
    /// (every docker login starts with a challenge) unless throttled, and read-only
    /// refusals.
    pub audit_as: Option<String>,
    /// The method that refused, when it is not the scheme presented (`ldap`).
    pub method: Option<&'static str>,
}

impl Decision {
    /// Turns an allowed request into a refusal decided after the access check (a rate limit,
    /// an immutable tag), audited as its principal and counted by `answer`'s status.
    pub fn refuse_allowed(&mut self, answer: GatewayError) {
        if let Ok(principal) = &self.verdict {
            let user = principal.user.clone();
            self.verdict = Err(Refusal {
                answer,
                audit_as: Some(user),
                method: None,
            });
        }
    }

    /// The `outcome` label of the auth metric.
    pub fn outcome(&self) -> &'static str {
        match &self.verdict {
            Ok(_) => "ok",
            Err(refusal) => match refusal.answer.status().as_u16() {
                401 | 403 | 405 => "denied",
                429 => "throttled",
                503 => "unavailable",
                _ => "bad_request",
            },
        }
    }
}

impl Access {
    pub fn from_config(config: &Config) -> Self {
        Self::with_authenticator(
            config,
            Arc::new(Authenticator::new(
                &config.auth,
                config.tls.client_auth.is_some(),
                Arc::new(crate::store::Store::new(&config.state)),
            )),
        )
    }

    /// The rules of `config` with an existing authenticator (a reload).
    pub fn with_authenticator(config: &Config, authn: Arc<Authenticator>) -> Self {
        let credentials_matter =
            authn.accepts_basic() || authn.certificates || config.auth.token.is_some();
        let basic_realm = match (&config.auth.htpasswd, authn.accepts_basic()) {
            (Some(h), _) => Some(h.realm.clone()),
            (None, true) => Some(crate::config::DEFAULT_REALM.to_string()),
            (None, false) => None,
        };
        Access {
            basic_realm,
            authn,
            acl: config.acl.clone(),
            limits: config.limits.clone(),
            token: config.auth.token.clone(),
            credentials_matter,
        }
    }

    /// The path the token endpoint is served at, when configured.
    pub fn token_path(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.path.as_str())
    }

    /// Decides a `/v2/` request, the API call `call` (`None`: no registry route) whose
    /// query parsed as `params` (see [`registry_params`]).
    pub async fn registry_request(
        &self,
        req: RequestFacts<'_>,
        call: Option<&ApiCall>,
        params: &Params,
    ) -> Decision {
        let verdict = self.authorize(req, call, params).await;
        let method = match &verdict {
            Ok(principal) => principal.method.label(),
            Err(refusal) => refusal
                .method
                .unwrap_or_else(|| presented(req.authorization)),
        };
        Decision { method, verdict }
    }

    /// The principal a `/v2/` request is let through as, or its refusal.
    async fn authorize(
        &self,
        req: RequestFacts<'_>,
        call: Option<&ApiCall>,
        params: &Params,
    ) -> Result<Principal, Refusal> {
        // Refusals other than the ACL's are audited, without a user, when the client
        // presented credentials (or was throttled).
        let refused = |answer: GatewayError| {
            let audited = !matches!(answer, GatewayError::Denied(_) | GatewayError::ReadOnly)
                && (req.authorization.is_some() || answer.status().as_u16() == 429);
            Refusal {
                answer,
                audit_as: audited.then(String::new),
                method: None,
            }
        };
        let scopes = call
            .ok_or(RouteError::UnknownPath)
            .and_then(|c| scopes_of(c, req.method, params))
            .map_err(|e| {
                refused(match e {
                    RouteError::UnknownPath => GatewayError::NotFound,
                    RouteError::Method => {
                        GatewayError::MethodNotAllowed("GET, HEAD, POST, PUT, PATCH, DELETE")
                    }
                    RouteError::MountSource => GatewayError::NameInvalid,
                })
            })?;
        if let (Some(token), Some(bearer)) = (&self.token, bearer(req.authorization)) {
            return self.token_holder(token, bearer, &scopes).map_err(refused);
        }
        let principal = self
            .authn
            .authenticate(req.attempt())
            .await
            .map_err(|f| Refusal {
                method: f.method(),
                ..refused(failure_answer(f, self.challenge(&scopes, None)))
            })?;
        let anonymous = principal.method == AuthMethod::Anonymous;
        if scopes.is_empty() && anonymous && self.credentials_matter {
            return Err(refused(self.challenge(&scopes, None)));
        }
        let subject = principal.subject(req.client_ip);
        for scope in &scopes {
            for action in &scope.actions {
                match self.acl.decide(&subject, &scope.resource, *action) {
                    AclDecision::Allow { .. } => {}
                    AclDecision::ReadOnly => return Err(refused(GatewayError::ReadOnly)),
                    AclDecision::Deny { reason, .. } => {
                        tracing::info!(client = %show(req.client_ip), user = %principal.user, scope = %scope, reason = %reason, "access denied");
                        let refusal = refused(self.refusal(anonymous, &scopes));
                        return Err(match anonymous {
                            true => refusal,
                            false => Refusal {
                                audit_as: Some(principal.user.clone()),
                                ..refusal
                            },
                        });
                    }
                }
            }
        }
        Ok(principal)
    }

    /// A Bearer token must hold every scope the request needs.
    fn token_holder(
        &self,
        token: &TokenConfig,
        bearer: &str,
        scopes: &[Scope],
    ) -> Result<Principal, GatewayError> {
        let grant = token.verifier.verify(bearer).map_err(|e| {
            tracing::info!(reason = %e.0, "bearer token refused");
            self.challenge(scopes, Some(BearerError::InvalidToken))
        })?;
        for scope in scopes {
            for action in &scope.actions {
                if self.acl.read_only && matches!(action, Action::Push | Action::Delete) {
                    return Err(GatewayError::ReadOnly);
                }
                if !grant.allows(&scope.resource, *action) {
                    tracing::info!(user = %grant.subject, scope = %scope, "token lacks the scope");
                    return Err(self.challenge(scopes, Some(BearerError::InsufficientScope)));
                }
            }
        }
        Ok(Principal::new(grant.subject, AuthMethod::Token))
    }

    /// The answer when the ACL refuses.
    fn refusal(&self, anonymous: bool, scopes: &[Scope]) -> GatewayError {
        if anonymous && self.credentials_matter {
            self.challenge(scopes, None)
        } else {
            GatewayError::Denied("requested access to the resource is denied")
        }
    }

    /// The 401 that tells the client how to authenticate.
    fn challenge(&self, scopes: &[Scope], error: Option<BearerError>) -> GatewayError {
        match (&self.token, &self.basic_realm) {
            (Some(token), _) => GatewayError::BearerChallenge {
                realm: token.realm.clone(),
                service: token.service.clone(),
                scopes: scopes.to_vec(),
                error,
            },
            (None, Some(realm)) => GatewayError::Unauthorized {
                realm: realm.clone(),
            },
            (None, None) => GatewayError::Denied("requested access to the resource is denied"),
        }
    }

    /// Answers the token endpoint: `GET` (query) or `POST` (form `body`); the token and
    /// who it was issued to (for the access log).
    pub async fn token_request(
        &self,
        req: RequestFacts<'_>,
        body: Option<&[u8]>,
    ) -> Result<(Bytes, String), GatewayError> {
        let Some(token) = &self.token else {
            return Err(GatewayError::NotFound);
        };
        let request = match (req.method, body) {
            ("GET", _) => parse_get(req.query),
            ("POST", Some(body)) => parse_post(body).map_err(GatewayError::TokenRequest)?,
            _ => return Err(GatewayError::MethodNotAllowed("GET, POST")),
        };
        if request
            .service
            .as_deref()
            .is_some_and(|s| s != token.service)
        {
            return Err(GatewayError::TokenRequest(OAuthError::InvalidRequest));
        }
        let principal = self.token_principal(token, &request, req).await?;
        let body = self
            .issue(token, &principal, &request, req.client_ip)?
            .body();
        Ok((body, principal.user))
    }

    /// Who asks for a token.
    async fn token_principal(
        &self,
        token: &TokenConfig,
        request: &TokenRequest,
        req: RequestFacts<'_>,
    ) -> Result<Principal, GatewayError> {
        let basic_challenge = GatewayError::Unauthorized {
            realm: self
                .basic_realm
                .clone()
                .unwrap_or_else(|| crate::config::DEFAULT_REALM.into()),
        };
        match &request.grant {
            GrantKind::Header => {
                if let Some(token) = bearer(req.authorization) {
                    return match self.authn.oidc_bearer(token, req.client_ip).await {
                        Some(result) => result.map_err(|f| failure_answer(f, basic_challenge)),
                        None => Err(basic_challenge),
                    };
                }
                self.authn
                    .authenticate(req.attempt())
                    .await
                    .map_err(|f| failure_answer(f, basic_challenge))
            }
            GrantKind::Password(creds) => match self.authn.password(creds, req.client_ip).await {
                Some(result) => result.map_err(|f: Failure| failure_answer(f, basic_challenge)),
                None => Err(basic_challenge),
            },
            GrantKind::Refresh(refresh) => {
                let (user, method, issued) = token
                    .signer
                    .check_refresh_token(refresh, &token.own_key)
                    .map_err(|_| GatewayError::TokenRequest(OAuthError::InvalidGrant))?;
                if self.authn.is_revoked(&user, issued).await {
                    tracing::info!(client = %show(req.client_ip), user = %user, "refresh token refused: revoked (the user or robot was removed)");
                    return Err(GatewayError::TokenRequest(OAuthError::InvalidGrant));
                }
                if method.as_deref() == Some(LDAP) {
                    return self.recheck_directory_user(&user, basic_challenge).await;
                }
                self.recheck_refresh(user, method.as_deref(), req)
            }
        }
    }

    /// A directory user's refresh token: they must still be in the directory, and get the
    /// groups they are in now. A directory that cannot be asked is 503, not a refusal.
    async fn recheck_directory_user(
        &self,
        user: &str,
        challenge: GatewayError,
    ) -> Result<Principal, GatewayError> {
        match self.authn.directory_user(user).await {
            Ok(Some(principal)) => Ok(principal),
            Ok(None) => Err(GatewayError::TokenRequest(OAuthError::InvalidGrant)),
            Err(failure) => Err(failure_answer(failure, challenge)),
        }
    }

    /// The subject of a valid refresh token, if the proof they first gave still holds: an
    /// htpasswd user must still be in the file; a robot must still be in its file and not
    /// expired; a certificate user must present, on this
    /// connection, a certificate verified now (current CAs and CRLs) naming the same user.
    /// Tokens from before the method was recorded pass either way.
    fn recheck_refresh(
        &self,
        user: String,
        method: Option<&str>,
        req: RequestFacts<'_>,
    ) -> Result<Principal, GatewayError> {
        let by_password = || self.authn.basic.is_some() && self.authn.knows_user(&user);
        let by_certificate = || {
            self.authn.certificates
                && req.certificate.and_then(|c| c.user.as_deref()) == Some(user.as_str())
        };
        let by_robot = || {
            crate::auth::robots::robot_of_user(&user).is_some_and(|r| self.authn.robot_is_active(r))
        };
        let method = match method {
            Some(ROBOT) if by_robot() => AuthMethod::Robot,
            Some(BASIC) if by_password() => AuthMethod::Basic,
            Some(CERTIFICATE) if by_certificate() => AuthMethod::Certificate,
            None if by_password() => AuthMethod::Basic,
            None if by_certificate() => AuthMethod::Certificate,
            _ => return Err(GatewayError::TokenRequest(OAuthError::InvalidGrant)),
        };
        Ok(Principal::new(user, method))
    }

    /// Grants what the ACL allows of what was asked, and signs it.
    fn issue(
        &self,
        token: &TokenConfig,
        principal: &Principal,
        request: &TokenRequest,
        ip: Option<IpAddr>,
    ) -> Result<TokenResponse, GatewayError> {
        let subject = principal.subject(ip);
        let granted: Vec<Scope> = request
            .scopes
            .iter()
            .map(|s| Scope {
                resource: s.resource.clone(),
                actions: self.acl.grant(&subject, s),
            })
            .filter(|s| !s.actions.is_empty())
            .collect();
        let access: Vec<_> = granted
            .iter()
            .map(|s| (s.resource.clone(), s.actions.clone()))
            .collect();
        let signed = token
            .signer
            .access_token(&principal.user, &access)
            .map_err(|_| GatewayError::Unavailable)?;
        let method = match principal.method {
            AuthMethod::Basic => Some(BASIC),
            AuthMethod::Certificate => Some(CERTIFICATE),
            AuthMethod::Robot => Some(ROBOT),
            AuthMethod::Ldap => Some(LDAP),
            _ => None,
        };
        let refresh = match (request.offline, principal.user.is_empty(), method) {
            (true, false, Some(method)) => Some(
                token
                    .signer
                    .refresh_token(&principal.user, method)
                    .map_err(|_| GatewayError::Unavailable)?,
            ),
            _ => None,
        };
        let scope_text = format_scopes(&granted);
        tracing::info!(client = %show(ip), user = %principal.user, granted = %scope_text, "token issued");
        Ok(TokenResponse {
            access_token: signed.clone(),
            token: signed,
            expires_in: token.signer.expires_in(),
            issued_at: format_time(now() as i64),
            refresh_token: refresh,
            scope: request.is_post.then_some(scope_text),
        })
    }
}

/// The parameters of a `/v2/` request, the only ones the registry will see: its query
/// parsed strictly ([`Params::parse`]), and no body a form parser would read parameters
/// from (any `Content-Type` of `content_types` naming one is refused).
pub fn registry_params<'a>(
    query: Option<&str>,
    mut content_types: impl Iterator<Item = &'a [u8]>,
) -> Result<Params, GatewayError> {
    if content_types.any(is_form_content_type) {
        return Err(GatewayError::BadRequest(
            "form-encoded and multipart bodies are not accepted under /v2/",
        ));
    }
    Params::parse(query).map_err(|_| GatewayError::BadRequest("a query parameter is repeated"))
}

/// The answer to an authentication failure, given the challenge to send for bad credentials.
fn failure_answer(failure: Failure, challenge: GatewayError) -> GatewayError {
    match failure {
        Failure::BadCredentials => challenge,
        Failure::Throttled { retry_after } => GatewayError::TooManyRequests { retry_after },
        Failure::NamelessCertificate => {
            GatewayError::Denied("a client certificate naming the user is required")
        }
        Failure::Busy => GatewayError::Unavailable,
        Failure::DirectoryRefused => challenge,
        Failure::DirectoryUnavailable => GatewayError::DirectoryUnavailable,
    }
}

/// The `method` label of a refused request: the scheme of the credentials it presented.
fn presented(authorization: Option<&[u8]>) -> &'static str {
    let Some(header) = authorization else {
        return "anonymous";
    };
    let scheme = header.split(|b| *b == b' ').next().unwrap_or_default();
    if scheme.eq_ignore_ascii_case(b"basic") {
        "basic"
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        "token"
    } else {
        "other"
    }
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(authorization: Option<&[u8]>) -> Option<&str> {
    let text = std::str::from_utf8(authorization?).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
