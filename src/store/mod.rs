//! The use-counter and revocation store: the only state replicas share.
//!
//! Per link it keeps the set of devices that redeemed it (a counter for unlimited links), and
//! per tenant the revocations: of single links, and of every link of a media entry, of an
//! inviter or of the whole tenant issued at or before a moment. A redemption checks all of
//! them and records its device in one atomic step.

mod memory;
mod redis;

use std::future::Future;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use crate::domain::UseLimit;

/// The link a store operation is about, as its verified token describes it.
#[derive(Debug, Clone, Copy)]
pub struct LinkRef<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Invite id.
    pub jti: &'a str,
    /// Media entry id (media-scope revocations).
    pub media_id: &'a str,
    /// Inviter id (inviter-scope revocations).
    pub inviter_id: &'a str,
    /// Issued at, unix seconds: scope revocations apply to links issued at or before theirs.
    pub iat: i64,
    /// Use limit.
    pub max: UseLimit,
    /// Unix second after which nothing about this link needs keeping (`exp` + leeway).
    pub keep_until: i64,
}

/// The outcome of one atomic redemption step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// The device got in; `uses` counts distinct devices (redemptions, for unlimited links).
    Admitted {
        /// Uses after this redemption.
        uses: u64,
        /// The device had redeemed this link before; nothing was consumed.
        reentry: bool,
    },
    /// The link, or a scope it belongs to, is revoked.
    Revoked,
    /// Every use is taken by other devices.
    Exhausted {
        /// Uses recorded.
        uses: u64,
    },
}

/// What a store knows of a link, read without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStatus {
    /// The link or one of its scopes is revoked.
    pub revoked: bool,
    /// Uses recorded.
    pub uses: u64,
    /// The device asked about has redeemed the link (unlimited links keep no devices: false).
    pub device_known: bool,
}

/// A group of links revoked together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every link to one media entry.
    Media(String),
    /// Every link one inviter created.
    Inviter(String),
    /// Every link of the tenant.
    Tenant,
}

impl Scope {
    /// The scope's name in API responses.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Media(_) => "media",
            Self::Inviter(_) => "inviter",
            Self::Tenant => "tenant",
        }
    }
}

/// The store could not answer: redeem fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// The operations every backend provides, each atomic.
pub trait UseStore: Send + Sync {
    /// Checks the link's revocations and records `device` if a use is free, in one step.
    fn redeem(
        &self,
        link: &LinkRef<'_>,
        device: &str,
    ) -> impl Future<Output = Result<Redemption, StoreError>> + Send;

    /// Reads revocation, uses and (if given) whether `device` redeemed before.
    fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> impl Future<Output = Result<LinkStatus, StoreError>> + Send;

    /// Revokes one link until `keep_until`. Idempotent; a later call never shortens the marker.
    fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every link of `scope` issued at or before `before`, keeping the marker until
    /// `keep_until`. Returns the effective moment (never earlier than one already stored).
    fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_until: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Whether the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The configured backend.
// One long-lived value per process: its size does not matter, an extra indirection on every
// store call would.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Store {
    /// In-process, single instance.
    Memory(MemoryStore),
    /// Redis, single node or cluster.
    Redis(RedisStore),
}

impl UseStore for Store {
    async fn redeem(&self, link: &LinkRef<'_>, device: &str) -> Result<Redemption, StoreError> {
        match self {
            Self::Memory(s) => s.redeem(link, device).await,
            Self::Redis(s) => s.redeem(link, device).await,
        }
    }

    async fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> Result<LinkStatus, StoreError> {
        match self {
            Self::Memory(s) => s.status(link, device).await,
            Self::Redis(s) => s.status(link, device).await,
        }
    }

    async fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.revoke_link(tenant, jti, keep_until).await,
            Self::Redis(s) => s.revoke_link(tenant, jti, keep_until).await,
        }
    }

    async fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_until: i64,
    ) -> Result<i64, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_scope(tenant, scope, before, keep_until).await,
            Self::Redis(s) => s.revoke_scope(tenant, scope, before, keep_until).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.ping().await,
            Self::Redis(s) => s.ping().await,
        }
    }
}

/// Whether a Redis `maxmemory-policy` can evict this service's keys: `allkeys-*` evicts use
/// counters and revocation markers under memory pressure, silently letting used or revoked
/// links in again.
pub fn evicts_keys(policy: &str) -> bool {
    policy.starts_with("allkeys-")
}

/// Current unix time, seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
