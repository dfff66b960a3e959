//! The boot half of the configuration: what listeners, threads, connections and the
//! process-wide pieces are built from once, at start-up. A reload never changes it; a
//! reloaded file whose boot half differs is reported, key by key, as needing a restart.
//!
//! The fields and the key each is reported as are listed once, in `boot_settings!`, so a
//! setting cannot be added to the boot half without being compared on reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, LogConfig, Timeouts, Upstream};
use crate::auth::Require;
use crate::registry::forwarding::TrustedProxies;
use crate::tls::client_auth::{ClientAuthMode, UserFrom};
use crate::tls::settings::TlsVersion;

/// Declares [`Boot`] from `field: Type = "key reported on reload", |config| value`.
macro_rules! boot_settings {
    ($($field:ident: $ty:ty = $key:literal, |$c:ident| $value:expr;)+) => {
        /// What is fixed from start-up to stop (see the module documentation).
        #[derive(Debug, Clone, PartialEq)]
        pub struct Boot {
            $(pub $field: $ty,)+
        }

        impl Boot {
            /// The boot half of `config`.
            pub fn of(config: &Config) -> Self {
                Boot { $($field: { let $c = config; $value },)+ }
            }

            /// The keys whose value differs in `other`, in the order they are declared.
            pub fn changed_keys(&self, other: &Boot) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(if self.$field != other.$field { keys.push($key); })+
                keys
            }
        }
    };
}

boot_settings! {
    listen: Vec<SocketAddr> = "listen", |c| c.listen.clone();
    upstreams: Vec<Upstream> = "upstream", |c| c.upstreams.clone();
    threads: usize = "threads", |c| c.threads;
    trusted_proxies: TrustedProxies = "trusted_proxies", |c| c.trusted_proxies.clone();
    timeouts: Timeouts = "[timeouts]", |c| c.timeouts;
    grace_period: Duration = "shutdown.grace_period", |c| c.grace_period;
    log: LogConfig = "[log]", |c| c.log.clone();
    watch: bool = "watch", |c| c.watch;
    admin: Option<SocketAddr> = "[admin]", |c| c.admin;
    audit: Option<PathBuf> = "[audit]", |c| c.audit.clone();
    audit_pulls: bool = "audit.pulls", |c| c.audit_pulls;
    webhooks: Vec<crate::events::WebhookSettings> = "[[events.webhook]]", |c| c.webhooks.clone();
    state: crate::store::StateSettings = "[state]", |c| c.state.clone();
    max_connections: Option<u32> = "limits.max_connections", |c| c.limits.max_connections;
    tls_min_version: TlsVersion = "tls.min_version", |c| c.tls.min_version;
    client_auth: Option<(ClientAuthMode, UserFrom)> =
        "tls.client_auth (on/off, mode, user_from)",
        |c| c.tls.client_auth.as_ref().map(|a| (a.mode, a.user_from));
    http2: bool = "tls.http2", |c| c.tls.http2;
    acme: Option<crate::tls::acme::AcmeSettings> =
        "[tls.acme] (and whether the certificate comes from files or ACME)",
        |c| c.tls.acme().cloned();
    htpasswd_path: Option<PathBuf> =
        "auth.htpasswd.path (the file itself is re-read on change)",
        |c| c.auth.htpasswd.as_ref().map(|h| h.path.clone());
    robots_path: Option<PathBuf> =
        "auth.robots.path (the file itself is re-read on change)",
        |c| c.auth.robots.as_ref().map(|r| r.path.clone());
    oidc: String = "[[auth.oidc]] (its key stores live until a restart)",
        |c| format!("{:?}", c.auth.oidc.iter().map(|o| (
            &o.name, &o.issuer, &o.audience, &o.source, &o.algorithms,
            o.leeway, o.max_lifetime, o.jwks_refresh, o.jwks_min_refresh,
            o.file_keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
        )).collect::<Vec<_>>());
    ldap: Option<String> = "[auth.ldap] (its connections and cache live until a restart)",
        |c| c.auth.ldap.as_ref().map(|l| l.fingerprint());
    htpasswd_workers: Option<usize> = "auth.htpasswd.workers",
        |c| c.auth.htpasswd.as_ref().map(|h| h.workers);
    require: Require = "auth.require", |c| c.auth.require;
    forward_authorization: bool = "auth.forward_authorization",
        |c| c.auth.forward_authorization;
    throttle_and_cache: (u32, Duration, Duration, usize) = "[auth.throttle], [auth.cache]",
        |c| (
            c.auth.throttle_max_failures,
            c.auth.throttle_window,
            c.auth.cache_ttl,
            c.auth.cache_capacity,
        );
}

impl Boot {
    /// Whether the listeners' TLS set-up (client certificates on or off, their mode and
    /// name field, ALPN, the certificate's source) is the same, so a new certificate and CAs can be served by them.
    pub fn same_tls_shape(&self, other: &Boot) -> bool {
        self.client_auth == other.client_auth
            && self.http2 == other.http2
            && self.acme == other.acme
    }
}
