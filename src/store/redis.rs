//! The Redis store: every operation is one Lua script, so concurrent redemptions from any
//! number of replicas serialise inside Redis.
//!
//! Key layout (all of a tenant's keys share the hash tag `{tenant}`, so one script may touch
//! a link's keys and its scope revocations together, also on a Redis Cluster):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{T}:u:JTI` | string / set / counter | the device of a single-use link, the devices of an N-use link, the redemptions of an unlimited link |
//! | `P:{T}:x:JTI` | string | the link is revoked |
//! | `P:{T}:m:MEDIA` / `P:{T}:i:INVITER` / `P:{T}:t` | string | links of that scope issued at or before this unix second are revoked |
//!
//! Every key is written with its expiry in the same script that creates it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{LinkRef, LinkStatus, Redemption, Scope, StoreError, UseStore};
use crate::domain::UseLimit;

/// Redis store over one multiplexed, self-reconnecting connection.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    redeem: Script,
    status: Script,
    revoke: Script,
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
    /// Prepares a store; the connection is made on first use and remade whenever it drops, so
    /// the service starts (and reports not-ready) while Redis is down.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client =
            Client::open(url).map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
            redeem: Script::new(include_str!("lua/redeem.lua")),
            status: Script::new(include_str!("lua/status.lua")),
            revoke: Script::new(include_str!("lua/revoke.lua")),
        })
    }

    fn tag(&self, tenant: &str) -> String {
        format!("{}:{{{tenant}}}", self.prefix)
    }

    fn link_keys(&self, link: &LinkRef<'_>) -> [String; 5] {
        let tag = self.tag(link.tenant);
        [
            format!("{tag}:u:{}", link.jti),
            format!("{tag}:x:{}", link.jti),
            format!("{tag}:m:{}", link.media_id),
            format!("{tag}:i:{}", link.inviter_id),
            format!("{tag}:t"),
        ]
    }

    fn scope_key(&self, tenant: &str, scope: &Scope) -> String {
        let tag = self.tag(tenant);
        match scope {
            Scope::Media(id) => format!("{tag}:m:{id}"),
            Scope::Inviter(id) => format!("{tag}:i:{id}"),
            Scope::Tenant => format!("{tag}:t"),
        }
    }

    /// Runs a script within the store timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError("redis: timed out".to_owned())),
        }
    }

    /// Redis's `maxmemory-policy`, when the server lets us read it.
    pub async fn maxmemory_policy(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .to_owned();
        let reply: Vec<String> = tokio::time::timeout(self.timeout * 4, cmd.query_async(&mut conn))
            .await
            .ok()?
            .ok()?;
        reply.into_iter().nth(1)
    }
}

impl UseStore for RedisStore {
    async fn redeem(&self, link: &LinkRef<'_>, device: &str) -> Result<Redemption, StoreError> {
        let mut invocation = self.redeem.prepare_invoke();
        for key in self.link_keys(link) {
            invocation.key(key);
        }
        invocation
            .arg(link.iat)
            .arg(link.max.as_i64())
            .arg(device)
            .arg(link.keep_until);
        let (code, uses): (i64, u64) = self.run(invocation).await?;
        Ok(match code {
            0 => Redemption::Revoked,
            1 => Redemption::Admitted {
                uses,
                reentry: false,
            },
            2 => Redemption::Admitted {
                uses,
                reentry: true,
            },
            _ => Redemption::Exhausted { uses },
        })
    }

    async fn status(
        &self,
        link: &LinkRef<'_>,
        device: Option<&str>,
    ) -> Result<LinkStatus, StoreError> {
        let mut invocation = self.status.prepare_invoke();
        for key in self.link_keys(link) {
            invocation.key(key);
        }
        invocation
            .arg(link.iat)
            .arg(link.max.as_i64())
            .arg(device.unwrap_or(""));
        let (revoked, uses, known): (i64, u64, i64) = self.run(invocation).await?;
        Ok(LinkStatus {
            revoked: revoked == 1,
            uses,
            device_known: known == 1 && !matches!(link.max, UseLimit::Unlimited),
        })
    }

    async fn revoke_link(
        &self,
        tenant: &str,
        jti: &str,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let mut invocation = self.revoke.prepare_invoke();
        invocation
            .key(format!("{}:x:{jti}", self.tag(tenant)))
            .arg(1)
            .arg(keep_until);
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    async fn revoke_scope(
        &self,
        tenant: &str,
        scope: &Scope,
        before: i64,
        keep_until: i64,
    ) -> Result<i64, StoreError> {
        let mut invocation = self.revoke.prepare_invoke();
        invocation
            .key(self.scope_key(tenant, scope))
            .arg(before)
            .arg(keep_until);
        self.run(invocation).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError("redis: timed out".to_owned())),
        }
    }
}
