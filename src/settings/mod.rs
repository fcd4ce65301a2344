//! Typed configuration: the sections and values of SPEC-style TOML, each parsed once into a
//! type that can only hold a valid value.
//!
//! - [`load`]: the layers (compiled-in defaults, files, `tenants_dir`, environment), the files a
//!   configuration was read from, and errors that name their key and file.
//! - [`validate`]: the rules no single type can hold: ranges, production refusals, uniqueness.
//! - [`module`]: the admin console's `[tenants.X.invitetomedia]` table.
//! - [`types`]: API-key hashes, colours, URLs.
//! - [`secrets`]: secrets and URLs that never print, key files.

mod load;
mod module;
pub mod secrets;
pub mod types;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

pub use load::{DEMO_TENANT, LoadOptions, Loaded};
pub use secrets::{Secret, UrlText, read_key_file, redact_userinfo};
pub use types::{ApiKeyHash, Colour, HttpUrl};
pub use validate::parse_cidr;

use crate::domain::ModuleSettings;

/// Environment variable prefix of overrides (`INVITETOMEDIA__SERVER__PORT=9000`).
pub const ENV_PREFIX: &str = "INVITETOMEDIA";
/// Environment variable naming an extra configuration file.
pub const CONFIG_FILE_ENV: &str = "INVITETOMEDIA_CONFIG";
/// SHA-256 of the demo tenant's published API key (`demo-api-key`); refused in production.
pub const DEMO_API_KEY_HASH: &str =
    "sha256:ca6f2e39b2ff141859b18bb5283aadd5093c8ede2869f3656231a054e54bfc22";

/// A configuration problem, naming the key and, where one file set it, that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, spelled as in the documentation.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
    /// The file the offending value came from, when known.
    pub file: Option<String>,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            file: None,
        }
    }

    /// The same problem, found in `file`.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration error: ")?;
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        if let Some(file) = &self.file {
            write!(f, "in {file}: ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// `APP_ENV`: which rules and layers apply.
pub const APP_ENVS: [&str; 3] = ["development", "test", "production"];

/// The whole configuration, as layered and validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `APP_ENV` the configuration was loaded for (`development`, `production`, ...).
    #[serde(skip_deserializing, default = "default_app_env")]
    pub app_env: String,
    /// HTTP listener and public address.
    pub server: ServerSettings,
    /// Where use counters and revocations live.
    pub store: StoreSettings,
    /// Signing keys of invites and grants.
    #[serde(default)]
    pub keys: KeysSettings,
    /// Token lifetimes and clock leeway.
    #[serde(default)]
    pub tokens: TokenSettings,
    /// Limits that protect links from guessing.
    #[serde(default)]
    pub security: SecuritySettings,
    /// Email transport and templates.
    pub email: EmailSettings,
    /// Directory of `<tenant id>.toml` files, one tenant each; none when empty. Read at start;
    /// a reload reads the same directory again (changing it needs a restart).
    #[serde(default, deserialize_with = "optional_path")]
    pub tenants_dir: Option<PathBuf>,
    /// Tenants by id (lowercase `[a-z0-9_-]`).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSettings>,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Base of invite URLs: `{public_base_url}/i/{token}`.
    pub public_base_url: String,
    /// Drain timeout: seconds in-flight requests get to finish once the listener closes.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_seconds: u64,
    /// Seconds between SIGTERM and closing the listener, while /readyz already answers 503 so
    /// load balancers stop sending new requests (0 when a preStop hook does the waiting).
    #[serde(default)]
    pub drain_delay_seconds: u64,
    /// HTTP worker threads, each a single-threaded runtime; default: two per core the
    /// process may use ([`ServerSettings::worker_count`]).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Microseconds a worker runs without a context switch before it offers its core to other
    /// runnable threads (0: never). See [`crate::tuning`].
    #[serde(default = "default_yield_after_us")]
    pub yield_after_us: u64,
    /// Per-client-IP rate limit of the participant endpoints (per replica); off when absent.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSettings>,
    /// Origins allowed to call `POST /v1/redeem` from a browser (CORS); none when empty.
    #[serde(default, deserialize_with = "string_or_list")]
    pub cors_allowed_origins: Vec<String>,
}

impl ServerSettings {
    /// The worker threads to run: `workers`, or two per core the process may use (its CPU
    /// affinity and cgroup quota count). Linux shares a busy core between runnable threads,
    /// not processes: with one worker per core the service got half of each core it shared
    /// with another busy thread (a sidecar, or the benchmark's client) even where its requests
    /// needed more. Measured with two per core: create +30%, landing and redemption +3–7%,
    /// `/healthz` unchanged within noise (README, Performance).
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            2 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// `[server.rate_limit]`: a rate (GCRA, the token bucket's equivalent) per client: an IPv4
/// address or an IPv6 /64 (see `limits`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second per client.
    pub requests_per_second: f64,
    /// Requests a client may make at once before the rate applies.
    pub burst: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed; any other peer is the client.
    #[serde(default, deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory`, `redis` or `redis-cluster`.
    pub backend: StoreBackend,
    /// Single-node Redis URL.
    #[serde(default)]
    pub redis_url: UrlText,
    /// Cluster seed nodes, for `redis-cluster`.
    #[serde(default, deserialize_with = "urls_or_list")]
    pub cluster_nodes: Vec<UrlText>,
    /// Prefix of every key, so several deployments (or tests) can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Bound on one store operation; past it redeem answers 503.
    #[serde(default = "default_store_timeout")]
    pub timeout_ms: u64,
}

/// Which store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreBackend {
    /// In-process, single instance.
    Memory,
    /// One Redis node.
    Redis,
    /// A Redis Cluster.
    RedisCluster,
}

/// `[keys]`: the first key of each list signs, all verify.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSettings {
    /// Keys of invite tokens (HS256 or EdDSA).
    #[serde(default)]
    pub invite: Vec<KeySettings>,
    /// Keys of grants (EdDSA).
    #[serde(default)]
    pub grant: Vec<KeySettings>,
}

/// One signing key, given inline or as a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Key id, carried in the token header.
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub alg: String,
    /// Inline HS256 secret (trimmed, at least 32 bytes).
    #[serde(default)]
    pub secret: Secret,
    /// File holding the HS256 secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Inline EdDSA private key, PKCS#8 PEM.
    #[serde(default)]
    pub private_key_pem: Secret,
    /// File holding the EdDSA private key, PKCS#8 PEM.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
}

/// `[tokens]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// `iss` of invites and grants.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Clock skew tolerated on `nbf`/`exp`, seconds; also how long past `exp` store keys live.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Lifetime of a grant, seconds.
    #[serde(default = "default_grant_ttl")]
    pub grant_ttl_seconds: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: default_issuer(),
            leeway_seconds: default_leeway(),
            grant_ttl_seconds: default_grant_ttl(),
        }
    }
}

/// `[security]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Wrong emails an email-bound link takes before it locks (1..=100): without a limit a
    /// leaked link would confirm or refuse any guess of the invitee's address.
    #[serde(default = "default_max_email_attempts")]
    pub max_email_attempts: u32,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            max_email_attempts: default_max_email_attempts(),
        }
    }
}

/// `[email]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// `log` or `http`.
    pub transport: EmailTransportKind,
    /// Sender, `Name <address>`.
    pub from: String,
    /// Directory of `<name>.toml` templates.
    pub templates_dir: PathBuf,
    /// The JSON relay, for `transport = "http"`.
    #[serde(default)]
    pub http: EmailHttpSettings,
}

/// How invite emails leave the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransportKind {
    /// Print the message (token replaced by its jti).
    Log,
    /// POST JSON to a relay.
    Http,
}

/// `[email.http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailHttpSettings {
    /// Relay endpoint.
    #[serde(default)]
    pub url: UrlText,
    /// Bearer token sent to the relay.
    #[serde(default)]
    pub bearer_token: Secret,
    /// Bound on one try, milliseconds.
    #[serde(default = "default_email_timeout")]
    pub timeout_ms: u64,
}

impl Default for EmailHttpSettings {
    fn default() -> Self {
        Self {
            url: UrlText::default(),
            bearer_token: Secret::default(),
            timeout_ms: default_email_timeout(),
        }
    }
}

/// `[tenants.X]`, or the top level of `<tenants_dir>/X.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Display name, shown to participants.
    pub name: String,
    /// Hashes of the platform backend's bearer keys (`sha256:<hex>`, see `hash-key`).
    #[serde(default, deserialize_with = "api_key_hashes")]
    pub api_keys: Vec<ApiKeyHash>,
    /// Where the participant's browser posts the grant.
    pub accept_url: HttpUrl,
    /// `aud` of this tenant's grants.
    pub grant_audience: String,
    /// Language of invite emails when a request names none (else `en`).
    #[serde(default)]
    pub default_language: Option<String>,
    /// The site's own sign-in page, linked from the restricted-domain page.
    #[serde(default)]
    pub login_url: Option<HttpUrl>,
    /// Look of the participant pages.
    #[serde(default)]
    pub theme: ThemeSettings,
    /// The admin console's module settings.
    #[serde(default)]
    pub invitetomedia: ModuleSettings,
}

/// `[tenants.X] theme = { primary_color, logo_url }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeSettings {
    /// Accent colour, `#rrggbb`.
    #[serde(default)]
    pub primary_color: Option<Colour>,
    /// Logo shown on the pages, an https URL.
    #[serde(default)]
    pub logo_url: Option<HttpUrl>,
}

fn default_app_env() -> String {
    "development".to_owned()
}
fn default_shutdown_timeout() -> u64 {
    30
}
fn default_key_prefix() -> String {
    "itm".to_owned()
}
fn default_store_timeout() -> u64 {
    250
}
fn default_issuer() -> String {
    "invitetomedia".to_owned()
}
fn default_leeway() -> u64 {
    60
}
fn default_grant_ttl() -> u64 {
    300
}
fn default_max_email_attempts() -> u32 {
    10
}
fn default_yield_after_us() -> u64 {
    crate::tuning::DEFAULT_YIELD_AFTER_US
}
fn default_email_timeout() -> u64 {
    5000
}

/// Accepts a list, or (from an environment variable) one comma-separated string.
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

/// [`string_or_list`] for URLs.
fn urls_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UrlText>, D::Error> {
    Ok(string_or_list(d)?.into_iter().map(UrlText::from).collect())
}

/// [`string_or_list`] for API-key hashes.
fn api_key_hashes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ApiKeyHash>, D::Error> {
    string_or_list(d)?
        .iter()
        .map(|text| ApiKeyHash::parse(text).map_err(serde::de::Error::custom))
        .collect()
}

/// A path, where an empty string means none.
fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from))
}

impl Settings {
    /// Whether this is a production configuration (`APP_ENV=production`).
    pub fn is_production(&self) -> bool {
        self.app_env == "production"
    }

    /// Store operation bound.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store.timeout_ms)
    }

    /// Every key file the keys name (a reload watches them).
    pub fn key_files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.keys
            .invite
            .iter()
            .chain(&self.keys.grant)
            .flat_map(|k| [k.secret_file.as_deref(), k.private_key_file.as_deref()])
            .flatten()
    }
}
