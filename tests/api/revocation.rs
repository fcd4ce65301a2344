//! Revocation by token, by id and by scope.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(
    a_link_is_read_by_id,
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

/// `GET /v1/invites/{id}`: uses, revoked and locked by id alone, for every kind of link.
async fn a_link_is_read_by_id(backend: Backend) {
    let app = spawn_with(backend, "[security]\nmax_email_attempts = 2").await;
    let read = |id: String| {
        let app = &app;
        async move { app.get(&format!("/v1/invites/{id}"), Some(DEMO_KEY)).await }
    };
    let created = app.create(&invite_body()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let fresh = read(id.clone()).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(
        fresh.body,
        json!({ "id": id, "uses": 0, "revoked": false, "locked": false })
    );
    // A single-use link's holder reads as one use, a re-entry as none more.
    assert_eq!(app.redeem_as(&token, &device(1)).await.status, 200);
    assert_eq!(app.redeem_as(&token, &device(1)).await.status, 200);
    assert_eq!(read(id.clone()).await.body["uses"], 1);
    assert_eq!(
        app.delete(&format!("/v1/invites/{id}"), DEMO_KEY)
            .await
            .status,
        204
    );
    assert_eq!(read(id.clone()).await.body["revoked"], true);

    // N uses: distinct devices; unlimited: every redemption.
    for (max_uses, devices, expected) in [(3, [1, 2, 2, 3], 3), (-1, [1, 1, 2, 2], 4)] {
        let mut body = invite_body();
        merge(
            &mut body,
            json!({ "inviter": { "id": "alice" }, "max_uses": max_uses }),
        );
        let created = app.create_as(ACME_KEY, &body).await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let token = created.body["token"].as_str().unwrap().to_owned();
        for n in devices {
            let reply = app
                .redeem(
                    &json!({ "token": token, "email": "ada@example.com", "device_id": device(n) }),
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
        let found = app.get(&format!("/v1/invites/{id}"), Some(ACME_KEY)).await;
        assert_eq!(found.body["uses"], expected, "max_uses {max_uses}");
    }

    // Locked after max_email_attempts wrong emails.
    let created = app.create(&invite_body()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let wrong = json!({ "token": token, "email": "eve@example.com" });
        assert_eq!(app.redeem(&wrong).await.code(), "email_mismatch");
    }
    assert_eq!(read(id.clone()).await.body["locked"], true);

    // An id never seen reads as an unused link; one that cannot be an id is 404; another
    // tenant's link is not this tenant's.
    let unknown = read("AAAAAAAAAAAAAAAAAAAAAA".to_owned()).await;
    assert_eq!(unknown.body["uses"], 0);
    for bad in ["has%20space", "a.b", &"x".repeat(65)] {
        assert_eq!(read(bad.to_owned()).await.status, 404, "{bad}");
    }
    let other = app.get(&format!("/v1/invites/{id}"), Some(ACME_KEY)).await;
    assert_eq!(other.body["locked"], false, "ids are per tenant");
    assert_eq!(
        app.get(&format!("/v1/invites/{id}"), None).await.status,
        401
    );
}
