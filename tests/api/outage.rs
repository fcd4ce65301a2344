//! Redis goes away and comes back: redeem fails closed within the store timeout, creating keeps
//! working, readiness follows the store, and the service recovers by itself.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_recovers() {
    let mut redis = RedisServer::start();
    let prefix = format!("o{}", &invitetomedia::tokens::random_id()[..8]);
    let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), &prefix, "")).await;
    let token = app
        .create_token(json!({ "media": { "id": "outage" } }))
        .await;
    assert_eq!(app.get("/readyz", None).await.status, 200);

    redis.stop();
    for _ in 0..3 {
        let reply = app.redeem_as(&token, &device(1)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (503, "store_unavailable"),
            "{:?}",
            reply.body
        );
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(reply.body.get("grant").is_none());
        assert_eq!(
            reply.body["device_id"],
            device(1),
            "the 503 names the device"
        );
    }
    // The replica stays in the load balancer: it still creates links and serves pages.
    assert_eq!(app.get("/readyz", None).await.status, 200);
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let store = app.get("/healthz/store", None).await;
    assert_eq!(
        (store.status, &store.body),
        (503, &json!({ "store": "down" }))
    );
    assert!(
        app.get_text("/metrics")
            .await
            .1
            .contains("invitetomedia_store_up 0\n")
    );
    let created = app.create(&invite_body()).await;
    assert_eq!(created.status, 201, "creating needs no store");
    let metrics = app.get_text("/metrics").await.1;
    assert!(
        metrics.contains("invitetomedia_store_errors_total{op=\"redeem\"}"),
        "{metrics}"
    );

    let _back = RedisServer::start_on(redis.port);
    let reply = redeem_until_granted(&app, &token).await;
    assert_eq!(
        reply.body["reentry"], false,
        "the failed attempts consumed nothing"
    );
    // Each worker thread has its own connection; one that has not been used since Redis came
    // back reconnects on its next call, so the store's health may lag the first grant by a
    // probe or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get("/healthz/store", None).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "/healthz/store did not follow the store back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_is_bounded_by_the_store_timeout() {
    let redis = RedisServer::start();
    let prefix = format!("f{}", &invitetomedia::tokens::random_id()[..8]);
    let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), &prefix, "")).await;
    let token = app.create_token(json!({})).await;
    assert_eq!(app.get("/readyz", None).await.status, 200);

    // A frozen Redis never answers: that the redemption answers at all (the client waits
    // far longer than the store timeout) proves the bound, without measuring time.
    redis.pause();
    let reply = app.redeem_as(&token, &device(1)).await;
    assert_eq!((reply.status, reply.code()), (503, "store_unavailable"));
    assert_eq!(app.get("/readyz", None).await.status, 200);
    assert_eq!(app.get("/healthz/store", None).await.status, 503);
    redis.resume();

    redeem_until_granted(&app, &token).await;
    // If the frozen attempt was applied after all, it was this device's: still one use.
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}

/// Redeems as device 1 until the store is back (15 s at most): the service reconnects by itself.
async fn redeem_until_granted(app: &TestApp, token: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.redeem_as(token, &device(1)).await;
        if reply.status == 200 {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {:?}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
