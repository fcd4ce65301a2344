//! The Redis store: every redemption is one atomic step inside Redis (a MULTI/EXEC of plain
//! commands, or a Lua script for N-use links), so concurrent redemptions from any number of
//! replicas serialise there; revocations are Lua scripts; reads are plain commands.
//!
//! Key layout (all of a tenant's keys share the hash tag `{tenant}`, so one atomic step may touch
//! a link's keys and its scope revocations together, also on a Redis Cluster):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{T}:u:JTI` | integer / set / counter | the device digest of a single-use link (at least 2^32), the device digests of an N-use link, the redemptions of an unlimited link (never near 2^32), so a read by id alone tells them apart |
//! | `P:{T}:x:JTI` | string | the link is revoked |
//! | `P:{T}:m:MEDIA` / `P:{T}:i:INVITER` / `P:{T}:t` | string | links of that scope issued at or before this unix second are revoked |
//! | `P:{T}:f:JTI` | counter | failed attempts (wrong emails) on the link; at `max_email_attempts` it is locked |
//! | `P:{T}:k:KEY` | string | the record of a create's `Idempotency-Key` (KEY: the SHA-256 of the header, hex), 24 h |
//!
//! Every key is written with its expiry in the same atomic step that creates it, as a TTL
//! relative to Redis's own clock (`EX`/`EXPIRE`), never an absolute time from a replica's
//! clock: per link the link's remaining life plus the leeway; revocation markers by id or by
//! scope the longest life a link can have plus the leeway.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Client, FromRedisValue, RedisWrite, Script, ScriptInvocation, ToRedisArgs};
use tokio::sync::OnceCell;

use super::{
    CODE_TRIES, CODES_PER_WINDOW, CodeIssue, CodeProof, CodeRedemption, FailedAttempt, LinkById,
    LinkRef, LinkStatus, Redemption, Scope, StoreError, UseStore,
};
use crate::domain::UseLimit;

/// Distinguishes stores in one process (tests run several), for the per-thread connections.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connection of each store. Each HTTP worker is a single-threaded runtime:
    /// a connection whose driver task runs on the worker's own thread answers a script without
    /// waking another thread, which measurably raises redemption throughput (see README).
    /// One cell per store: concurrent first uses on a thread wait for one connection attempt
    /// instead of each opening its own (a burst of requests on a fresh worker would otherwise
    /// start dozens of cluster slot discoveries at once).
    static CONNECTIONS: RefCell<HashMap<u64, Arc<OnceCell<Conn>>>> = RefCell::new(HashMap::new());
}

/// A multiplexed connection; both kinds reconnect by themselves.
#[derive(Clone)]
enum Conn {
    /// One node, through a ConnectionManager.
    Single(ConnectionManager),
    /// A cluster: commands are routed by key slot, MOVED/ASK redirections followed.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How to reach Redis.
enum Target {
    Single {
        client: Client,
        config: ConnectionManagerConfig,
    },
    Cluster(ClusterClient),
}

/// Redis store over multiplexed, self-reconnecting connections, one per thread that uses it.
pub struct RedisStore {
    id: u64,
    target: Target,
    prefix: String,
    timeout: Duration,
    redeem: Script,
    release: Script,
    revoke: Script,
    attempt: Script,
    by_id: Script,
    redeem_code: Script,
    issue_code: Script,
    void_code: Script,
}

impl std::fmt::Debug for RedisStore {
    // The URL may carry a password: print only the prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A single-node store; the connection is made on first use and remade whenever it drops,
    /// so the service starts (and reports not-ready) while Redis is down.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client =
            Client::open(url).map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        // No response timeout inside the client: `within` bounds every exchange already, and
        // each armed timer that is due sooner than the runtime's next wake-up costs an eventfd
        // write (a system call per Redis call).
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        // Fail on a bad configuration now rather than on first use.
        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(Self::with_target(
            Target::Single { client, config },
            prefix,
            timeout,
        ))
    }

    /// A Redis Cluster store seeded by `nodes`. Every key of one script shares the tenant's
    /// hash tag, so each script runs on the one node that owns the tenant's slot.
    pub fn cluster(nodes: &[String], prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout.max(Duration::from_millis(500)))
            .response_timeout(timeout)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map_err(|e| StoreError(format!("invalid cluster nodes: {e}")))?;
        Ok(Self::with_target(Target::Cluster(client), prefix, timeout))
    }

    fn with_target(target: Target, prefix: &str, timeout: Duration) -> Self {
        Self {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            target,
            prefix: prefix.to_owned(),
            timeout,
            redeem: Script::new(include_str!("lua/redeem.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            revoke: Script::new(include_str!("lua/revoke.lua")),
            attempt: Script::new(include_str!("lua/attempt.lua")),
            by_id: Script::new(include_str!("lua/by_id.lua")),
            redeem_code: Script::new(include_str!("lua/redeem_code.lua")),
            issue_code: Script::new(include_str!("lua/issue_code.lua")),
            void_code: Script::new(include_str!("lua/void_code.lua")),
        }
    }

    /// This thread's connection, made on first use. A single-node connection connects lazily;
    /// a cluster connection discovers the slots when made (bounded by the store timeout by the
    /// caller) and is made again on the next call if that fails.
    async fn conn(&self) -> Result<Conn, StoreError> {
        let cell =
            CONNECTIONS.with(|cells| Arc::clone(cells.borrow_mut().entry(self.id).or_default()));
        let conn = cell
            .get_or_try_init(|| async {
                Ok::<_, StoreError>(match &self.target {
                    Target::Single { client, config } => Conn::Single(
                        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                            .map_err(|e| StoreError(e.to_string()))?,
                    ),
                    Target::Cluster(client) => Conn::Cluster(
                        client
                            .get_async_connection()
                            .await
                            .map_err(|e| StoreError(format!("redis cluster: {e}")))?,
                    ),
                })
            })
            .await?;
        Ok(conn.clone())
    }

    /// Runs one Redis exchange on this thread's connection within `limit`: past it the
    /// caller gets an error (redeem answers 503) instead of waiting on a slow Redis.
    async fn within<T, F>(
        &self,
        limit: Duration,
        exchange: impl FnOnce(Conn) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let call = async {
            exchange(self.conn().await?)
                .await
                .map_err(|e| StoreError(format!("redis: {e}")))
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError("redis: timed out".to_owned())),
        }
    }

    /// Runs a script. `invoke_async` loads it again after a NOSCRIPT (restart, failover,
    /// SCRIPT FLUSH); in a cluster SCRIPT LOAD goes to every primary and EVALSHA to the slot's
    /// owner.
    async fn run<T: FromRedisValue>(
        &self,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.within(self.timeout, |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Reports a take-back that failed (Redis went away between the two calls). The redemption
    /// still answers `revoked` or `locked`; the link keeps one recorded use that granted nothing.
    fn warn_on_failed_take_back<T>(&self, link: &LinkRef<'_>, result: Result<T, StoreError>) {
        if let Err(error) = result {
            tracing::warn!(
                tenant = link.tenant,
                jti = link.jti,
                %error,
                "a revoked or locked link keeps the use its refused redemption recorded"
            );
        }
    }

    /// Runs a plain command within `limit`.
    async fn query<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        limit: Duration,
    ) -> Result<T, StoreError> {
        self.within(limit, |mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs a pipeline within the store timeout.
    async fn query_pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        self.within(self.timeout, |mut c| async move {
            pipe.query_async(&mut c).await
        })
        .await
    }

    /// Redis's `maxmemory-policy`, when the server lets us read it.
    pub async fn maxmemory_policy(&self) -> Option<String> {
        let cmd = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .to_owned();
        let reply: Vec<String> = self.query(&cmd, self.timeout * 4).await.ok()?;
        reply.into_iter().nth(1)
    }

    /// The key `<prefix>:{<tenant>}<kind><id>`; `kind` carries the closing brace of the hash
    /// tag, e.g. `}:u:`. Every key of a tenant shares the tag, so one script's keys are in one
    /// cluster slot.
    fn key<'a>(&'a self, tenant: &'a str, kind: &'static str, id: &'a str) -> KeyName<'a> {
        KeyName([&self.prefix, ":{", tenant, kind, id])
    }

    /// The six keys of a link, in the order of the redeem script's KEYS.
    fn link_keys<'a>(&'a self, link: &LinkRef<'a>) -> [KeyName<'a>; 6] {
        [
            self.key(link.tenant, "}:u:", link.jti),
            self.key(link.tenant, "}:x:", link.jti),
            self.key(link.tenant, "}:m:", link.media_id),
            self.key(link.tenant, "}:i:", link.inviter_id),
            self.key(link.tenant, "}:t", ""),
            self.key(link.tenant, "}:f:", link.jti),
        ]
    }

    /// An invocation of `script` with the six keys of `link` first, in `link_keys` order.
    fn with_link_keys<'a>(
        &'a self,
        script: &'a Script,
        link: &LinkRef<'a>,
    ) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.link_keys(link) {
            invocation.key(key);
        }
        invocation
    }

    fn scope_key<'a>(&'a self, tenant: &'a str, scope: &'a Scope) -> KeyName<'a> {
        match scope {
            Scope::Media(id) => self.key(tenant, "}:m:", id),
            Scope::Inviter(id) => self.key(tenant, "}:i:", id),
            Scope::Tenant => self.key(tenant, "}:t", ""),
        }
    }
}

/// The limit of a link whose uses are a set of device digests (N uses, N > 1); single-use
/// links keep one digest and unlimited ones a count.
fn device_set_limit(max: UseLimit) -> Option<u32> {
    match max {
        UseLimit::Limited(n) if n.get() > 1 => Some(n.get()),
        _ => None,
    }
}

/// The markers a redemption and a status read fetch in one MGET: link, media, inviter and
/// tenant revocations, then the failed-attempt count, as `link_keys` orders them. Read as
/// integers: a value that is not fails the read, so a store that cannot be read refuses
/// redemptions rather than ignoring a revocation or a lock.
struct Marks([Option<i64>; 5]);

impl Marks {
    fn from_values(values: Vec<Option<i64>>) -> Result<Self, StoreError> {
        values
            .try_into()
            .map(Self)
            .map_err(|v: Vec<_>| StoreError(format!("redis: MGET answered {} values", v.len())))
    }

    /// A link marker, or a scope marker at or after the link's `iat`.
    fn revoked(&self, iat: i64) -> bool {
        self.0[0].is_some() || self.0[1..4].iter().flatten().any(|&before| iat <= before)
    }

    /// `max_attempts` failed attempts or more.
    fn locked(&self, max_attempts: u32) -> bool {
        self.0[4].is_some_and(|n| n >= i64::from(max_attempts))
    }

    /// Why a redemption is refused before uses count: locked outranks revoked.
    fn refusal(&self, link: &LinkRef<'_>) -> Option<Redemption> {
        if self.locked(link.max_attempts) {
            Some(Redemption::Locked)
        } else if self.revoked(link.iat) {
            Some(Redemption::Revoked)
        } else {
            None
        }
    }
}

/// A key name written into the command from its parts, without a string of its own (five
/// keys per redemption and per page view).
struct KeyName<'a>([&'a str; 5]);

impl ToRedisArgs for KeyName<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        for part in self.0 {
            // Writing into the command's own buffer cannot fail.
            let _ = arg.write_all(part.as_bytes());
        }
    }
}

/// What Redis stores of a device id: 63 bits of its SHA-256, in decimal. Redis keeps such a
/// value as an integer inside the object header (and a set of them as a compact intset), so a
/// redeemed single-use link costs a key and no string value. A collision between two devices
/// of one link has probability 2^-63 and would only let the second re-enter.
fn device_digest(device: &str) -> i64 {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, device.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_ref()[..8]);
    // At least SMALLEST_DIGEST, so a holder is never read as a count; a digest that would be
    // smaller (one in 2^31) takes the next hash bits instead.
    let digest = (u64::from_be_bytes(bytes) >> 1) as i64;
    if digest >= SMALLEST_DIGEST {
        digest
    } else {
        bytes.copy_from_slice(&hash.as_ref()[8..16]);
        ((u64::from_be_bytes(bytes) >> 1) as i64).max(SMALLEST_DIGEST)
    }
}

/// The smallest device digest [`device_digest`] makes: a single-use link's holder is at least
/// this, an unlimited link's count (redemptions) never gets near it.
const SMALLEST_DIGEST: i64 = 1 << 32;

impl UseStore for RedisStore {
    /// A single-use or unlimited link is redeemed with plain commands in one MULTI/EXEC: MGET
    /// of the four revocation markers, then the claim (`SET … NX GET`: the holder, or our
    /// device) or the count (`INCR`). Redis runs them as one step, so a marker written by a
    /// concurrent revocation either precedes both or follows both. A claim or count made in
    /// the step that found the link revoked is taken back at once (nobody can redeem a
    /// revoked link in between: every redemption checks the markers first). An N-use link
    /// needs a conditional write and runs the redeem script. Plain commands cost Redis less
    /// than half of an EVALSHA whose Lua calls the same commands.
    async fn redeem(&self, link: &LinkRef<'_>, device: &str) -> Result<Redemption, StoreError> {
        let [
            uses_key,
            revoked_key,
            media_key,
            inviter_key,
            tenant_key,
            failures_key,
        ] = self.link_keys(link);
        let digest = device_digest(device);
        if let Some(n) = device_set_limit(link.max) {
            let mut invocation = self.with_link_keys(&self.redeem, link);
            invocation
                .arg(link.iat)
                .arg(n)
                .arg(digest)
                .arg(link.keep_seconds)
                .arg(link.max_attempts);
            let (code, uses): (i64, u64) = self.run(invocation).await?;
            return match code {
                0 => Ok(Redemption::Revoked),
                1 | 2 => Ok(Redemption::Admitted {
                    uses,
                    reentry: code == 2,
                }),
                3 => Ok(Redemption::Exhausted { uses }),
                4 => Ok(Redemption::Locked),
                other => Err(StoreError(format!(
                    "redis: the redeem script answered {other}"
                ))),
            };
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("MGET")
            .arg(&revoked_key)
            .arg(&media_key)
            .arg(&inviter_key)
            .arg(&tenant_key)
            .arg(&failures_key);
        if link.max == UseLimit::Unlimited {
            pipe.cmd("INCR").arg(&uses_key);
            pipe.cmd("EXPIRE")
                .arg(&uses_key)
                .arg(link.keep_seconds)
                .arg("NX")
                .ignore();
            let (marks, uses): (Vec<Option<i64>>, u64) = self.query_pipe(&pipe).await?;
            if let Some(refusal) = Marks::from_values(marks)?.refusal(link) {
                let mut decr = redis::cmd("DECR");
                decr.arg(&uses_key);
                self.warn_on_failed_take_back(link, self.query::<i64>(&decr, self.timeout).await);
                return Ok(refusal);
            }
            return Ok(Redemption::Admitted {
                uses,
                reentry: false,
            });
        }
        pipe.cmd("SET")
            .arg(&uses_key)
            .arg(digest)
            .arg("NX")
            .arg("GET")
            .arg("EX")
            .arg(link.keep_seconds);
        let (marks, holder): (Vec<Option<i64>>, Option<i64>) = self.query_pipe(&pipe).await?;
        if let Some(refusal) = Marks::from_values(marks)?.refusal(link) {
            if holder.is_none() {
                let mut invocation = self.release.prepare_invoke();
                invocation.key(&uses_key).arg(digest);
                self.warn_on_failed_take_back(link, self.run::<i64>(invocation).await);
            }
            return Ok(refusal);
        }
        Ok(match holder {
            None => Redemption::Admitted {
                uses: 1,
                reentry: false,
            },
            Some(holder) if holder == digest => Redemption::Admitted {
                uses: 1,
                reentry: true,
            },
            Some(_) => Redemption::Exhausted { uses: 1 },
        })
    }

    /// One script: reads the count and adds one unless the link is locked, so the count never
    /// passes the limit however many wrong emails race.
    async fn redeem_with_code(
        &self,
        link: &LinkRef<'_>,
        device: &str,
        proof: CodeProof<'_>,
    ) -> Result<CodeRedemption, StoreError> {
        let mut invocation = self.with_link_keys(&self.redeem_code, link);
        invocation
            .key(self.key(link.tenant, "}:o:", link.jti))
            .arg(link.iat)
            .arg(link.max.as_i64())
            .arg(device_digest(device))
            .arg(link.keep_seconds)
            .arg(link.max_attempts)
            .arg(match proof {
                CodeProof::Needed => "",
                CodeProof::Given(digest) => digest,
            })
            .arg(CODE_TRIES);
        let (code, uses, tries_left): (i64, u64, u32) = self.run(invocation).await?;
        Ok(match code {
            0 => CodeRedemption::Done(Redemption::Revoked),
            1 | 2 => CodeRedemption::Done(Redemption::Admitted {
                uses,
                reentry: code == 2,
            }),
            4 => CodeRedemption::Done(Redemption::Locked),
            5 => CodeRedemption::CodeRequired,
            6 => CodeRedemption::WrongCode { tries_left },
            7 => CodeRedemption::NoCode,
            8 => CodeRedemption::Moved { uses },
            other => {
                return Err(StoreError(format!(
                    "redis: the code redemption script answered {other}"
                )));
            }
        })
    }

    async fn issue_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<CodeIssue, StoreError> {
        let seconds = link.code_seconds();
        let mut invocation = self.with_link_keys(&self.issue_code, link);
        invocation
            .key(self.key(link.tenant, "}:o:", link.jti))
            .key(self.key(link.tenant, "}:r:", link.jti))
            .arg(link.iat)
            .arg(link.max_attempts)
            .arg(digest)
            .arg(seconds)
            .arg(CODES_PER_WINDOW)
            .arg(link.code_window_seconds());
        let (code, retry_after): (i64, i64) = self.run(invocation).await?;
        Ok(match code {
            0 => CodeIssue::Issued { seconds },
            1 => CodeIssue::TooMany { retry_after },
            2 => CodeIssue::Revoked,
            3 => CodeIssue::Locked,
            other => {
                return Err(StoreError(format!(
                    "redis: the code script answered {other}"
                )));
            }
        })
    }

    async fn void_code(&self, link: &LinkRef<'_>, digest: &str) -> Result<(), StoreError> {
        let mut invocation = self.void_code.prepare_invoke();
        invocation
            .key(self.key(link.tenant, "}:o:", link.jti))
            .arg(digest);
        self.run::<i64>(invocation).await.map(drop)
    }

    async fn fail_attempt(&self, link: &LinkRef<'_>) -> Result<FailedAttempt, StoreError> {
        let mut invocation = self.attempt.prepare_invoke();
        invocation
            .key(self.key(link.tenant, "}:f:", link.jti))
            .arg(link.max_attempts)
            .arg(link.keep_seconds);
        let (locked, attempts): (i64, u64) = self.run(invocation).await?;
        match locked {
            0 => Ok(FailedAttempt::Counted { attempts }),
            1 => Ok(FailedAttempt::AlreadyLocked),
            other => Err(StoreError(format!(
                "redis: the attempt script answered {other}"
            ))),
        }
    }

    /// Read-only, so no script: one MGET (single-use and unlimited links) or one pipeline of
    /// MGET, SCARD and SISMEMBER (N-use links), all keys in one slot. Plain commands cost Redis
    /// a fraction of an EVALSHA, and the landing page reads on every view.
    async fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> Result<LinkStatus, StoreError> {
        let [
            uses_key,
            revoked_key,
            media_key,
            inviter_key,
            tenant_key,
            failures_key,
        ] = self.link_keys(link);
        let digest = device.map(device_digest);
        let mut mget = redis::cmd("MGET");
        mget.arg(&revoked_key)
            .arg(&media_key)
            .arg(&inviter_key)
            .arg(&tenant_key)
            .arg(&failures_key);
        let (marks, uses, known) = if device_set_limit(link.max).is_some() {
            let mut pipe = redis::pipe();
            pipe.add_command(mget);
            pipe.cmd("SCARD").arg(&uses_key);
            pipe.cmd("SISMEMBER")
                .arg(&uses_key)
                .arg(digest.unwrap_or(-1));
            let (marks, uses, known): (Vec<Option<i64>>, u64, bool) =
                self.query_pipe(&pipe).await?;
            (Marks::from_values(marks)?, uses, known)
        } else {
            // Markers, the failure count, a single-use link's holder and an unlimited link's
            // count are all integers.
            mget.arg(&uses_key);
            let mut values: Vec<Option<i64>> = self.query(&mget, self.timeout).await?;
            let held = values.pop().flatten();
            let (uses, known) = match (link.max, held) {
                (_, None) => (0, false),
                (UseLimit::Unlimited, Some(count)) => (count.max(0) as u64, false),
                (_, Some(holder)) => (1, digest == Some(holder)),
            };
            (Marks::from_values(values)?, uses, known)
        };
        Ok(LinkStatus {
            revoked: marks.revoked(link.iat),
            locked: marks.locked(link.max_attempts),
            uses,
            device_known: known,
        })
    }

    async fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_seconds: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = self.revoke.prepare_invoke();
        invocation
            .key(self.key(tenant, "}:x:", jti))
            .arg(1)
            .arg(keep_seconds);
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    async fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_seconds: i64,
    ) -> Result<i64, StoreError> {
        let mut invocation = self.revoke.prepare_invoke();
        invocation
            .key(self.scope_key(tenant, scope))
            .arg(before)
            .arg(keep_seconds);
        self.run(invocation).await
    }

    /// One read-only script: without the token the use limit is unknown, so the script tells
    /// a set (N uses), a single-use link's device digest and an unlimited link's count apart.
    async fn by_id(
        &self,
        tenant: &str,
        jti: &str,
        max_attempts: u32,
    ) -> Result<LinkById, StoreError> {
        let mut invocation = self.by_id.prepare_invoke();
        invocation
            .key(self.key(tenant, "}:u:", jti))
            .key(self.key(tenant, "}:x:", jti))
            .key(self.key(tenant, "}:f:", jti))
            .arg(SMALLEST_DIGEST);
        let (uses, revoked, attempts): (u64, i64, u64) = self.run(invocation).await?;
        Ok(LinkById {
            uses,
            revoked: revoked == 1,
            locked: attempts >= u64::from(max_attempts),
        })
    }

    /// `SET … NX GET EX`: one command, so concurrent creates with one key on any number of
    /// replicas store one record and all but one read it.
    async fn remember(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
        keep_seconds: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(tenant, "}:k:", key))
            .arg(record)
            .arg("NX")
            .arg("GET")
            .arg("EX")
            .arg(keep_seconds);
        self.query(&set, self.timeout).await
    }

    async fn update_remembered(
        &self,
        tenant: &str,
        key: &str,
        record: &str,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(tenant, "}:k:", key))
            .arg(record)
            .arg("XX")
            .arg("KEEPTTL");
        self.query::<redis::Value>(&set, self.timeout)
            .await
            .map(|_| ())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<redis::Value>(&redis::cmd("PING"), self.timeout)
            .await
            .map(|_| ())
    }
}
