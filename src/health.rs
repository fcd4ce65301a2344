//! The store as this replica sees it: `GET /healthz/store`, the `invitetomedia_store_up` gauge
//! (refreshed every [`CHECK_EVERY`]) and the check of Redis's eviction policy.
//!
//! Readiness (`/readyz`) deliberately does not depend on the store: when Redis is down every
//! replica still creates links, serves pages and the JWKS, and answers redemptions with 503;
//! taking every pod out of the load balancer would turn that into a blank outage.

use std::time::{Duration, Instant};

use crate::settings::ConfigError;
use crate::state::AppState;
use crate::store::{Store, UseStore, evicts_keys};

/// How often each replica checks its store for the gauges.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// One check of the store: its round-trip time, or `None` when it did not answer.
pub async fn probe(state: &AppState) -> Option<Duration> {
    let started = Instant::now();
    let up = state.store.ping().await.is_ok();
    state.metrics.store_up.set(i64::from(up));
    up.then(|| started.elapsed())
}

/// What start-up learned of the eviction policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// `noeviction`, or the memory store: nothing is ever evicted.
    Safe,
    /// A policy that can evict counters and revocation markers.
    Evicting(String),
    /// The policy could not be read (Redis unreachable, or `CONFIG` disabled).
    Unknown,
}

/// Reads the store's eviction policy and records it in the gauge.
pub async fn eviction_policy(state: &AppState) -> EvictionPolicy {
    let policy = match &state.store {
        Store::Memory(_) => EvictionPolicy::Safe,
        Store::Redis(redis) => match redis.maxmemory_policy().await {
            Some(p) if evicts_keys(&p) => EvictionPolicy::Evicting(p),
            Some(_) => EvictionPolicy::Safe,
            None => EvictionPolicy::Unknown,
        },
    };
    state
        .metrics
        .eviction_policy_verified
        .set(i64::from(policy == EvictionPolicy::Safe));
    policy
}

/// The start-up check: production refuses an evicting policy; development and test warn. A
/// policy that cannot be read is a warning everywhere (managed Redis often disables `CONFIG`).
pub async fn check_eviction_policy(state: &AppState) -> Result<EvictionPolicy, ConfigError> {
    let policy = eviction_policy(state).await;
    match &policy {
        EvictionPolicy::Evicting(p) if state.live().settings.is_production() => {
            return Err(ConfigError::new(
                "store",
                format!(
                    "Redis maxmemory-policy is {p}: it can evict use counters and revocations (every key has a TTL, so volatile-* policies too); set maxmemory-policy noeviction"
                ),
            ));
        }
        EvictionPolicy::Evicting(p) => warn_evicting(p),
        EvictionPolicy::Unknown => tracing::warn!(
            "cannot read Redis maxmemory-policy (CONFIG disabled or Redis unreachable); make sure it is noeviction: invitetomedia_store_eviction_policy_verified stays 0 until it is read"
        ),
        EvictionPolicy::Safe => {}
    }
    Ok(policy)
}

fn warn_evicting(policy: &str) {
    tracing::warn!(
        policy = %policy,
        "Redis maxmemory-policy can evict use counters and revocations; set maxmemory-policy noeviction"
    );
}

/// Refreshes the gauges every [`CHECK_EVERY`] for as long as the process runs, and reads the
/// eviction policy again until it reads `noeviction`; a change to an evicting policy is logged
/// (an error in production, where start-up would have refused it).
pub async fn watch(state: actix_web::web::Data<AppState>, mut policy: EvictionPolicy) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    loop {
        ticks.tick().await;
        probe(&state).await;
        if policy == EvictionPolicy::Safe {
            continue;
        }
        let now = eviction_policy(&state).await;
        if now != policy
            && let EvictionPolicy::Evicting(p) = &now
        {
            if state.live().settings.is_production() {
                tracing::error!(policy = %p, "Redis maxmemory-policy can evict use counters and revocations; set maxmemory-policy noeviction");
            } else {
                warn_evicting(p);
            }
        }
        policy = now;
    }
}
