//! The one state every part of the running gateway reads: the boot half of the
//! configuration, fixed from start-up, and the live half, which a reload replaces whole.
//!
//! The proxy loads the live half once per request and decides the whole request on it; the
//! listeners load it once per handshake; the admin listener describes what it holds. So
//! what `/metrics` shows is what is served, and a reload lands between requests, never in
//! the middle of one.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::boot::Boot;
use crate::config::Config;
use crate::gateway::decide::Access;
use crate::tls::settings::TlsConfig;
use crate::tls::TlsSource;

/// What a reload replaces: the certificate, client CAs and CRLs, the users' rules and
/// token keys, and the files to watch for the next reload.
pub struct Live {
    pub tls: Arc<TlsConfig>,
    pub access: Access,
    /// Every file the configuration in force names (for `watch`).
    pub files: Vec<PathBuf>,
}

/// Boot and live halves together.
pub struct State {
    pub boot: Boot,
    live: ArcSwap<Live>,
}

impl State {
    /// The state `config` starts with.
    pub fn new(config: &Config, access: Access) -> Self {
        State {
            boot: Boot::of(config),
            live: ArcSwap::from_pointee(Live {
                tls: Arc::new(config.tls.clone()),
                access,
                files: config.files.clone(),
            }),
        }
    }

    /// The live half in force now. Keep the `Arc` for as long as one decision lasts.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Serves `live` from now on; whatever holds the previous one keeps it.
    pub fn replace(&self, live: Live) {
        self.live.store(Arc::new(live));
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

impl TlsSource for State {
    fn tls(&self) -> Arc<TlsConfig> {
        Arc::clone(&self.live.load().tls)
    }
}
