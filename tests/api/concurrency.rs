//! Concurrent redemptions: an N-use link admits exactly N distinct devices, whatever the race.

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(
    sixty_devices_race_for_one_use,
    sixty_devices_race_for_three_uses,
    one_device_racing_itself_uses_one
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
            let response = client
                .post(format!("{address}/v1/redeem"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body["reentry"] == true,
                body["code"].as_str().unwrap_or("").to_owned(),
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
