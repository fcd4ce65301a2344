//! Typed, validated configuration, layered with the `config` crate:
//!
//! 1. `config/default.toml`;
//! 2. `config/{APP_ENV}.toml` if present (`APP_ENV` defaults to `development`);
//! 3. the file named by `INVITETOMEDIA_CONFIG`, if set;
//! 4. environment variables `INVITETOMEDIA__SECTION__KEY`.
//!
//! Keys are matched case-insensitively: files keep the admin console's spelling
//! (`LinkDuration`), environment variables arrive upper-case, and every layer is lowercased
//! before merging so that a later layer overrides an earlier one whatever its spelling.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{AllowedUsers, DomainRule, ModuleSettings, PlatformRole, UseLimit};

/// Environment variable prefix of overrides (`INVITETOMEDIA__SERVER__PORT=9000`).
pub const ENV_PREFIX: &str = "INVITETOMEDIA";
/// Environment variable naming an extra configuration file.
pub const CONFIG_FILE_ENV: &str = "INVITETOMEDIA_CONFIG";
/// SHA-256 of the demo tenant's published API key (`demo-api-key`); refused in production.
pub const DEMO_API_KEY_HASH: &str =
    "sha256:ca6f2e39b2ff141859b18bb5283aadd5093c8ede2869f3656231a054e54bfc22";

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, spelled as in the documentation.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration error: {}", self.problem)
        } else {
            write!(f, "configuration error: `{}`: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A secret from configuration; never printed by `Debug` or `Serialize`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text. Call only where the secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL from configuration (it may carry a password in its userinfo): `Debug` and
/// `Serialize` print it with the userinfo replaced by `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UrlText(String);

impl UrlText {
    /// The URL as configured, userinfo included. Call only where the URL is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any userinfo replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_userinfo(&self.0)
    }
}

impl From<&str> for UrlText {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for UrlText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl Serialize for UrlText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for UrlText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(UrlText)
    }
}

/// `scheme://user:password@host/...` → `scheme://[redacted]@host/...`; text without userinfo
/// (or that is no URL at all) unchanged. Works on text, so an invalid URL is redacted too.
pub fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}://[redacted]@{}", &text[..scheme_end], &rest[at + 1..]),
        None => text.to_owned(),
    }
}

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

/// `[tenants.X]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Display name, shown to participants.
    pub name: String,
    /// `sha256:<hex>` hashes of the platform backend's bearer keys.
    #[serde(default, deserialize_with = "string_or_list")]
    pub api_keys: Vec<String>,
    /// Where the participant's browser posts the grant.
    pub accept_url: String,
    /// `aud` of this tenant's grants.
    pub grant_audience: String,
    /// Language of invite emails when a request names none (else `en`).
    #[serde(default)]
    pub default_language: Option<String>,
    /// Look of the participant pages.
    #[serde(default)]
    pub theme: ThemeSettings,
    /// The admin console's module settings.
    #[serde(default)]
    pub invitetomedia: ModuleTable,
}

/// `[tenants.X] theme = { primary_color, logo_url }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeSettings {
    /// Accent colour, `#rrggbb`.
    #[serde(default)]
    pub primary_color: Option<String>,
    /// Logo shown on the pages, an https URL.
    #[serde(default)]
    pub logo_url: Option<String>,
}

/// `[tenants.X.invitetomedia]`, spelled as admins know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleTable {
    /// Module on/off.
    #[serde(default)]
    pub enable: bool,
    /// Link lifetime, minutes, 1..=525600.
    #[serde(
        rename(serialize = "LinkDuration", deserialize = "linkduration"),
        default = "default_link_duration"
    )]
    pub link_duration: i64,
    /// `1` single use, `-1` unlimited, `N` uses.
    #[serde(
        rename(serialize = "LinkReusability", deserialize = "linkreusability"),
        default = "default_reusability"
    )]
    pub link_reusability: i64,
    /// Minimal platform role, or `{ users, groups }`.
    #[serde(
        rename(serialize = "AllowedUsers", deserialize = "allowedusers"),
        default
    )]
    pub allowed_users: AllowedUsersTable,
    /// Email template name; empty disables email.
    #[serde(
        rename(serialize = "inviteEmailTemplate", deserialize = "inviteemailtemplate"),
        default
    )]
    pub invite_email_template: String,
    /// SSO/LMS domains that cannot be invited as new users.
    #[serde(
        rename(
            serialize = "RestrictNewUserDomains",
            deserialize = "restrictnewuserdomains"
        ),
        default,
        deserialize_with = "string_or_list"
    )]
    pub restrict_new_user_domains: Vec<String>,
    /// Whether links not bound to an email may be created.
    #[serde(
        rename(serialize = "AllowOpenLinks", deserialize = "allowopenlinks"),
        default
    )]
    pub allow_open_links: bool,
}

impl Default for ModuleTable {
    fn default() -> Self {
        Self {
            enable: false,
            link_duration: default_link_duration(),
            link_reusability: default_reusability(),
            allowed_users: AllowedUsersTable::default(),
            invite_email_template: String::new(),
            restrict_new_user_domains: Vec::new(),
            allow_open_links: false,
        }
    }
}

/// `AllowedUsers`: a role name or a table of users and groups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowedUsersTable {
    /// Minimal platform role.
    Role(String),
    /// Only these users or group members.
    Listed {
        /// User ids.
        #[serde(default, deserialize_with = "string_or_list")]
        users: Vec<String>,
        /// Group ids.
        #[serde(default, deserialize_with = "string_or_list")]
        groups: Vec<String>,
    },
}

impl Default for AllowedUsersTable {
    fn default() -> Self {
        Self::Role(PlatformRole::PrivateOnly.as_str().to_owned())
    }
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
fn default_link_duration() -> i64 {
    1440
}
fn default_reusability() -> i64 {
    1
}

/// Accepts a list, or (from an environment variable) one comma-separated string.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
    Ok(string_or_list(d)?.into_iter().map(UrlText).collect())
}

/// Where to read the layers from; [`LoadOptions::from_env`] is what the binary uses.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Directory holding `default.toml` and `{APP_ENV}.toml`.
    pub config_dir: PathBuf,
    /// `APP_ENV`.
    pub app_env: String,
    /// `INVITETOMEDIA_CONFIG`.
    pub extra_file: Option<PathBuf>,
    /// Extra TOML applied after the files and before the environment (tests).
    pub extra_toml: Option<String>,
    /// Environment variables to read overrides from; `None` reads the process environment.
    pub env: Option<Map<String, String>>,
}

impl LoadOptions {
    /// The layers as the binary finds them: `./config`, `APP_ENV`, `INVITETOMEDIA_CONFIG` and
    /// the process environment.
    pub fn from_env() -> Self {
        Self {
            config_dir: PathBuf::from("config"),
            app_env: std::env::var("APP_ENV").unwrap_or_else(|_| default_app_env()),
            extra_file: std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from),
            extra_toml: None,
            env: None,
        }
    }
}

impl Settings {
    /// Loads and validates the layered configuration.
    pub fn load(options: &LoadOptions) -> Result<Self, ConfigError> {
        if !APP_ENVS.contains(&options.app_env.as_str()) {
            return Err(ConfigError::new(
                "APP_ENV",
                format!(
                    "{:?} is not one of development, test, production",
                    options.app_env
                ),
            ));
        }
        let mut defaults =
            lowercased(File::from(options.config_dir.join("default.toml")).required(true))?;
        if options.app_env == "production" {
            // The demo tenant of the defaults, with its published API key, exists only in
            // development and test; production has only the tenants it configures.
            defaults.remove_tenant(DEMO_TENANT);
        }
        let mut builder = Config::builder().add_source(defaults);
        let env_file = options.config_dir.join(format!("{}.toml", options.app_env));
        builder = builder.add_source(lowercased(File::from(env_file).required(false))?);
        if let Some(path) = &options.extra_file {
            builder = builder.add_source(lowercased(File::from(path.as_path()).required(true))?);
        }
        if let Some(toml) = &options.extra_toml {
            builder = builder.add_source(lowercased(File::from_str(toml, FileFormat::Toml))?);
        }
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(options.env.clone());
        builder = builder.add_source(env);
        let config = builder.build().map_err(from_config_error)?;
        let mut settings: Settings = config.try_deserialize().map_err(from_config_error)?;
        settings.app_env = options.app_env.clone();
        settings.validate()?;
        Ok(settings)
    }

    /// Whether this is a production configuration (`APP_ENV=production`).
    pub fn is_production(&self) -> bool {
        self.app_env == "production"
    }

    /// Store operation bound.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store.timeout_ms)
    }

    /// Checks everything a type cannot: ranges, URLs, names, cross-references.
    fn validate(&mut self) -> Result<(), ConfigError> {
        let base = self.parse_public_url("server.public_base_url", &self.server.public_base_url)?;
        refuse_userinfo("server.public_base_url", &base)?;
        self.server.public_base_url = base.as_str().trim_end_matches('/').to_owned();
        match self.store.backend {
            StoreBackend::Memory => {}
            StoreBackend::Redis => {
                if !self.store.redis_url.expose().starts_with("redis://")
                    && !self.store.redis_url.expose().starts_with("rediss://")
                {
                    return Err(ConfigError::new(
                        "store.redis_url",
                        "must be a redis:// or rediss:// URL",
                    ));
                }
            }
            StoreBackend::RedisCluster => {
                if self.store.cluster_nodes.is_empty() {
                    return Err(ConfigError::new(
                        "store.cluster_nodes",
                        "must list at least one node for redis-cluster",
                    ));
                }
            }
        }
        let prefix_ok = !self.store.key_prefix.is_empty()
            && self.store.key_prefix.len() <= 32
            && self
                .store
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
        if !prefix_ok {
            return Err(ConfigError::new(
                "store.key_prefix",
                "must be 1 to 32 characters of A-Z a-z 0-9 _ - . :",
            ));
        }
        if let Some(limit) = &self.server.rate_limit {
            if !(limit.requests_per_second >= 0.001 && limit.requests_per_second <= 100_000.0) {
                return Err(ConfigError::new(
                    "server.rate_limit.requests_per_second",
                    "must be between 0.001 and 100000",
                ));
            }
            if limit.burst == 0 {
                return Err(ConfigError::new(
                    "server.rate_limit.burst",
                    "must be at least 1",
                ));
            }
            for cidr in &limit.trusted_proxies {
                parse_cidr(cidr).ok_or_else(|| {
                    ConfigError::new(
                        "server.rate_limit.trusted_proxies",
                        format!("{cidr:?} is not an IP address or CIDR"),
                    )
                })?;
            }
        }
        for origin in &self.server.cors_allowed_origins {
            let url = parse_http_url("server.cors_allowed_origins", origin)?;
            if origin.trim_end_matches('/') != url.origin().ascii_serialization() {
                return Err(ConfigError::new(
                    "server.cors_allowed_origins",
                    format!("{origin:?} must be an origin: scheme://host[:port]"),
                ));
            }
        }
        if self.server.workers.is_some_and(|n| !(1..=256).contains(&n)) {
            return Err(ConfigError::new(
                "server.workers",
                "must be between 1 and 256",
            ));
        }
        if self.server.drain_delay_seconds > 300 {
            return Err(ConfigError::new(
                "server.drain_delay_seconds",
                "must be at most 300",
            ));
        }
        if self.server.shutdown_timeout_seconds > 3600 {
            return Err(ConfigError::new(
                "server.shutdown_timeout_seconds",
                "must be at most 3600",
            ));
        }
        if self.server.yield_after_us > 1_000_000 {
            return Err(ConfigError::new(
                "server.yield_after_us",
                "must be at most 1000000 (0 turns yielding off)",
            ));
        }
        if !(1..=100).contains(&self.security.max_email_attempts) {
            return Err(ConfigError::new(
                "security.max_email_attempts",
                "must be between 1 and 100",
            ));
        }
        if !(10..=10_000).contains(&self.store.timeout_ms) {
            return Err(ConfigError::new(
                "store.timeout_ms",
                "must be between 10 and 10000",
            ));
        }
        if self.tokens.leeway_seconds > 300 {
            return Err(ConfigError::new(
                "tokens.leeway_seconds",
                "must be at most 300",
            ));
        }
        if !(10..=3600).contains(&self.tokens.grant_ttl_seconds) {
            return Err(ConfigError::new(
                "tokens.grant_ttl_seconds",
                "must be between 10 and 3600",
            ));
        }
        if self.email.transport == EmailTransportKind::Http {
            self.parse_public_url("email.http.url", self.email.http.url.expose())?;
        }
        if !(100..=60_000).contains(&self.email.http.timeout_ms) {
            return Err(ConfigError::new(
                "email.http.timeout_ms",
                "must be between 100 and 60000",
            ));
        }
        if self.is_production() && (self.keys.invite.is_empty() || self.keys.grant.is_empty()) {
            return Err(ConfigError::new(
                "keys",
                "APP_ENV=production needs configured invite and grant keys",
            ));
        }
        let mut seen_keys = HashSet::new();
        let mut audiences: BTreeMap<&str, &str> = BTreeMap::new();
        for (id, tenant) in &self.tenants {
            self.validate_tenant(id, tenant, &mut seen_keys)?;
            if let Some(other) = audiences.insert(tenant.grant_audience.trim(), id) {
                return Err(ConfigError::new(
                    format!("tenants.{id}.grant_audience"),
                    format!(
                        "{:?} is tenant {other}'s grant_audience too: a grant for one tenant would be accepted by the other's platform",
                        tenant.grant_audience
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A URL that participants, relays or platforms reach: http or https, and https only in
    /// production (where an http URL would carry links, grants or relay tokens in clear).
    fn parse_public_url(&self, key: &str, value: &str) -> Result<url::Url, ConfigError> {
        let url = parse_http_url(key, value)?;
        if self.is_production() && url.scheme() != "https" {
            return Err(ConfigError::new(
                key,
                "must be an https:// URL in production (APP_ENV=production)",
            ));
        }
        Ok(url)
    }

    fn validate_tenant(
        &self,
        id: &str,
        tenant: &TenantSettings,
        seen_keys: &mut HashSet<String>,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("tenants.{id}.{field}");
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::new(
                format!("tenants.{id}"),
                "tenant ids are 1 to 64 characters of lowercase [a-z0-9_-]",
            ));
        }
        if tenant.name.trim().is_empty() {
            return Err(ConfigError::new(key("name"), "must not be empty"));
        }
        for api_key in &tenant.api_keys {
            let hex = api_key.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    key("api_keys"),
                    "each entry must be sha256:<64 hex digits> (see `invitetomedia hash-key`)",
                ));
            }
            if self.is_production() && api_key.eq_ignore_ascii_case(DEMO_API_KEY_HASH) {
                return Err(ConfigError::new(
                    key("api_keys"),
                    "the published demo API key is refused in production",
                ));
            }
            if !seen_keys.insert(api_key.to_ascii_lowercase()) {
                return Err(ConfigError::new(
                    key("api_keys"),
                    "the same API key is configured twice",
                ));
            }
        }
        let accept = self.parse_public_url(&key("accept_url"), &tenant.accept_url)?;
        refuse_userinfo(&key("accept_url"), &accept)?;
        if tenant.grant_audience.trim().is_empty() {
            return Err(ConfigError::new(key("grant_audience"), "must not be empty"));
        }
        if let Some(color) = &tenant.theme.primary_color {
            let hex = color.strip_prefix('#').unwrap_or_default();
            if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::new(
                    key("theme.primary_color"),
                    "must be a colour #rrggbb",
                ));
            }
        }
        if let Some(logo) = &tenant.theme.logo_url {
            let url = parse_http_url(&key("theme.logo_url"), logo)?;
            if url.scheme() != "https" {
                return Err(ConfigError::new(
                    key("theme.logo_url"),
                    "must be an https:// URL",
                ));
            }
        }
        tenant.module_settings(id).map(|_| ())
    }
}

impl TenantSettings {
    /// The validated module settings of this tenant.
    pub fn module_settings(&self, id: &str) -> Result<ModuleSettings, ConfigError> {
        let key = |field: &str| format!("tenants.{id}.invitetomedia.{field}");
        let table = &self.invitetomedia;
        let duration = u32::try_from(table.link_duration)
            .ok()
            .filter(|d| (1..=crate::domain::policy::MAX_LINK_DURATION_MINUTES).contains(d))
            .ok_or_else(|| {
                ConfigError::new(key("LinkDuration"), "must be between 1 and 525600 minutes")
            })?;
        let reusability = UseLimit::from_i64(table.link_reusability).ok_or_else(|| {
            ConfigError::new(
                key("LinkReusability"),
                "must be 1, -1 (unlimited) or a number of uses above 1",
            )
        })?;
        let allowed_users = match &table.allowed_users {
            AllowedUsersTable::Role(role) => match PlatformRole::parse(role) {
                Some(
                    r @ (PlatformRole::PrivateOnly
                    | PlatformRole::Admin
                    | PlatformRole::UnmoderatedAdmin),
                ) => AllowedUsers::MinimalRole(r),
                _ => {
                    return Err(ConfigError::new(
                        key("AllowedUsers"),
                        "must be privateOnlyRole, adminRole, unmoderatedAdminRole or { users = [...], groups = [...] }",
                    ));
                }
            },
            AllowedUsersTable::Listed { users, groups } => {
                if users.is_empty() && groups.is_empty() {
                    return Err(ConfigError::new(
                        key("AllowedUsers"),
                        "must name at least one user or group",
                    ));
                }
                AllowedUsers::Listed {
                    users: users.iter().cloned().collect(),
                    groups: groups.iter().cloned().collect(),
                }
            }
        };
        let template = table.invite_email_template.trim();
        if !template.is_empty()
            && !template
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::new(
                key("inviteEmailTemplate"),
                "must be a template name of [A-Za-z0-9_-]",
            ));
        }
        let mut domains = Vec::with_capacity(table.restrict_new_user_domains.len());
        for domain in &table.restrict_new_user_domains {
            let rule = DomainRule::parse(domain).map_err(|problem| {
                ConfigError::new(
                    key("RestrictNewUserDomains"),
                    format!("{domain:?}: {problem}"),
                )
            })?;
            domains.push(rule);
        }
        Ok(ModuleSettings {
            enable: table.enable,
            link_duration: duration,
            link_reusability: reusability,
            allowed_users,
            invite_email_template: template.to_owned(),
            restrict_new_user_domains: domains,
            allow_open_links: table.allow_open_links,
        })
    }
}

fn parse_http_url(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(value).map_err(|e| ConfigError::new(key, format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(key, "must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// URLs shown to participants or put in pages carry no credentials (so none can leak there).
fn refuse_userinfo(key: &str, url: &url::Url) -> Result<(), ConfigError> {
    if url.username().is_empty() && url.password().is_none() {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "must not carry a user name or password",
        ))
    }
}

fn from_config_error(err: config::ConfigError) -> ConfigError {
    ConfigError::new("", err.to_string())
}

/// The tenant of the embedded defaults (development and test only).
pub const DEMO_TENANT: &str = "demo";

/// A file layer with every key lowercased, so it merges with environment overrides.
#[derive(Debug, Clone)]
struct Lowercased(Map<String, Value>);

impl Lowercased {
    /// Drops tenant `id` from this layer.
    fn remove_tenant(&mut self, id: &str) {
        if let Some(tenants) = self.0.get_mut("tenants")
            && let ValueKind::Table(table) = &mut tenants.kind
        {
            table.remove(id);
        }
    }
}

impl Source for Lowercased {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

fn lowercased(source: impl Source) -> Result<Lowercased, ConfigError> {
    let map = source.collect().map_err(from_config_error)?;
    if let Some(tenants) = map.get("tenants")
        && let ValueKind::Table(table) = &tenants.kind
        && let Some(bad) = table.keys().find(|k| k.to_lowercase() != **k)
    {
        return Err(ConfigError::new(
            format!("tenants.{bad}"),
            "tenant ids must be lowercase",
        ));
    }
    Ok(Lowercased(lower_table(map)))
}

fn lower_table(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (k.to_lowercase(), lower_value(v)))
        .collect()
}

fn lower_value(value: Value) -> Value {
    let origin = value.origin().map(str::to_owned);
    match value.kind {
        ValueKind::Table(t) => Value::new(origin.as_ref(), ValueKind::Table(lower_table(t))),
        ValueKind::Array(a) => Value::new(
            origin.as_ref(),
            ValueKind::Array(a.into_iter().map(lower_value).collect()),
        ),
        _ => value,
    }
}

/// Reads a key file, for `secret_file`/`private_key_file`.
pub fn read_key_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))
}

/// An IP network from `10.0.0.0/8`, `::1/128` or a bare address.
pub fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
