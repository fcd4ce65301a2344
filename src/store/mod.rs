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

/// Seconds a revocation marker by id or by scope lives: the longest life a link can have
/// (525600 minutes, `LinkDuration`'s maximum), whatever `LinkDuration` is now, so shortening
/// it never brings revoked long links back. The caller adds the leeway.
pub const LONGEST_LINK_LIFE_SECONDS: i64 =
    crate::domain::policy::MAX_LINK_DURATION_MINUTES as i64 * 60;

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
    /// Seconds from now that what is kept about this link must live: its remaining life plus
    /// the leeway, at least 1. Relative, so a replica whose clock runs behind the store's
    /// cannot write a key that is already expired.
    pub keep_seconds: i64,
    /// Failed attempts (wrong emails) at which the link locks (`security.max_email_attempts`).
    pub max_attempts: u32,
}

impl LinkRef<'_> {
    /// When the link's keys may go, on a store's own clock `now`.
    pub fn keep_until(&self, now: i64) -> i64 {
        now + self.keep_seconds
    }
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
    /// The link had `max_attempts` failed attempts.
    Locked,
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
    /// The link had `max_attempts` failed attempts.
    pub locked: bool,
    /// Uses recorded.
    pub uses: u64,
    /// The device asked about has redeemed the link (unlimited links keep no devices: false).
    pub device_known: bool,
}

/// What the store knows of a link by id alone (`GET /v1/invites/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LinkById {
    /// Uses recorded: distinct devices (redemptions, for unlimited links); 0 for an id the
    /// store has never seen.
    pub uses: u64,
    /// The link was revoked by its token or its id (scope revocations need the token).
    pub revoked: bool,
    /// The link had `max_attempts` failed attempts.
    pub locked: bool,
}

/// A failed attempt (a wrong email) as the store counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedAttempt {
    /// Counted: the link has had `attempts` failed attempts, this one included; at
    /// `max_attempts` it is now locked.
    Counted {
        /// Failed attempts so far.
        attempts: u64,
    },
    /// The link was locked already; nothing was counted.
    AlreadyLocked,
}

/// How long a one-time code lives, at most (never past the link's life).
pub const CODE_SECONDS: i64 = 600;
/// Wrong tries that void a code.
pub const CODE_TRIES: u32 = 5;
/// Codes a link may be sent per window.
pub const CODES_PER_WINDOW: u32 = 5;
/// The window of `CODES_PER_WINDOW`, at most (never past the link's life).
pub const CODE_WINDOW_SECONDS: i64 = 3600;

/// What a redemption brings about one-time codes (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProof<'a> {
    /// No code, and a device new to the link needs one (`RequireEmailCode`).
    Needed,
    /// A code, as its keyed digest: checked, and used up by the redemption if it admits.
    Given(&'a str),
}

/// The outcome of one atomic redemption that involves a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRedemption {
    /// Admitted, re-entered, revoked or locked, as a plain redemption (never exhausted: a
    /// valid code moves the link instead).
    Done(Redemption),
    /// Every use was taken by other devices: this device took one's place.
    Moved {
        /// Uses after the move (the limit).
        uses: u64,
    },
    /// The device is new to the link and brought no code.
    CodeRequired,
    /// The code is not the link's; `tries_left` 0: the code is now void.
    WrongCode {
        /// Wrong tries the code still allows.
        tries_left: u32,
    },
    /// The link has no live code (none sent, expired, used or voided).
    NoCode,
}

/// The outcome of storing a new code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeIssue {
    /// Stored, replacing any previous code; it lives `seconds`.
    Issued {
        /// Seconds the code lives.
        seconds: i64,
    },
    /// `CODES_PER_WINDOW` codes were sent already.
    TooMany {
        /// Seconds until another may be sent.
        retry_after: i64,
    },
    /// The link or one of its scopes is revoked.
    Revoked,
    /// The link is locked.
    Locked,
}

impl LinkRef<'_> {
    /// Seconds a new code lives: `CODE_SECONDS`, or less when the link ends sooner.
    pub fn code_seconds(&self) -> i64 {
        CODE_SECONDS.min(self.keep_seconds).max(1)
    }

    /// Seconds of the codes' window: `CODE_WINDOW_SECONDS`, or less when the link ends sooner.
    pub fn code_window_seconds(&self) -> i64 {
        CODE_WINDOW_SECONDS.min(self.keep_seconds).max(1)
    }
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

    /// A redemption with a code, or one that needs a code for a new device, in one step: the
    /// code (a wrong one counts a try, the last one voids it), the lock and revocations, then
    /// the use, moving the link to this device when a valid code finds every use taken.
    fn redeem_with_code(
        &self,
        link: &LinkRef<'_>,
        device: &str,
        proof: CodeProof<'_>,
    ) -> impl Future<Output = Result<CodeRedemption, StoreError>> + Send;

    /// Stores a new code (its keyed digest) for the link, replacing any previous one, unless
    /// the link is locked or revoked or had `CODES_PER_WINDOW` codes in the window, in one step.
    fn issue_code(
        &self,
        link: &LinkRef<'_>,
        digest: &str,
    ) -> impl Future<Output = Result<CodeIssue, StoreError>> + Send;

    /// Voids the link's code if it is still `digest` (its email could not be sent).
    fn void_code(
        &self,
        link: &LinkRef<'_>,
        digest: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one failed attempt on the link, unless it is locked already, in one step; the
    /// count never passes `max_attempts`.
    fn fail_attempt(
        &self,
        link: &LinkRef<'_>,
    ) -> impl Future<Output = Result<FailedAttempt, StoreError>> + Send;

    /// Reads revocation, lock, uses and (if given) whether `device` redeemed before.
    fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> impl Future<Output = Result<LinkStatus, StoreError>> + Send;

    /// Revokes one link for `keep_seconds` from now. Idempotent; a later call never shortens
    /// the marker.
    fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_seconds: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every link of `scope` issued at or before `before`, keeping the marker for
    /// `keep_seconds` from now. Returns the effective moment (never earlier than one already
    /// stored).
    fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_seconds: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Reads uses, revocation by id and lock of the link `jti`, knowing nothing else of it.
    fn by_id(
        &self,
        tenant: &str,
        jti: &str,
        max_attempts: u32,
    ) -> impl Future<Output = Result<LinkById, StoreError>> + Send;

    /// Keeps `record` under the idempotency key `key` of `tenant` for `keep_seconds`, unless a
    /// record is there already, in one step: `None` when this call stored it, else the record
    /// found (which stays as it was).
    fn remember(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
        keep_seconds: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Replaces the record of an idempotency key, keeping its expiry; nothing when it has gone.
    fn update_remembered(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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

    async fn redeem_with_code(
        &self,
        link: &LinkRef<'_>,
        device: &str,
        proof: CodeProof<'_>,
    ) -> Result<CodeRedemption, StoreError> {
        match self {
            Self::Memory(s) => s.redeem_with_code(link, device, proof).await,
            Self::Redis(s) => s.redeem_with_code(link, device, proof).await,
        }
    }

    async fn issue_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<CodeIssue, StoreError> {
        match self {
            Self::Memory(s) => s.issue_code(link, digest).await,
            Self::Redis(s) => s.issue_code(link, digest).await,
        }
    }

    async fn void_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.void_code(link, digest).await,
            Self::Redis(s) => s.void_code(link, digest).await,
        }
    }

    async fn fail_attempt(&self, link: &LinkRef<'_>) -> Result<FailedAttempt, StoreError> {
        match self {
            Self::Memory(s) => s.fail_attempt(link).await,
            Self::Redis(s) => s.fail_attempt(link).await,
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
        keep_seconds: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.revoke_link(tenant, jti, keep_seconds).await,
            Self::Redis(s) => s.revoke_link(tenant, jti, keep_seconds).await,
        }
    }

    async fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_seconds: i64,
    ) -> Result<i64, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_scope(tenant, scope, before, keep_seconds).await,
            Self::Redis(s) => s.revoke_scope(tenant, scope, before, keep_seconds).await,
        }
    }

    async fn by_id(
        &self,
        tenant: &str,
        jti: &str,
        max_attempts: u32,
    ) -> Result<LinkById, StoreError> {
        match self {
            Self::Memory(s) => s.by_id(tenant, jti, max_attempts).await,
            Self::Redis(s) => s.by_id(tenant, jti, max_attempts).await,
        }
    }

    async fn remember(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
        keep_seconds: i64,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Self::Memory(s) => s.remember(tenant, key, record, keep_seconds).await,
            Self::Redis(s) => s.remember(tenant, key, record, keep_seconds).await,
        }
    }

    async fn update_remembered(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.update_remembered(tenant, key, record).await,
            Self::Redis(s) => s.update_remembered(tenant, key, record).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.ping().await,
            Self::Redis(s) => s.ping().await,
        }
    }
}

/// Whether a Redis `maxmemory-policy` can evict this service's keys. Every key it writes has
/// a TTL, so the `volatile-*` policies evict use counters and revocation markers just like
/// `allkeys-*`, silently letting used or revoked links in again: only `noeviction` (writes
/// then fail, and redemptions fail closed) is safe.
pub fn evicts_keys(policy: &str) -> bool {
    !policy.eq_ignore_ascii_case("noeviction")
}

/// Current unix time, seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
