//! Everything a handler needs. [`AppState`] lives as long as the process (store, metrics, rate
//! limiter); [`Live`] is one whole configuration (tenants, keys, templates), replaced at once by
//! a reload. A request takes one `Live` when it starts and keeps it to the end, so it never sees
//! a mix of two configurations.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use aws_lc_rs::digest::{Context, SHA256};

use crate::email::Mailer;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::settings::{ApiKeyHash, ConfigError, Loaded, Settings, TenantSettings, ThemeSettings};
use crate::store::Store;
use crate::tokens::{Keyring, Purpose};

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
    /// The site's own sign-in, linked from the restricted-domain page.
    pub login_url: Option<String>,
    /// Module settings.
    pub module: crate::domain::ModuleSettings,
    /// Digest of everything that decides how this tenant is served: `GET /v1/settings` shows
    /// it so the platform can tell that an admin's change has been applied.
    pub revision: String,
}

/// One whole configuration, built and checked completely before it serves a request.
#[derive(Debug)]
pub struct Live {
    /// The configuration as loaded.
    pub settings: Settings,
    /// Tenants by id.
    pub tenants: HashMap<String, Arc<Tenant>>,
    /// Tenants by the SHA-256 of each of their API keys.
    api_keys: HashMap<ApiKeyHash, Arc<Tenant>>,
    /// Keys of invite tokens.
    pub invite_keys: Arc<Keyring>,
    /// Keys of grants.
    pub grant_keys: Arc<Keyring>,
    /// Email templates and transport.
    pub mailer: Mailer,
    /// The JWKS document, rendered once.
    pub jwks: String,
    /// The origin of `public_base_url` (`scheme://host[:port]`): the only `Origin` besides
    /// `null` the join form may be posted from.
    pub public_origin: String,
    /// Directories whose files this configuration was read from.
    pub watched: BTreeSet<PathBuf>,
    /// Digest of the whole configuration, secrets, key files and templates included: a reload
    /// that finds the same digest changed nothing.
    pub digest: Vec<u8>,
}

impl Live {
    /// Builds a configuration: reads key files, compiles templates, indexes tenants and API
    /// keys. `previous` is the configuration it replaces: ephemeral keys (none configured)
    /// carry over, or every link of a development instance would stop verifying on a reload.
    pub fn build(loaded: Loaded, previous: Option<&Live>) -> Result<Self, ConfigError> {
        let Loaded {
            settings, watched, ..
        } = loaded;
        let production = settings.is_production();
        let ring = |purpose, keys: &[crate::settings::KeySettings], old: Option<&Arc<Keyring>>| {
            match old {
                Some(old) if keys.is_empty() && old.ephemeral => Ok(Arc::clone(old)),
                _ => Keyring::from_settings(purpose, keys, production).map(Arc::new),
            }
        };
        let invite_keys = ring(
            Purpose::Invite,
            &settings.keys.invite,
            previous.map(|p| &p.invite_keys),
        )?;
        let grant_keys = ring(
            Purpose::Grant,
            &settings.keys.grant,
            previous.map(|p| &p.grant_keys),
        )?;
        if previous.is_none() && (invite_keys.ephemeral || grant_keys.ephemeral) {
            tracing::warn!(
                "NO SIGNING KEYS CONFIGURED: generated ephemeral keys. Links and grants stop verifying when this \
                 process exits and are not shared with other replicas. Configure [keys] (see `invitetomedia keygen`)."
            );
        }
        let mailer = Mailer::from_settings(&settings)?;
        let shared = shared_digest(&settings, &invite_keys, &grant_keys);
        let mut tenants = HashMap::new();
        let mut api_keys = HashMap::new();
        for (id, t) in &settings.tenants {
            let tenant = Arc::new(Tenant {
                id: id.clone(),
                name: t.name.trim().to_owned(),
                accept_url: t.accept_url.as_str().to_owned(),
                grant_audience: t.grant_audience.clone(),
                default_language: t.default_language.clone(),
                theme: t.theme.clone(),
                page_sources: crate::pages::page_sources(&t.theme, t.accept_url.as_str()),
                login_url: t.login_url.as_ref().map(|u| u.as_str().to_owned()),
                module: t.invitetomedia.clone(),
                revision: revision(&shared, id, t, &mailer),
            });
            for hash in &t.api_keys {
                // Validation refuses a key configured twice, for any tenants.
                api_keys.insert(*hash, Arc::clone(&tenant));
            }
            tenants.insert(id.clone(), tenant);
        }
        let jwks = crate::tokens::jwks_json(&grant_keys);
        let public_origin = url::Url::parse(&settings.server.public_base_url)
            .map(|url| url.origin().ascii_serialization())
            .map_err(|e| ConfigError::new("server.public_base_url", e.to_string()))?;
        let mut ctx = Context::new(&SHA256);
        ctx.update(&shared);
        ctx.update(&invite_keys.fingerprint());
        ctx.update(&grant_keys.fingerprint());
        ctx.update(
            serde_json::to_string(&settings)
                .unwrap_or_default()
                .as_bytes(),
        );
        // The serialised settings redact these; a change of either is a change all the same.
        ctx.update(settings.email.http.url.expose().as_bytes());
        ctx.update(settings.email.http.bearer_token.expose().as_bytes());
        for digest in mailer.template_digests() {
            ctx.update(digest);
        }
        let digest = ctx.finish().as_ref().to_vec();
        Ok(Self {
            settings,
            tenants,
            api_keys,
            invite_keys,
            grant_keys,
            mailer,
            jwks,
            public_origin,
            watched,
            digest,
        })
    }

    /// The tenant whose API key this is, looked up by the key's SHA-256: one lookup however
    /// many tenants are configured. Only digests are ever compared, so the lookup's timing can
    /// tell at most how much of a guess's digest matches a stored one, which brings a guess no
    /// closer to a key (that would take a SHA-256 preimage).
    pub fn tenant_for_api_key(&self, presented: &str) -> Option<Arc<Tenant>> {
        self.api_keys.get(&ApiKeyHash::of(presented)).cloned()
    }

    /// The configured tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// Token leeway, seconds.
    pub fn leeway(&self) -> i64 {
        self.settings.tokens.leeway_seconds as i64
    }
}

/// What every tenant's revision includes: the sections that apply to all tenants, and the
/// signing keys by id, algorithm and public key: never anything derived from a secret, since
/// every tenant reads its revision.
fn shared_digest(settings: &Settings, invite: &Keyring, grant: &Keyring) -> Vec<u8> {
    let json = serde_json::json!({
        "tokens": settings.tokens,
        "security": settings.security,
        "from": settings.email.from,
        "public_base_url": settings.server.public_base_url,
    });
    let mut shared = json.to_string().into_bytes();
    shared.extend(invite.public_fingerprint());
    shared.extend(grant.public_fingerprint());
    shared
}

/// The tenant's revision: a digest of its table, what applies to every tenant, and the text of
/// the templates it sends.
fn revision(shared: &[u8], id: &str, tenant: &TenantSettings, mailer: &Mailer) -> String {
    let mut input = shared.to_vec();
    input.extend_from_slice(id.as_bytes());
    input.extend(serde_json::to_vec(tenant).unwrap_or_default());
    let module = &tenant.invitetomedia;
    for name in [&module.invite_email_template, &module.code_email_template] {
        if let Some(template) = mailer.template(name) {
            input.extend_from_slice(template.digest());
        }
    }
    // 128 bits are plenty to tell two configurations apart.
    let mut hex = crate::tokens::sha256_hex(&input);
    hex.truncate(32);
    hex
}

/// Shared application state: what lives as long as the process, and the live configuration.
#[derive(Debug)]
pub struct AppState {
    live: ArcSwap<Live>,
    /// Use counters and revocations.
    pub store: Store,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Set on SIGTERM: /readyz answers 503 while in-flight requests finish.
    pub draining: AtomicBool,
    /// The participant endpoints' rate limit, when configured (`[server]`: restart to change).
    pub rate_limiter: Option<RateLimiter>,
    /// Origins allowed to call `POST /v1/redeem` from a browser (`[server]`: restart to change).
    pub cors_allowed_origins: Vec<String>,
}

impl AppState {
    /// Assembles the state from a built configuration and a store.
    pub fn new(live: Live, store: Store) -> Self {
        let rate_limiter = live
            .settings
            .server
            .rate_limit
            .as_ref()
            .map(RateLimiter::new);
        let cors_allowed_origins = live.settings.server.cors_allowed_origins.clone();
        let metrics = Metrics::default();
        metrics.config_generation.set(1);
        metrics.config_reloaded_now();
        Self {
            live: ArcSwap::from_pointee(live),
            store,
            metrics,
            draining: AtomicBool::new(false),
            rate_limiter,
            cors_allowed_origins,
        }
    }

    /// The configuration now: a request takes it once and keeps it.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Replaces the configuration for every later request.
    pub(crate) fn replace(&self, live: Arc<Live>) {
        self.live.store(live);
    }
}

/// `sha256:<hex>` of an API key, the form `api_keys` stores.
pub fn hash_api_key(key: &str) -> String {
    ApiKeyHash::of(key).to_string()
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
}
