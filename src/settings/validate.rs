//! The rules no single value's type can hold: ranges that depend on each other, what production
//! refuses, and what must be unique across tenants.

use std::collections::{BTreeMap, HashSet};

use super::load::is_tenant_id;
use super::{
    ApiKeyHash, ConfigError, DEMO_API_KEY_HASH, EmailTransportKind, HttpUrl, Settings,
    StoreBackend, TenantSettings,
};

impl Settings {
    /// Checks everything the types cannot: ranges, production rules, cross-references.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let base = HttpUrl::parse(&self.server.public_base_url)
            .map_err(|problem| ConfigError::new("server.public_base_url", problem))?;
        self.require_https("server.public_base_url", &base)?;
        refuse_userinfo("server.public_base_url", &base)?;
        self.server.public_base_url = base.as_str().trim_end_matches('/').to_owned();
        match self.store.backend {
            StoreBackend::Memory => {}
            StoreBackend::Redis => {
                let url = self.store.redis_url.expose();
                if !url.starts_with("redis://") && !url.starts_with("rediss://") {
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
        let prefix = &self.store.key_prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
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
            let url = HttpUrl::parse(origin)
                .map_err(|problem| ConfigError::new("server.cors_allowed_origins", problem))?;
            if origin.trim_end_matches('/') != url.origin() {
                return Err(ConfigError::new(
                    "server.cors_allowed_origins",
                    format!("{origin:?} must be an origin: scheme://host[:port]"),
                ));
            }
        }
        let ranges: [(&str, u64, u64, u64, &str); 8] = [
            (
                "server.workers",
                self.server.workers.map_or(1, |n| n as u64),
                1,
                256,
                "",
            ),
            (
                "server.drain_delay_seconds",
                self.server.drain_delay_seconds,
                0,
                300,
                "",
            ),
            (
                "server.shutdown_timeout_seconds",
                self.server.shutdown_timeout_seconds,
                0,
                3600,
                "",
            ),
            (
                "server.yield_after_us",
                self.server.yield_after_us,
                0,
                1_000_000,
                " (0 turns yielding off)",
            ),
            (
                "security.max_email_attempts",
                u64::from(self.security.max_email_attempts),
                1,
                100,
                "",
            ),
            ("store.timeout_ms", self.store.timeout_ms, 10, 10_000, ""),
            (
                "tokens.leeway_seconds",
                self.tokens.leeway_seconds,
                0,
                300,
                "",
            ),
            (
                "tokens.grant_ttl_seconds",
                self.tokens.grant_ttl_seconds,
                10,
                3600,
                "",
            ),
        ];
        for (key, value, min, max, note) in ranges {
            if !(min..=max).contains(&value) {
                let problem = if min == 0 {
                    format!("must be at most {max}{note}")
                } else {
                    format!("must be between {min} and {max}{note}")
                };
                return Err(ConfigError::new(key, problem));
            }
        }
        if self.email.transport == EmailTransportKind::Http {
            let url = HttpUrl::parse(self.email.http.url.expose())
                .map_err(|problem| ConfigError::new("email.http.url", problem))?;
            self.require_https("email.http.url", &url)?;
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

    /// URLs that participants, relays or platforms reach are https in production, where an
    /// http URL would carry links, grants or relay tokens in clear.
    fn require_https(&self, key: &str, url: &HttpUrl) -> Result<(), ConfigError> {
        if self.is_production() && !url.is_https() {
            return Err(ConfigError::new(
                key,
                "must be an https:// URL in production (APP_ENV=production)",
            ));
        }
        Ok(())
    }

    fn validate_tenant(
        &self,
        id: &str,
        tenant: &TenantSettings,
        seen_keys: &mut HashSet<ApiKeyHash>,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("tenants.{id}.{field}");
        if !is_tenant_id(id) {
            return Err(ConfigError::new(
                format!("tenants.{id}"),
                "tenant ids are 1 to 64 characters of lowercase [a-z0-9_-]",
            ));
        }
        if tenant.name.trim().is_empty() {
            return Err(ConfigError::new(key("name"), "must not be empty"));
        }
        let demo_key = ApiKeyHash::parse(DEMO_API_KEY_HASH).ok();
        for api_key in &tenant.api_keys {
            if self.is_production() && Some(*api_key) == demo_key {
                return Err(ConfigError::new(
                    key("api_keys"),
                    "the published demo API key is refused in production",
                ));
            }
            if !seen_keys.insert(*api_key) {
                return Err(ConfigError::new(
                    key("api_keys"),
                    "the same API key is configured twice",
                ));
            }
        }
        self.require_https(&key("accept_url"), &tenant.accept_url)?;
        refuse_userinfo(&key("accept_url"), &tenant.accept_url)?;
        if let Some(login) = &tenant.login_url {
            self.require_https(&key("login_url"), login)?;
            refuse_userinfo(&key("login_url"), login)?;
        }
        if tenant.grant_audience.trim().is_empty() {
            return Err(ConfigError::new(key("grant_audience"), "must not be empty"));
        }
        if let Some(logo) = &tenant.theme.logo_url
            && !logo.is_https()
        {
            return Err(ConfigError::new(
                key("theme.logo_url"),
                "must be an https:// URL",
            ));
        }
        Ok(())
    }
}

/// URLs shown to participants or put in pages carry no credentials (so none can leak there).
fn refuse_userinfo(key: &str, url: &HttpUrl) -> Result<(), ConfigError> {
    if url.has_userinfo() {
        Err(ConfigError::new(
            key,
            "must not carry a user name or password",
        ))
    } else {
        Ok(())
    }
}

/// An IP network from `10.0.0.0/8`, `::1/128` or a bare address.
pub fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
