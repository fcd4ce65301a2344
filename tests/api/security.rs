//! Guessing and outliving: the failed-attempt lock of email-bound links, and store entries that
//! live exactly as long as they must.

use redis::Commands;
use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(wrong_emails_lock_the_link);

/// Redeems `token` with a wrong address.
async fn guess(app: &TestApp, token: &str, n: usize) -> Reply {
    app.redeem(&json!({ "token": token, "email": format!("guess{n}@example.com"), "device_id": device(100 + n) }))
        .await
}

async fn wrong_emails_lock_the_link(backend: Backend) {
    let app = spawn_with(backend, "[security]\nmax_email_attempts = 3").await;
    let token = app.create_token(json!({})).await;
    for n in 0..3 {
        let reply = guess(&app, &token, n).await;
        assert_eq!(
            (reply.status, reply.code()),
            (403, "email_mismatch"),
            "guess {n}"
        );
    }
    let introspected = app.introspect(&token).await.body;
    assert_eq!(
        (
            introspected["state"].as_str(),
            introspected["active"].as_bool()
        ),
        (Some("locked"), Some(false))
    );
    for reply in [
        guess(&app, &token, 3).await,
        app.redeem_as(&token, &device(1)).await,
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (410, "locked"),
            "{:?}",
            reply.body
        );
    }
    let (status, html) = app.get_text(&format!("/i/{token}")).await;
    assert_eq!(status, 410);
    assert!(html.contains("data-code=\"locked\""), "{html}");
    assert_eq!(app.introspect(&token).await.body["uses"], 0);

    // Other links are not affected; open links never lock (no invited address to guess).
    let other = app.create_token(json!({})).await;
    assert_eq!(app.redeem_as(&other, &device(2)).await.status, 200);
}

/// `n` replicas sharing one store and key prefix.
async fn replicas(backend: Backend, prefix: &str, extra: &str) -> Vec<TestApp> {
    let toml = test_toml(backend, &shared_redis().url(), prefix, extra);
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(spawn_configured(&toml).await);
    }
    apps
}

async fn fifty_parallel_guesses_lock_at_the_limit(backend: Backend) {
    let prefix = format!("g{}", &invitetomedia::tokens::random_id()[..8]);
    let apps = replicas(backend, &prefix, "[security]\nmax_email_attempts = 10").await;
    let created = apps[0].create(&invite_body()).await.body;
    let token = created["token"].as_str().unwrap().to_owned();
    let mut tasks = JoinSet::new();
    for n in 0..50 {
        let app = &apps[n % 3];
        let (client, address, token) = (app.client.clone(), app.address.clone(), token.clone());
        tasks.spawn(async move {
            let body = json!({ "token": token, "email": format!("guess{n}@example.com"), "device_id": device(n) });
            let reply = post_json(&client, &format!("{address}/v1/redeem"), None, &body).await;
            (reply.status, reply.code().to_owned())
        });
    }
    let (mut mismatches, mut locked) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (403, code) if code == "email_mismatch" => mismatches += 1,
            (410, code) if code == "locked" => locked += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    // Each guess is counted, or refused as locked, in one atomic step: the count stops at the
    // limit exactly.
    assert_eq!((mismatches, locked), (10, 40));
    if backend == Backend::Redis {
        let id = created["id"].as_str().unwrap();
        let count: i64 = shared_redis()
            .connection()
            .get(format!("{prefix}:{{demo}}:f:{id}"))
            .unwrap();
        assert_eq!(count, 10);
    }
    for app in &apps {
        let reply = app.redeem_as(&token, &device(99)).await;
        assert_eq!((reply.status, reply.code()), (410, "locked"));
    }
}

mod fifty_parallel_guesses {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        fifty_parallel_guesses_lock_at_the_limit(Backend::Redis).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster() {
        fifty_parallel_guesses_lock_at_the_limit(Backend::Cluster).await;
    }
}

#[tokio::test]
async fn every_redemption_check_fails_closed_and_names_the_device() {
    let mut redis = RedisServer::start();
    let app = spawn_configured(&test_toml(Backend::Redis, &redis.url(), "fc", "")).await;
    let token = app.create_token(json!({})).await;
    redis.stop();
    // A wrong email needs the store to count it: 503, not a free guess.
    let wrong = guess(&app, &token, 1).await;
    assert_eq!((wrong.status, wrong.code()), (503, "store_unavailable"));
    assert_eq!(wrong.body["device_id"], device(101));
    // Without a device id the service made one, and says which.
    let right = app
        .redeem(&json!({ "token": token, "email": "ada@example.com" }))
        .await;
    assert_eq!((right.status, right.code()), (503, "store_unavailable"));
    let made = right.body["device_id"]
        .as_str()
        .expect("the 503 names the device");
    assert!((16..=128).contains(&made.len()), "{made}");
}

#[tokio::test]
async fn revocation_markers_outlive_any_link() {
    let prefix = format!("m{}", &invitetomedia::tokens::random_id()[..8]);
    let app = spawn_configured(&test_toml(
        Backend::Redis,
        &shared_redis().url(),
        &prefix,
        "[tenants.demo.invitetomedia]\nLinkDuration = 60",
    ))
    .await;
    let mut conn = shared_redis().connection();
    let longest = 525_600 * 60 + 60;

    // By id and by scope: the longest life any link can have, whatever LinkDuration is now
    // (a link made while it was longer must stay revoked).
    assert_eq!(
        app.delete("/v1/invites/some-old-link", DEMO_KEY)
            .await
            .status,
        204
    );
    let by_id: i64 = conn
        .ttl(format!("{prefix}:{{demo}}:x:some-old-link"))
        .unwrap();
    let scope = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "media_id": "1_old" }),
        )
        .await;
    assert_eq!(scope.status, 200);
    let by_scope: i64 = conn.ttl(format!("{prefix}:{{demo}}:m:1_old")).unwrap();
    for ttl in [by_id, by_scope] {
        assert!(ttl <= longest && ttl > longest - 60, "TTL {ttl}");
    }

    // By token: the link's own remaining life plus the leeway.
    let created = app.create(&invite_body()).await.body;
    let revoked = app
        .post(
            "/v1/invites/revoke",
            Some(DEMO_KEY),
            &json!({ "token": created["token"] }),
        )
        .await;
    assert_eq!(revoked.status, 200);
    let id = created["id"].as_str().unwrap();
    let by_token: i64 = conn.ttl(format!("{prefix}:{{demo}}:x:{id}")).unwrap();
    assert!(
        by_token <= 60 * 60 + 60 && by_token > 60 * 60 - 60,
        "TTL {by_token}"
    );
}
