//! Concurrent redemptions: an N-use link admits exactly N distinct devices, whatever the race.

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(
    sixty_devices_race_for_one_use,
    sixty_devices_race_for_three_uses,
    one_device_racing_itself_uses_one,
    revocation_amid_redemptions_counts_only_grants
);

async fn race(
    app: &TestApp,
    token: &str,
    devices: impl Iterator<Item = String>,
) -> (usize, usize, usize) {
    let mut tasks = JoinSet::new();
    for device in devices {
        let (client, address, token) = (app.client.clone(), app.address.clone(), token.to_owned());
        tasks.spawn(async move {
            let body = json!({ "token": token, "email": "ada@example.com", "device_id": device });
            let reply = post_json(&client, &format!("{address}/v1/redeem"), None, &body).await;
            (
                reply.status,
                reply.body["reentry"] == true,
                reply.code().to_owned(),
            )
        });
    }
    let (mut granted, mut reentries, mut exhausted) = (0, 0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (200, false, _) => granted += 1,
            (200, true, _) => reentries += 1,
            (410, _, code) if code == "exhausted" => exhausted += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    (granted, reentries, exhausted)
}

async fn sixty_devices_race_for_one_use(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let token = app.create_token(json!({})).await;
    assert_eq!(race(&app, &token, (0..60).map(device)).await, (1, 0, 59));
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}

async fn sixty_devices_race_for_three_uses(backend: Backend) {
    let app = spawn_with(backend, "[tenants.demo.invitetomedia]\nLinkReusability = 5").await;
    let token = app.create_token(json!({ "max_uses": 3 })).await;
    assert_eq!(race(&app, &token, (0..60).map(device)).await, (3, 0, 57));
    assert_eq!(app.introspect(&token).await.body["uses"], 3);
}

async fn one_device_racing_itself_uses_one(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let token = app.create_token(json!({})).await;
    assert_eq!(
        race(&app, &token, (0..20).map(|_| device(7))).await,
        (1, 19, 0)
    );
}

/// Redemptions racing a revocation, on an unlimited and on a single-use link: every answer is
/// a grant, `revoked` or `exhausted`, and the link's count is exactly its grants (a refused
/// redemption records nothing, however it interleaved with the revocation).
async fn revocation_amid_redemptions_counts_only_grants(backend: Backend) {
    let app = spawn_with(
        backend,
        "[tenants.demo.invitetomedia]\nLinkReusability = -1",
    )
    .await;
    for max_uses in [-1, 1] {
        let token = app.create_token(json!({ "max_uses": max_uses })).await;
        let mut tasks = JoinSet::new();
        for n in 0..60 {
            let (client, address, token) = (app.client.clone(), app.address.clone(), token.clone());
            tasks.spawn(async move {
                let path = if n == 20 { "invites/revoke" } else { "redeem" };
                let body = if n == 20 {
                    json!({ "token": token })
                } else {
                    json!({ "token": token, "email": "ada@example.com", "device_id": device(n) })
                };
                // The demo key, for the revocation (redemption ignores it).
                let url = format!("{address}/v1/{path}");
                let reply = post_json(&client, &url, Some(DEMO_KEY), &body).await;
                (path, reply.status, reply.code().to_owned())
            });
        }
        let mut granted = 0;
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                ("redeem", 200, _) => granted += 1,
                ("redeem", 410, code) if code == "revoked" || code == "exhausted" => {}
                ("invites/revoke", 200, _) => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        // Redemptions after the revocation are refused and change nothing either.
        for n in 60..70 {
            assert_eq!(app.redeem_as(&token, &device(n)).await.code(), "revoked");
        }
        let state = app.introspect(&token).await.body;
        assert_eq!(state["state"], "revoked");
        assert_eq!(state["uses"], granted, "max_uses {max_uses}");
        assert!(max_uses == -1 || granted <= 1);
    }
}
