//! Revocation by token, by id and by scope.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(
    revoke_by_token_is_idempotent_and_beats_exhausted,
    delete_by_id_revokes,
    scope_revocations_stop_earlier_links_only
);

async fn revoke_by_token_is_idempotent_and_beats_exhausted(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let token = app.create_token(json!({})).await;
    assert_eq!(app.redeem_as(&token, &device(1)).await.status, 200);
    for _ in 0..2 {
        let reply = app
            .post(
                "/v1/invites/revoke",
                Some(DEMO_KEY),
                &json!({ "token": token }),
            )
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["revoked"], true);
        assert_eq!(reply.body["id"].as_str().unwrap().len(), 22);
    }
    // Revoked beats exhausted, and ends re-entry too.
    let other = app.redeem_as(&token, &device(2)).await;
    assert_eq!((other.status, other.code()), (410, "revoked"));
    let same = app.redeem_as(&token, &device(1)).await;
    assert_eq!((same.status, same.code()), (410, "revoked"));
    assert_eq!(app.introspect(&token).await.body["state"], "revoked");
    // Another tenant cannot revoke (or learn about) it.
    let reply = app
        .post(
            "/v1/invites/revoke",
            Some(ACME_KEY),
            &json!({ "token": token }),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (404, "not_found"));
    let reply = app
        .post(
            "/v1/invites/revoke",
            Some(DEMO_KEY),
            &json!({ "token": "x.y.z" }),
        )
        .await;
    assert_eq!(reply.status, 404);
}

async fn delete_by_id_revokes(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let created = app.create(&invite_body()).await;
    let (id, token) = (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["token"].as_str().unwrap().to_owned(),
    );
    // Another tenant deleting the same id does not touch this tenant's link.
    assert_eq!(
        app.delete(&format!("/v1/invites/{id}"), ACME_KEY)
            .await
            .status,
        204
    );
    assert_eq!(app.introspect(&token).await.body["state"], "active");
    for _ in 0..2 {
        assert_eq!(
            app.delete(&format!("/v1/invites/{id}"), DEMO_KEY)
                .await
                .status,
            204
        );
    }
    assert_eq!(app.redeem_as(&token, &device(1)).await.code(), "revoked");
    assert_eq!(
        app.delete("/v1/invites/not%20an%20id", DEMO_KEY)
            .await
            .status,
        404
    );
    let unauthenticated = app
        .client
        .delete(format!("{}/v1/invites/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
}

async fn scope_revocations_stop_earlier_links_only(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let media = app
        .create_token(json!({ "media": { "id": "m-revoked" } }))
        .await;
    let other_media = app
        .create_token(json!({ "media": { "id": "m-kept" } }))
        .await;
    let inviter = app
        .create_token(json!({ "inviter": { "id": "departing" } }))
        .await;

    let reply = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "media_id": "m-revoked" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["scope"], "media");
    assert!(
        reply.body["revoked_before"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let reply = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "inviter_id": "departing" }),
        )
        .await;
    assert_eq!(reply.body["scope"], "inviter");

    assert_eq!(app.redeem_as(&media, &device(1)).await.code(), "revoked");
    assert_eq!(app.redeem_as(&inviter, &device(1)).await.code(), "revoked");
    assert_eq!(app.redeem_as(&other_media, &device(1)).await.status, 200);
    // Links made in the same second are revoked too; later ones are not.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = app
        .create_token(json!({ "media": { "id": "m-revoked" } }))
        .await;
    assert_eq!(app.redeem_as(&later, &device(1)).await.status, 200);

    // The whole tenant; acme is untouched.
    let mut acme_body = invite_body();
    merge(&mut acme_body, json!({ "inviter": { "id": "alice" } }));
    let acme = app.create_token_as(ACME_KEY, &acme_body).await;
    let tenant_wide = app.create_token(json!({})).await;
    let reply = app
        .post("/v1/revocations", Some(DEMO_KEY), &json!({}))
        .await;
    assert_eq!(reply.body["scope"], "tenant");
    assert_eq!(
        app.redeem_as(&tenant_wide, &device(1)).await.code(),
        "revoked"
    );
    assert_eq!(app.redeem_as(&acme, &device(1)).await.status, 200);
}

#[tokio::test]
async fn scope_requests_are_validated() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "media_id": "a", "inviter_id": "b" }),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (422, "invalid_request"));
    let reply = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "media_id": "" }),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (422, "invalid_request"));
    // An empty body is not taken for "the whole tenant".
    let reply = app.post_raw("/v1/revocations", Some(DEMO_KEY), "").await;
    assert_eq!((reply.status, reply.code()), (400, "malformed_request"));
    let reply = app.post("/v1/revocations", None, &json!({})).await;
    assert_eq!(reply.status, 401);
}
