//! Store semantics through the `UseStore` trait, the same checks for every backend, and what
//! Redis actually keeps.

use std::num::NonZeroU32;
use std::time::Duration;

use invitetomedia::domain::UseLimit;
use invitetomedia::store::{
    FailedAttempt, LinkRef, MemoryStore, Redemption, RedisStore, Scope, UseStore, unix_now,
};
use invitetomedia::tokens::random_id;
use redis::Commands;

use crate::helpers::*;

fn link<'a>(jti: &'a str, max: UseLimit, iat: i64) -> LinkRef<'a> {
    LinkRef {
        tenant: "demo",
        jti,
        media_id: "m1",
        inviter_id: "u1",
        iat,
        max,
        keep_seconds: 3600,
        max_attempts: 3,
    }
}

fn limited(n: u32) -> UseLimit {
    UseLimit::Limited(NonZeroU32::new(n).unwrap())
}

async fn semantics(store: &impl UseStore) {
    let now = unix_now();
    // Two uses: two devices, re-entry free, third refused.
    let jti = random_id();
    let two = link(&jti, limited(2), now);
    assert_eq!(
        store.redeem(&two, "d1").await.unwrap(),
        Redemption::Admitted {
            uses: 1,
            reentry: false
        }
    );
    assert_eq!(
        store.redeem(&two, "d1").await.unwrap(),
        Redemption::Admitted {
            uses: 1,
            reentry: true
        }
    );
    assert_eq!(
        store.redeem(&two, "d2").await.unwrap(),
        Redemption::Admitted {
            uses: 2,
            reentry: false
        }
    );
    assert_eq!(
        store.redeem(&two, "d3").await.unwrap(),
        Redemption::Exhausted { uses: 2 }
    );
    let status = store.status(&two, Some("d2")).await.unwrap();
    assert_eq!(
        (status.revoked, status.uses, status.device_known),
        (false, 2, true)
    );
    assert!(!store.status(&two, Some("d3")).await.unwrap().device_known);

    // Single use.
    let jti = random_id();
    let one = link(&jti, limited(1), now);
    assert_eq!(store.status(&one, Some("d1")).await.unwrap().uses, 0);
    assert_eq!(
        store.redeem(&one, "d1").await.unwrap(),
        Redemption::Admitted {
            uses: 1,
            reentry: false
        }
    );
    assert_eq!(
        store.redeem(&one, "d2").await.unwrap(),
        Redemption::Exhausted { uses: 1 }
    );
    assert_eq!(
        store.redeem(&one, "d1").await.unwrap(),
        Redemption::Admitted {
            uses: 1,
            reentry: true
        }
    );
    assert!(store.status(&one, Some("d1")).await.unwrap().device_known);

    // Unlimited: a counter, no devices.
    let jti = random_id();
    let many = link(&jti, UseLimit::Unlimited, now);
    for n in 1..=3 {
        assert_eq!(
            store.redeem(&many, "d1").await.unwrap(),
            Redemption::Admitted {
                uses: n,
                reentry: false
            }
        );
    }
    assert!(!store.status(&many, Some("d1")).await.unwrap().device_known);

    // Revocation of one link: idempotent, beats exhaustion and re-entry.
    store.revoke_link("demo", &jti, 60).await.unwrap();
    store.revoke_link("demo", &jti, 30).await.unwrap();
    assert_eq!(
        store.redeem(&many, "d1").await.unwrap(),
        Redemption::Revoked
    );
    assert!(store.status(&many, None).await.unwrap().revoked);

    // A refused redemption of a revoked link records nothing, for every kind of link (a
    // single-use claim or an unlimited count made in the step that read the markers is taken
    // back before the answer).
    for max in [limited(1), UseLimit::Unlimited, limited(2)] {
        let jti = random_id();
        let revoked = link(&jti, max, now);
        store.revoke_link("demo", &jti, 60).await.unwrap();
        for device in ["d1", "d2", "d1"] {
            assert_eq!(
                store.redeem(&revoked, device).await.unwrap(),
                Redemption::Revoked
            );
        }
        let status = store.status(&revoked, Some("d1")).await.unwrap();
        assert_eq!(
            (status.revoked, status.uses, status.device_known),
            (true, 0, false),
            "{max:?}"
        );
    }

    // Scopes revoke links issued at or before the moment; the moment never moves back.
    let jti = random_id();
    let media_link = link(&jti, limited(1), now);
    assert_eq!(
        store
            .revoke_scope("demo", &Scope::Media("m1".into()), now, 60)
            .await
            .unwrap(),
        now
    );
    assert_eq!(
        store
            .revoke_scope("demo", &Scope::Media("m1".into()), now - 100, 60)
            .await
            .unwrap(),
        now
    );
    assert_eq!(
        store.redeem(&media_link, "d1").await.unwrap(),
        Redemption::Revoked
    );
    let later_jti = random_id();
    assert!(matches!(
        store
            .redeem(&link(&later_jti, limited(1), now + 1), "d1")
            .await
            .unwrap(),
        Redemption::Admitted { .. }
    ));
    let mut other_tenant = link(&jti, limited(1), now);
    other_tenant.tenant = "acme";
    assert!(matches!(
        store.redeem(&other_tenant, "d1").await.unwrap(),
        Redemption::Admitted { .. }
    ));
    store
        .revoke_scope("acme", &Scope::Inviter("u1".into()), now, 60)
        .await
        .unwrap();
    let jti = random_id();
    let mut inviter_link = link(&jti, limited(1), now - 5);
    inviter_link.tenant = "acme";
    assert_eq!(
        store.redeem(&inviter_link, "d9").await.unwrap(),
        Redemption::Revoked
    );
    let mut media_elsewhere = inviter_link;
    media_elsewhere.inviter_id = "u2";
    assert!(matches!(
        store.redeem(&media_elsewhere, "d9").await.unwrap(),
        Redemption::Admitted { .. }
    ));
    store
        .revoke_scope("acme", &Scope::Tenant, now, 60)
        .await
        .unwrap();
    let jti = random_id();
    let mut tenant_link = link(&jti, limited(3), now);
    tenant_link.tenant = "acme";
    assert_eq!(
        store.redeem(&tenant_link, "d1").await.unwrap(),
        Redemption::Revoked
    );
    lock_semantics(store, now).await;
    store.ping().await.unwrap();
}

/// Failed attempts count to the limit and never past it; a locked link refuses every
/// redemption, re-entry included, for every kind of link, and takes back what the refused
/// step recorded.
async fn lock_semantics(store: &impl UseStore, now: i64) {
    for max in [limited(1), UseLimit::Unlimited, limited(3)] {
        let jti = random_id();
        // Media and inviter that no scope revocation of `semantics` touched.
        let link = LinkRef {
            media_id: "m-lock",
            inviter_id: "u-lock",
            ..link(&jti, max, now)
        };
        assert!(matches!(
            store.redeem(&link, "d1").await.unwrap(),
            Redemption::Admitted { uses: 1, .. }
        ));
        for n in 1..=3 {
            assert_eq!(
                store.fail_attempt(&link).await.unwrap(),
                FailedAttempt::Counted { attempts: n },
                "{max:?}"
            );
            let status = store.status(&link, None).await.unwrap();
            assert_eq!(status.locked, n == 3, "{max:?} after {n}");
        }
        for _ in 0..3 {
            assert_eq!(
                store.fail_attempt(&link).await.unwrap(),
                FailedAttempt::AlreadyLocked
            );
        }
        for device in ["d1", "d2"] {
            assert_eq!(
                store.redeem(&link, device).await.unwrap(),
                Redemption::Locked,
                "{max:?} {device}"
            );
        }
        let status = store.status(&link, Some("d2")).await.unwrap();
        assert_eq!((status.uses, status.device_known), (1, false), "{max:?}");
        // A higher limit (the setting was raised) unlocks.
        let raised = LinkRef {
            max_attempts: 4,
            ..link
        };
        assert!(!store.status(&raised, None).await.unwrap().locked);
    }
}

#[tokio::test]
async fn memory_store_semantics() {
    let store = MemoryStore::default();
    semantics(&store).await;
    let fresh = MemoryStore::default();
    let jti = random_id();
    fresh
        .status(&link(&jti, limited(1), unix_now()), Some("d"))
        .await
        .unwrap();
    assert!(fresh.is_empty(), "reading a link keeps nothing");
}

#[tokio::test]
async fn redis_store_semantics() {
    let redis = shared_redis();
    let prefix = format!("s{}", &random_id()[..8]);
    let store = RedisStore::new(&redis.url(), &prefix, Duration::from_millis(250)).unwrap();
    semantics(&store).await;
    reloads_scripts_after_flush(&store, &[redis]).await;
}

#[tokio::test]
async fn redis_cluster_store_semantics() {
    let cluster = shared_cluster();
    let prefix = format!("s{}", &random_id()[..8]);
    let store = RedisStore::cluster(&cluster.urls(), &prefix, Duration::from_millis(250)).unwrap();
    semantics(&store).await;
    // The tenants' keys live on the nodes owning their hash tags: no CROSSSLOT anywhere.
    let mut found = 0;
    for node in &cluster.nodes {
        let keys: Vec<String> = node.connection().keys(format!("{prefix}:*")).unwrap();
        assert!(
            keys.iter()
                .all(|k| k.starts_with(&format!("{prefix}:{{demo}}"))
                    || k.starts_with(&format!("{prefix}:{{acme}}")))
        );
        found += keys.len();
    }
    assert!(found > 0);
    reloads_scripts_after_flush(&store, &cluster.nodes.iter().collect::<Vec<_>>()).await;
}

/// A flushed script cache (a restart, or a failover to a node that never saw the script)
/// answers NOSCRIPT: the script is loaded again and the call succeeds.
async fn reloads_scripts_after_flush(store: &RedisStore, nodes: &[&RedisServer]) {
    for node in nodes {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut node.connection())
            .unwrap();
    }
    let jti = random_id();
    // Issued after the scope revocations `semantics` made; N uses, so redeeming runs the redeem
    // script (single-use and unlimited links use plain commands), and revoking the revoke one.
    let after_flush = link(&jti, limited(2), unix_now() + 5);
    assert_eq!(
        store.redeem(&after_flush, "d1").await.unwrap(),
        Redemption::Admitted {
            uses: 1,
            reentry: false
        }
    );
    for node in nodes {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut node.connection())
            .unwrap();
    }
    store.revoke_link("demo", &jti, 60).await.unwrap();
    assert_eq!(
        store.redeem(&after_flush, "d2").await.unwrap(),
        Redemption::Revoked
    );
}

#[tokio::test]
async fn redis_keeps_little_and_expires_everything() {
    let redis = shared_redis();
    let prefix = format!("s{}", &random_id()[..8]);
    let store = RedisStore::new(&redis.url(), &prefix, Duration::from_millis(250)).unwrap();
    let mut conn = redis.connection();
    let now = unix_now();
    let keep_seconds = 3600;

    // Reading a never-used link creates nothing.
    let unused = random_id();
    store
        .status(
            &LinkRef {
                keep_seconds,
                ..link(&unused, limited(1), now)
            },
            Some("d"),
        )
        .await
        .unwrap();
    let keys: Vec<String> = conn.keys(format!("{prefix}:*")).unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    let single = random_id();
    let triple = random_id();
    let unlimited = random_id();
    store
        .redeem(
            &LinkRef {
                keep_seconds,
                ..link(&single, limited(1), now)
            },
            "device-aaaaaaaaaaaa",
        )
        .await
        .unwrap();
    for d in ["d1", "d2", "d3", "d4"] {
        store
            .redeem(
                &LinkRef {
                    keep_seconds,
                    ..link(&triple, limited(3), now)
                },
                d,
            )
            .await
            .unwrap();
    }
    for d in ["d1", "d2"] {
        store
            .redeem(
                &LinkRef {
                    keep_seconds,
                    ..link(&unlimited, UseLimit::Unlimited, now)
                },
                d,
            )
            .await
            .unwrap();
    }
    store
        .revoke_link("demo", &single, keep_seconds)
        .await
        .unwrap();
    store
        .revoke_scope("demo", &Scope::Media("m1".into()), now, keep_seconds)
        .await
        .unwrap();

    let key = |kind: &str, id: &str| format!("{prefix}:{{demo}}:{kind}:{id}");
    let kinds = [
        (key("u", &single), "string"),
        (key("u", &triple), "set"),
        (key("u", &unlimited), "string"),
        (key("x", &single), "string"),
        (key("m", "m1"), "string"),
    ];
    for (k, kind) in &kinds {
        let t: String = redis::cmd("TYPE").arg(k).query(&mut conn).unwrap();
        assert_eq!(&t, kind, "{k}");
        // A relative TTL (EX), counted on Redis's clock from when the key was written.
        let ttl: i64 = conn.ttl(k).unwrap();
        assert!(
            ttl <= keep_seconds && ttl > keep_seconds - 60,
            "{k} lives its link's remaining life: TTL {ttl}"
        );
    }
    let members: usize = conn.scard(key("u", &triple)).unwrap();
    assert_eq!(members, 3, "an N-use link keeps at most N devices");
    let count: String = conn.get(key("u", &unlimited)).unwrap();
    assert_eq!(count, "2");
    let keys: Vec<String> = conn.keys(format!("{prefix}:*")).unwrap();
    assert_eq!(keys.len(), kinds.len(), "{keys:?}");
}
