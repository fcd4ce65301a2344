//! Scheduled links (SPEC §5 `starts_at`): a link that opens later, through the real app.

use serde_json::{Value, json};

use crate::helpers::*;

fn at(unix: i64) -> String {
    invitetomedia::service::rfc3339(unix)
}

fn unix(text: &Value) -> i64 {
    time::OffsetDateTime::parse(
        text.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

#[tokio::test]
async fn a_link_opens_at_its_start_and_lives_its_duration_from_then() {
    let app = spawn_app().await;
    let start = invitetomedia::store::unix_now() + 3 * 3600;
    let mut body = invite_body();
    body["starts_at"] = json!(at(start));
    body["duration_minutes"] = json!(60);
    let created = app.create(&body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(unix(&created.body["starts_at"]), start);
    assert_eq!(unix(&created.body["expires_at"]), start + 3600);
    let token = created.body["token"].as_str().unwrap();

    let early = app.redeem_as(token, &device(1)).await;
    assert_eq!((early.status, early.code()), (403, "not_yet_valid"));
    let state = app.introspect(token).await.body;
    assert_eq!(state["state"], "not_yet_valid");
    assert_eq!(unix(&state["starts_at"]), start);
    assert_eq!(state["uses"], 0, "nothing consumed before the start");

    // An open link's redemption answer carries the start too.
    let now = app.create_token(json!({})).await;
    let redeemed = app.redeem_as(&now, &device(2)).await;
    assert_eq!(redeemed.status, 200);
    let opened = unix(&redeemed.body["invite"]["starts_at"]);
    assert!(opened <= invitetomedia::store::unix_now());
}

#[tokio::test]
async fn starts_at_is_checked() {
    let app = spawn_app().await;
    let now = invitetomedia::store::unix_now();
    for (value, status) in [
        (json!("not a date"), 422),
        (json!("2026-12-03 09:00"), 422),
        (json!(at(now + 366 * 24 * 3600)), 422),
        (json!(12345), 400),
        (json!(null), 400),
    ] {
        let mut body = invite_body();
        body["starts_at"] = value.clone();
        let reply = app.create(&body).await;
        assert_eq!(reply.status, status, "{value}: {:?}", reply.body);
        if status == 422 {
            assert_eq!(reply.body["errors"][0]["field"], "starts_at");
        }
    }
    // In the past: the link opens now.
    let mut body = invite_body();
    body["starts_at"] = json!(at(now - 86_400));
    let created = app.create(&body).await;
    assert_eq!(created.status, 201);
    assert!(unix(&created.body["starts_at"]) >= now);
    assert_eq!(
        app.redeem_as(created.body["token"].as_str().unwrap(), &device(1))
            .await
            .status,
        200
    );
}
