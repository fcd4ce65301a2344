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
use crate::settings::{ConfigError, LoadOptions, Settings};
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
/// Counts the outcome; logs what failed (key and file) or which restart-only keys changed.
pub fn reload(state: &AppState, options: &LoadOptions) -> Result<Reloaded, ConfigError> {
    let result = try_reload(state, options);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    state
        .metrics
        .config_reloads
        .get_or_create(&ReloadOutcome { outcome })
        .inc();
    match &result {
        Ok(done) => {
            state.metrics.config_reloaded_now();
            if let Reloaded::Applied(generation) = done {
                tracing::info!(generation, "configuration reloaded");
            } else {
                tracing::debug!("configuration unchanged");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; the previous configuration keeps serving")
        }
    }
    result
}

fn try_reload(state: &AppState, options: &LoadOptions) -> Result<Reloaded, ConfigError> {
    let old = state.live();
    let mut loaded = Settings::load_watched(options)?;
    let mut restart_only = changed_keys("server", &old.settings.server, &loaded.settings.server);
    restart_only.extend(changed_keys(
        "store",
        &old.settings.store,
        &loaded.settings.store,
    ));
    if loaded.configured_tenants_dir != old.settings.tenants_dir {
        restart_only.push("tenants_dir".to_owned());
    }
    if !restart_only.is_empty() {
        tracing::warn!(
            keys = %restart_only.join(", "),
            "these keys take effect on restart; everything else is applied now"
        );
        loaded.settings.server = old.settings.server.clone();
        loaded.settings.store = old.settings.store.clone();
    }
    let live = Live::build(loaded, Some(&old))?;
    if live.digest == old.digest {
        return Ok(Reloaded::Unchanged);
    }
    state.replace(Arc::new(live));
    state.metrics.config_generation.inc();
    Ok(Reloaded::Applied(
        state.metrics.config_generation.get() as u64
    ))
}

/// The dotted keys under `section` whose values differ (secrets compare by their redacted
/// form, which is all a warning could name anyway).
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

/// Starts reloading on SIGHUP and on file changes, for the life of the process. `options` are
/// those the service started with; `tenants_dir` stays the one it started with. The signal
/// handler and the watches are in place when this returns (call it before the server starts).
pub fn spawn(state: web::Data<AppState>, mut options: LoadOptions) {
    options.tenants_dir = Some(state.live().settings.tenants_dir.clone());
    let trigger = Arc::new(Notify::new());
    spawn_sighup(Arc::clone(&trigger));
    let events = Arc::clone(&trigger);
    let named = Arc::new(RwLock::new(named_files(&state.live(), &options)));
    let watched_names = Arc::clone(&named);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading a file (our own reload included) is no change, and neither is a change of
        // another file that shares a directory (a log, an editor's swap file).
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let names = watched_names.read().unwrap_or_else(PoisonError::into_inner);
        if event.paths.iter().any(|path| matters(path, &names)) {
            events.notify_one();
        }
    });
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch configuration files; reload with SIGHUP");
            None
        }
    };
    // Watching starts before this returns, so before the server answers its first request: a
    // change made once the service is ready is never missed.
    let mut watching = BTreeSet::new();
    if let Some(w) = watcher.as_mut() {
        watch(w, &mut watching, &state.live().watched);
    }
    actix_web::rt::spawn(async move {
        loop {
            trigger.notified().await;
            tokio::time::sleep(SETTLE).await;
            // Events that arrived while settling are part of this reload.
            let _ = trigger.notified().now_or_never();
            let (state2, options2) = (state.clone(), options.clone());
            let result = tokio::task::spawn_blocking(move || reload(&state2, &options2)).await;
            if result.is_ok()
                && let Some(w) = watcher.as_mut()
            {
                let live = state.live();
                watch(w, &mut watching, &live.watched);
                *named.write().unwrap_or_else(PoisonError::into_inner) =
                    named_files(&live, &options);
            }
        }
    });
}

/// The names of files that matter whatever they are called: the configuration file and the
/// key files. Besides them, any `.toml` file and any Kubernetes `..data` entry matters.
fn named_files(live: &Live, options: &LoadOptions) -> BTreeSet<OsString> {
    options
        .extra_file
        .iter()
        .map(PathBuf::as_path)
        .chain(live.settings.key_files())
        .filter_map(|path| path.file_name().map(OsString::from))
        .collect()
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

/// Watches the directories of `wanted` not yet watched; stops watching those no longer wanted.
fn watch(
    watcher: &mut notify::RecommendedWatcher,
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
            // A directory that does not exist (no config/ beside the binary) has nothing to watch.
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
}
