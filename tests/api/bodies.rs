//! Request bodies are read exactly as openapi.yaml describes them (SPEC §5): unknown fields are
//! 422 naming the field, `null` and values of the wrong JSON type are 400, integers are JSON
//! Schema's integers — on every JSON endpoint, through the real app.

use serde_json::{Value, json};

use crate::helpers::*;

/// `body` with `changes` merged in (no nulls: `merge` takes a null for "remove").
fn with(mut body: Value, changes: Value) -> Value {
    merge(&mut body, changes);
    body
}

#[tokio::test]
async fn unknown_fields_are_422_naming_the_field_and_nulls_are_400() {
    let app = spawn_app().await;
    let token = app.create_token(json!({})).await;
    let redeem = json!({ "token": token, "email": "ada@example.com" });
    let token_body = json!({ "token": token });
    let endpoints: [(&str, Value); 5] = [
        ("/v1/invites", invite_body()),
        ("/v1/redeem", redeem),
        ("/v1/invites/introspect", token_body.clone()),
        ("/v1/invites/revoke", token_body),
        ("/v1/revocations", json!({ "media_id": "some-other-entry" })),
    ];
    for (path, valid) in &endpoints {
        let unknown = app
            .post(
                path,
                Some(DEMO_KEY),
                &with(valid.clone(), json!({ "colour": "red" })),
            )
            .await;
        assert_eq!(
            (unknown.status, unknown.code()),
            (422, "invalid_request"),
            "{path}"
        );
        assert_eq!(unknown.body["errors"][0]["field"], "colour", "{path}");
        let first_field = valid.as_object().unwrap().keys().next().unwrap().clone();
        let mut with_null = valid.clone();
        with_null[&first_field] = Value::Null;
        let null = app.post(path, Some(DEMO_KEY), &with_null).await;
        assert_eq!(
            (null.status, null.code()),
            (400, "malformed_request"),
            "{path} {first_field}: null"
        );
        for not_an_object in [json!([]), json!("x"), json!(null), json!(1)] {
            let reply = app.post(path, Some(DEMO_KEY), &not_an_object).await;
            assert_eq!(
                (reply.status, reply.code()),
                (400, "malformed_request"),
                "{path} {not_an_object}"
            );
        }
    }
    // Nested objects: an unknown field is named by its path; an array or null is 400.
    let nested = app
        .post(
            "/v1/invites",
            Some(DEMO_KEY),
            &with(invite_body(), json!({ "media": { "colour": "red" } })),
        )
        .await;
    assert_eq!(
        (nested.status, nested.body["errors"][0]["field"].as_str()),
        (422, Some("media.colour"))
    );
    for media in [json!(["1_abc", "room"]), json!(null)] {
        let mut body = invite_body();
        body["media"] = media.clone();
        let reply = app.post("/v1/invites", Some(DEMO_KEY), &body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "malformed_request"),
            "media: {media}"
        );
    }
    let mut body = invite_body();
    body["invitee"]["first_name"] = Value::Null;
    let null_name = app.post("/v1/invites", Some(DEMO_KEY), &body).await;
    assert_eq!(null_name.status, 400);
    assert!(
        null_name.body["detail"]
            .as_str()
            .unwrap()
            .contains("invitee.first_name")
    );
    // One scope id as null is a wrong type, not "the whole tenant".
    let scope = app
        .post(
            "/v1/revocations",
            Some(DEMO_KEY),
            &json!({ "inviter_id": null }),
        )
        .await;
    assert_eq!((scope.status, scope.code()), (400, "malformed_request"));
    // The refused requests revoked nothing: the link is still there to redeem.
    assert_eq!(app.redeem_as(&token, &device(1)).await.status, 200);
}

#[tokio::test]
async fn integers_are_json_schema_integers() {
    let app = spawn_app().await;
    for (duration, status) in [
        (json!(60), 201),
        (json!(60.0), 201),
        (json!(60.5), 400),
        (json!("60"), 400),
        (json!(0), 422),
        (json!(1e300), 422),
        (json!(u64::MAX), 422),
    ] {
        let body = with(invite_body(), json!({ "duration_minutes": duration }));
        let reply = app.post("/v1/invites", Some(DEMO_KEY), &body).await;
        assert_eq!(
            reply.status, status,
            "duration_minutes {duration}: {:?}",
            reply.body
        );
        if status == 422 {
            assert_eq!(reply.body["errors"][0]["field"], "duration_minutes");
        }
    }
    let one = with(invite_body(), json!({ "max_uses": 1.0 }));
    assert_eq!(
        app.post("/v1/invites", Some(DEMO_KEY), &one).await.body["max_uses"],
        1
    );
}
