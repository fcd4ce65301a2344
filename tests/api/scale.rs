//! Scale-out: several replicas on one store, key rotation across instances, graceful shutdown
//! of the real binary.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;

/// `n` replicas sharing one store (same backend, same key prefix, same keys).
async fn replicas(backend: Backend, n: usize, extra: &str) -> Vec<TestApp> {
    let prefix = format!("r{}", &invitetomedia::tokens::random_id()[..8]);
    let url = shared_redis().url();
    let toml = test_toml(backend, &url, &prefix, extra);
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(spawn_configured(&toml).await);
    }
    apps
}

async fn three_replicas_count_and_revoke_as_one(backend: Backend) {
    let apps = replicas(
        backend,
        3,
        "[tenants.demo.invitetomedia]\nLinkReusability = 5",
    )
    .await;
    let token = apps[0].create_token(json!({ "max_uses": 3 })).await;
    let mut tasks = JoinSet::new();
    for i in 0..60 {
        let app = &apps[i % 3];
        let (client, address, token) = (app.client.clone(), app.address.clone(), token.clone());
        tasks.spawn(async move {
            let body =
                json!({ "token": token, "email": "ada@example.com", "device_id": device(i) });
            client
                .post(format!("{address}/v1/redeem"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 57);
    for app in &apps {
        assert_eq!(app.introspect(&token).await.body["uses"], 3);
    }

    // A revocation through one replica is refused by the others at once.
    let other = apps[1].create_token(json!({})).await;
    let reply = apps[1]
        .post(
            "/v1/invites/revoke",
            Some(DEMO_KEY),
            &json!({ "token": other }),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        apps[2].redeem_as(&other, &device(1)).await.code(),
        "revoked"
    );
    assert_eq!(
        apps[0].redeem_as(&other, &device(1)).await.code(),
        "revoked"
    );
    let scoped = apps[0]
        .create_token(json!({ "inviter": { "id": "leaver" } }))
        .await;
    apps[2]
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "inviter_id": "leaver" }),
        )
        .await;
    assert_eq!(
        apps[1].redeem_as(&scoped, &device(1)).await.code(),
        "revoked"
    );
}

mod replicas_on {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        three_replicas_count_and_revoke_as_one(Backend::Redis).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster() {
        three_replicas_count_and_revoke_as_one(Backend::Cluster).await;
    }
}

/// The test configuration with the invite key list replaced.
fn with_invite_keys(keys: &str) -> String {
    let prefix = format!("k{}", &invitetomedia::tokens::random_id()[..8]);
    test_toml_with_keys(Backend::Redis, &shared_redis().url(), &prefix, keys, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_downtime() {
    let old =
        "{ kid = \"old\", alg = \"HS256\", secret = \"old-secret-0123456789abcdef0123456789\" }";
    let new =
        "{ kid = \"new\", alg = \"HS256\", secret = \"new-secret-0123456789abcdef0123456789\" }";
    // Before: every pod signs and verifies with the old key.
    let before = spawn_configured(&with_invite_keys(old)).await;
    let old_link = before.create_token(json!({})).await;
    // Step 1: the new key is added for verification on every pod (old still signs).
    let step1 = spawn_configured(&with_invite_keys(&format!("{old}, {new}"))).await;
    assert_eq!(step1.introspect(&old_link).await.body["state"], "active");
    // Step 2: the new key signs; pods still at step 1 verify its links.
    let step2 = spawn_configured(&with_invite_keys(&format!("{new}, {old}"))).await;
    let new_link = step2.create_token(json!({})).await;
    assert_eq!(step1.introspect(&new_link).await.body["state"], "active");
    assert_eq!(step2.introspect(&old_link).await.body["state"], "active");
    assert_eq!(
        before.introspect(&new_link).await.body["state"],
        "invalid",
        "a pod without the new key would refuse: hence step 1 first"
    );
    // Step 3: after the longest LinkDuration the old key is retired.
    let step3 = spawn_configured(&with_invite_keys(new)).await;
    assert_eq!(step3.redeem_as(&new_link, &device(1)).await.status, 200);
    assert_eq!(
        step3.redeem_as(&old_link, &device(1)).await.code(),
        "invalid_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_redemptions() {
    let redis = RedisServer::start();
    let port = free_port();
    let prefix = format!("g{}", &invitetomedia::tokens::random_id()[..8]);
    let toml = test_toml(Backend::Redis, &redis.url(), &prefix, "");
    let overrides = Overrides::new()
        .set("server.drain_delay_seconds", 2)
        .set("server.shutdown_timeout_seconds", 10)
        .set("store.timeout_ms", 5000);
    let mut bin = spawn_binary_with(&toml, port, &overrides, false).await;
    let created = bin
        .post("/v1/invites", Some(DEMO_KEY), &invite_body())
        .await;
    let token = created.body["token"].as_str().unwrap().to_owned();
    let (base, client) = (bin.base.clone(), bin.client.clone());
    let pid = bin.child.id().to_string();

    // A redemption is in flight (Redis frozen) when SIGTERM arrives.
    redis.pause();
    let in_flight = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let body =
                json!({ "token": token, "email": "ada@example.com", "device_id": device(1) });
            let response = client
                .post(format!("{base}/v1/redeem"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503, "readiness turns 503 at once");
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    redis.resume();

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight redemption completed: {body}");
    assert_eq!(body["invite"]["uses"], 1);
    let exit = tokio::task::spawn_blocking(move || bin.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0), "exits 0 after draining");
    // Counted once.
    let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), &prefix, "")).await;
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}
