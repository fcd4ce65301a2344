//! Live reload. On `SIGHUP`, and shortly after any change in a directory the configuration was
//! read from (configuration files, `tenants_dir`, `templates_dir`, key files), the whole
//! configuration is loaded, validated and built again off the request path, then swapped in at
//! once: requests already running finish on the old one, every later request sees the new one.
//! A configuration that fails changes nothing. `[server]`, `[store]` and `tenants_dir` need a
//! restart: a reload that changes them keeps their running values and warns, naming each key.
//!
//! Directories are watched rather than files: a Kubernetes ConfigMap or Secret volume replaces
//! its `..data` symlink atomically and never writes the visible files, so only an event in the
//! directory tells of the change.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use actix_web::web;
use futures_util::FutureExt;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::metrics::ReloadOutcome;
use crate::settings::{ConfigError, LoadOptions, Loaded, Settings};
use crate::state::{AppState, Live};

/// Quiet time after a file event before reading: an editor's or the kubelet's several steps
/// arrive as one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The new configuration differs and now serves; the new generation.
    Applied(u64),
    /// The configuration read is the one serving.
    Unchanged,
}

/// Loads the configuration again with `options` and, when it is valid and differs, swaps it in.
/// Logs what failed (key and file) or which restart-only keys changed, then counts the outcome.
pub fn reload(state: &AppState, options: &LoadOptions) -> Result<Reloaded, ConfigError> {
    reload_noting(state, options, &mut Interest::default())
}

/// [`reload`], noting in `seen` what the configuration it read names (even one that then
/// failed to build), so the watcher also watches for the file that would fix it.
fn reload_noting(
    state: &AppState,
    options: &LoadOptions,
    seen: &mut Interest,
) -> Result<Reloaded, ConfigError> {
    let result = try_reload(state, options, seen);
    match &result {
        Ok(Reloaded::Applied(generation)) => {
            tracing::info!(generation, "configuration reloaded")
        }
        Ok(Reloaded::Unchanged) => tracing::debug!("configuration unchanged"),
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; the previous configuration keeps serving")
        }
    }
    let outcome = if result.is_ok() { "ok" } else { "error" };
    if result.is_ok() {
        state.metrics.config_reloaded_now();
    }
    state
        .metrics
        .config_reloads
        .get_or_create(&ReloadOutcome { outcome })
        .inc();
    result
}

fn try_reload(
    state: &AppState,
    options: &LoadOptions,
    seen: &mut Interest,
) -> Result<Reloaded, ConfigError> {
    let old = state.live();
    let mut loaded = Settings::load_watched(options)?;
    *seen = Interest::of(&loaded.settings, &loaded.watched, options);
    let restart_only = restart_only_changes(&old.settings, &loaded);
    // `[server]` and `[store]` keep the values the service started with, whatever the files say.
    loaded.settings.server = old.settings.server.clone();
    loaded.settings.store = old.settings.store.clone();
    let live = Live::build(loaded, Some(&old))?;
    if !restart_only.is_empty() {
        tracing::warn!(
            keys = %restart_only.join(", "),
            "these keys take effect on restart; everything else is applied"
        );
    }
    if live.digest == old.digest {
        return Ok(Reloaded::Unchanged);
    }
    state.replace(Arc::new(live));
    state.metrics.config_generation.inc();
    Ok(Reloaded::Applied(
        state.metrics.config_generation.get() as u64
    ))
}

/// The restart-only keys whose values the files now give differently: `[server]`, `[store]`
/// (URLs compared with their passwords, which their printed form hides) and `tenants_dir`.
fn restart_only_changes(running: &Settings, loaded: &Loaded) -> Vec<String> {
    let new = &loaded.settings;
    let mut keys = changed_keys("server", &running.server, &new.server);
    keys.extend(changed_keys("store", &running.store, &new.store));
    let exposed = |s: &Settings| {
        (
            s.store.redis_url.expose().to_owned(),
            s.store
                .cluster_nodes
                .iter()
                .map(|n| n.expose().to_owned())
                .collect::<Vec<_>>(),
        )
    };
    let (old_url, old_nodes) = exposed(running);
    let (new_url, new_nodes) = exposed(new);
    for (key, changed) in [
        ("store.redis_url", old_url != new_url),
        ("store.cluster_nodes", old_nodes != new_nodes),
    ] {
        if changed && !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    if loaded.configured_tenants_dir != running.tenants_dir {
        keys.push("tenants_dir".to_owned());
    }
    keys
}

/// The dotted keys under `section` whose printed values differ.
fn changed_keys<T: serde::Serialize>(section: &str, old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| format!("{section}.{k}"))
        .collect()
}

/// What to watch: directories, and file names that matter whatever they are called (the
/// configuration file and the key files; besides them any `.toml` file and any Kubernetes
/// `..data` entry matters).
#[derive(Debug, Clone, Default)]
struct Interest {
    dirs: BTreeSet<PathBuf>,
    names: BTreeSet<OsString>,
}

impl Interest {
    fn of(settings: &Settings, dirs: &BTreeSet<PathBuf>, options: &LoadOptions) -> Self {
        let names = options
            .extra_file
            .iter()
            .map(PathBuf::as_path)
            .chain(settings.key_files())
            .filter_map(|path| path.file_name().map(OsString::from))
            .collect();
        Self {
            dirs: dirs.clone(),
            names,
        }
    }

    fn union(mut self, other: &Interest) -> Self {
        self.dirs.extend(other.dirs.iter().cloned());
        self.names.extend(other.names.iter().cloned());
        self
    }
}

/// Whether a change of `path` may change the configuration.
fn matters(path: &Path, named: &BTreeSet<OsString>) -> bool {
    let Some(name) = path.file_name() else {
        return true;
    };
    name.to_string_lossy().starts_with("..")
        || path.extension().is_some_and(|e| e == "toml")
        || named.contains(name)
}

/// How often the fallback watcher polls, where the kernel's notifications are not available.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Starts reloading on SIGHUP and on file changes, for the life of the process. `options` are
/// those the service started with; `tenants_dir` stays the one it started with. The signal
/// handler and the watches are in place when this returns (call it before the server starts),
/// and one reload follows at once, for a change made while the service was starting.
pub fn spawn(state: web::Data<AppState>, mut options: LoadOptions) {
    options.tenants_dir = Some(state.live().settings.tenants_dir.clone());
    let trigger = Arc::new(Notify::new());
    spawn_sighup(Arc::clone(&trigger));
    let live = state.live();
    let interest = Interest::of(&live.settings, &live.watched, &options);
    let names = Arc::new(RwLock::new(interest.names.clone()));
    let mut watcher = start_watcher(&trigger, &names);
    let mut watching = BTreeSet::new();
    if let Some(w) = watcher.as_mut() {
        watch(w.as_mut(), &mut watching, &interest.dirs);
    }
    trigger.notify_one();
    actix_web::rt::spawn(async move {
        loop {
            trigger.notified().await;
            tokio::time::sleep(SETTLE).await;
            // Events that arrived while settling are part of this reload.
            let _ = trigger.notified().now_or_never();
            let (state2, options2) = (state.clone(), options.clone());
            let reloaded = tokio::task::spawn_blocking(move || {
                let mut seen = Interest::default();
                let _ = reload_noting(&state2, &options2, &mut seen);
                seen
            })
            .await;
            let Ok(seen) = reloaded else { continue };
            let live = state.live();
            let interest = Interest::of(&live.settings, &live.watched, &options).union(&seen);
            if let Some(w) = watcher.as_mut() {
                watch(w.as_mut(), &mut watching, &interest.dirs);
            }
            *names.write().unwrap_or_else(PoisonError::into_inner) = interest.names.clone();
        }
    });
}

/// The kernel's watcher (inotify on Linux), or one that polls when that cannot start (a node
/// out of inotify instances); `None` only when neither can, and SIGHUP is then the way.
fn start_watcher(
    trigger: &Arc<Notify>,
    names: &Arc<RwLock<BTreeSet<OsString>>>,
) -> Option<Box<dyn Watcher + Send>> {
    let handler = || {
        let (events, names) = (Arc::clone(trigger), Arc::clone(names));
        move |event: notify::Result<notify::Event>| {
            // Reading a file (our own reload included) is no change, and neither is a change
            // of another file that shares a directory (a log, an editor's swap file).
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let names = names.read().unwrap_or_else(PoisonError::into_inner);
            if event.paths.iter().any(|path| matters(path, &names)) {
                events.notify_one();
            }
        }
    };
    match notify::recommended_watcher(handler()) {
        Ok(w) => return Some(Box::new(w)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch files with the kernel's notifications; polling every 2 s")
        }
    }
    let config = notify::Config::default().with_poll_interval(POLL_EVERY);
    match notify::PollWatcher::new(handler(), config) {
        Ok(w) => Some(Box::new(w)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch configuration files; reload with SIGHUP");
            None
        }
    }
}

/// Watches the directories of `wanted` not yet watched; stops watching those no longer wanted.
fn watch(
    watcher: &mut (dyn Watcher + Send),
    watching: &mut BTreeSet<PathBuf>,
    wanted: &BTreeSet<PathBuf>,
) {
    for gone in watching.difference(wanted).cloned().collect::<Vec<_>>() {
        let _ = watcher.unwatch(&gone);
        watching.remove(&gone);
    }
    for dir in wanted.difference(&watching.clone()) {
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watching.insert(dir.clone());
            }
            // A directory that does not exist (no config/ beside the binary) has nothing to
            // watch; one that exists and cannot be watched is worth a warning.
            Err(e) if dir.is_dir() => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; reload with SIGHUP after changes there")
            }
            Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "not watched"),
        }
    }
}

fn spawn_sighup(trigger: Arc<Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            actix_web::rt::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    trigger.notify_one();
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP; configuration reloads on file changes only")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configuration_files_trigger_a_reload() {
        let named: BTreeSet<OsString> = ["invite-i1", "config.yaml"].map(OsString::from).into();
        for path in [
            "/etc/itm/tenants/acme.toml",
            "/etc/itm/tenants/..data",
            "/etc/itm/tenants/..data_tmp",
            "/etc/itm/tenants/..2026_12_03_00_00_00.1",
            "/run/secrets/invite-i1",
            "/etc/itm/config.yaml",
        ] {
            assert!(matters(Path::new(path), &named), "{path}");
        }
        for path in [
            "/etc/itm/service.log",
            "/etc/itm/tenants/.acme.toml.swp",
            "/etc/itm/tenants/acme.tmp-1234",
            "/run/secrets/grant-old.pem",
        ] {
            assert!(!matters(Path::new(path), &named), "{path}");
        }
    }

    #[test]
    fn changed_keys_name_each_differing_key() {
        let old = serde_json::json!({ "port": 1, "host": "a", "workers": null });
        let new = serde_json::json!({ "port": 2, "host": "a", "workers": 4 });
        assert_eq!(
            changed_keys("server", &old, &new),
            ["server.port", "server.workers"]
        );
        assert!(changed_keys("server", &old, &old).is_empty());
    }

    fn loaded(store: &str) -> Loaded {
        Settings::load_watched(&LoadOptions {
            config_dir: "config".into(),
            app_env: "test".into(),
            extra_toml: Some(format!("[store]\nbackend = \"redis\"\n{store}")),
            env: Some(Default::default()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_password_change_is_a_restart_only_change() {
        // The printed URLs are the same ("[redacted]"); the key changed all the same.
        let running = loaded("redis_url = \"redis://:old@redis:6379\"").settings;
        let changed = loaded("redis_url = \"redis://:new@redis:6379\"");
        assert_eq!(
            restart_only_changes(&running, &changed),
            ["store.redis_url"]
        );
        let same = loaded("redis_url = \"redis://:old@redis:6379\"");
        assert!(restart_only_changes(&running, &same).is_empty());
    }
}
