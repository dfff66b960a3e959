//! A file the gateway re-reads when it changes (the robots file): looked at, at most once a
//! second, when it is used; a good new version replaces the old one, a bad one is logged
//! and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the file's modification time is looked at.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Size and modification time, to notice edits.
pub type Stamp = Option<(SystemTime, u64)>;

/// The stamp of `path` now (`None` when it cannot be read).
pub fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The parsed content of a file, kept current.
pub struct WatchedFile<T> {
    path: PathBuf,
    /// What the file is, for log lines ("robots file").
    what: &'static str,
    parse: fn(&str) -> Result<T, String>,
    state: RwLock<(Arc<T>, Stamp)>,
    last_look: Mutex<Instant>,
    /// Told of every change (old, new): revoking removed robots' refresh tokens.
    on_change: Option<ChangeHook<T>>,
}

type ChangeHook<T> = Box<dyn Fn(&T, &T) + Send + Sync>;

impl<T: PartialEq> WatchedFile<T> {
    /// `initial` is the file's content as validated at start-up.
    pub fn new(
        path: PathBuf,
        what: &'static str,
        initial: T,
        parse: fn(&str) -> Result<T, String>,
    ) -> Self {
        let seen = stamp(&path);
        WatchedFile {
            path,
            what,
            parse,
            state: RwLock::new((Arc::new(initial), seen)),
            last_look: Mutex::new(Instant::now()),
            on_change: None,
        }
    }

    /// The content in force, after re-reading the file if it changed.
    pub fn current(&self) -> Arc<T> {
        self.reload_if_changed();
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()).0)
    }

    /// Calls `hook` with the old and the new content whenever it changes.
    pub fn on_change(mut self, hook: impl Fn(&T, &T) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Box::new(hook));
        self
    }

    /// Uses `new` from now on (a configuration reload, which read and validated the file).
    pub fn install(&self, new: T) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if *state.0 != new {
            tracing::info!(path = %self.path.display(), "{} changed; reloaded", self.what);
            if let Some(hook) = &self.on_change {
                hook(&state.0, &new);
            }
            state.0 = Arc::new(new);
        }
    }

    fn reload_if_changed(&self) {
        {
            let mut last = self.last_look.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < RECHECK_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let now = stamp(&self.path);
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if now == state.1 {
                return;
            }
            state.1 = now;
        }
        let parsed = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|text| (self.parse)(&text));
        match parsed {
            Ok(new) => self.install(new),
            Err(why) => {
                tracing::warn!(path = %self.path.display(), "{} changed but is invalid; keeping the previous version: {why}", self.what)
            }
        }
    }
}
