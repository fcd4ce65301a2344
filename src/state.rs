//! Everything a handler needs, built once in `startup.rs` and shared through `web::Data`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};

use crate::domain::ModuleSettings;
use crate::email::Mailer;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::settings::{ConfigError, Settings, ThemeSettings};
use crate::store::Store;
use crate::tokens::Keyring;

/// A configured tenant, validated.
#[derive(Debug)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where the participant's browser posts the grant.
    pub accept_url: String,
    /// `aud` of grants.
    pub grant_audience: String,
    /// Language of invite emails when a request names none.
    pub default_language: Option<String>,
    /// Look of the participant pages.
    pub theme: ThemeSettings,
    /// The pages' CSP directives for the logo and the hand-off form, built once.
    pub page_sources: String,
    /// Module settings.
    pub module: ModuleSettings,
}

/// Shared application state.
#[derive(Debug)]
pub struct AppState {
    /// The configuration the service runs with.
    pub settings: Settings,
    /// Tenants by id.
    pub tenants: HashMap<String, Arc<Tenant>>,
    /// Tenants by the SHA-256 of each of their API keys.
    api_keys: HashMap<[u8; 32], Arc<Tenant>>,
    /// Keys of invite tokens.
    pub invite_keys: Keyring,
    /// Keys of grants.
    pub grant_keys: Keyring,
    /// Use counters and revocations.
    pub store: Store,
    /// Email templates and transport.
    pub mailer: Mailer,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The JWKS document, rendered once.
    pub jwks: String,
    /// Set on SIGTERM: /readyz answers 503 while in-flight requests finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// The participant endpoints' rate limit, when configured.
    pub rate_limiter: Option<RateLimiter>,
    /// The origin of `public_base_url` (`scheme://host[:port]`): the only `Origin` besides
    /// `null` the join form may be posted from.
    pub public_origin: String,
}

impl AppState {
    /// Assembles the state from validated settings, keys and a store.
    pub fn new(
        settings: Settings,
        invite_keys: Keyring,
        grant_keys: Keyring,
        store: Store,
    ) -> Result<Self, ConfigError> {
        let mailer = Mailer::from_settings(&settings)?;
        let rate_limiter = settings.server.rate_limit.as_ref().map(RateLimiter::new);
        let mut tenants = HashMap::new();
        let mut api_keys: HashMap<[u8; 32], Arc<Tenant>> = HashMap::new();
        for (id, t) in &settings.tenants {
            let tenant = Arc::new(Tenant {
                id: id.clone(),
                name: t.name.trim().to_owned(),
                accept_url: t.accept_url.clone(),
                grant_audience: t.grant_audience.clone(),
                default_language: t.default_language.clone(),
                theme: t.theme.clone(),
                page_sources: crate::pages::page_sources(&t.theme, &t.accept_url),
                module: t.module_settings(id)?,
            });
            for hash in &t.api_keys {
                let hex = hash.strip_prefix("sha256:").unwrap_or_default();
                let bytes = decode_hex32(hex).ok_or_else(|| {
                    ConfigError::new(format!("tenants.{id}.api_keys"), "invalid sha256 hash")
                })?;
                // Settings validation refuses a key configured twice, for any tenants.
                api_keys.insert(bytes, Arc::clone(&tenant));
            }
            tenants.insert(id.clone(), tenant);
        }
        let jwks = crate::tokens::jwks_json(&grant_keys);
        let public_origin = url::Url::parse(&settings.server.public_base_url)
            .map(|url| url.origin().ascii_serialization())
            .map_err(|e| ConfigError::new("server.public_base_url", e.to_string()))?;
        Ok(Self {
            settings,
            tenants,
            api_keys,
            invite_keys,
            grant_keys,
            store,
            mailer,
            metrics: Metrics::default(),
            jwks,
            draining: std::sync::atomic::AtomicBool::new(false),
            rate_limiter,
            public_origin,
        })
    }

    /// The tenant whose API key this is, looked up by the key's SHA-256: one lookup however
    /// many tenants are configured. Only digests are ever compared, so the lookup's timing can
    /// tell at most how much of a guess's digest matches a stored one, which brings a guess no
    /// closer to a key (that would take a SHA-256 preimage).
    pub fn tenant_for_api_key(&self, presented: &str) -> Option<Arc<Tenant>> {
        let hash = digest(&SHA256, presented.as_bytes());
        let hash: &[u8; 32] = hash.as_ref().try_into().ok()?;
        self.api_keys.get(hash).cloned()
    }

    /// The configured tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `sha256:<hex>` of an API key, the form `api_keys` stores.
pub fn hash_api_key(key: &str) -> String {
    let hash = digest(&SHA256, key.as_bytes());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_published_demo_key() {
        assert_eq!(
            hash_api_key("demo-api-key"),
            crate::settings::DEMO_API_KEY_HASH
        );
    }

    #[test]
    fn hex_round_trip() {
        let hash = hash_api_key("k");
        let bytes = decode_hex32(hash.strip_prefix("sha256:").unwrap()).unwrap();
        assert_eq!(bytes.as_slice(), digest(&SHA256, b"k").as_ref());
        assert!(decode_hex32("zz").is_none());
    }
}
