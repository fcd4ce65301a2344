//! `POST /v1/invites`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn creates_a_link_with_every_field_of_the_contract() {
    let app = spawn_app().await;
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "duration_minutes": 60, "max_uses": 1, "invitee": { "role": "moderator" } }),
    );
    let reply = app.create(&body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let b = &reply.body;
    let token = b["token"].as_str().unwrap();
    assert_eq!(b["url"], format!("https://invites.example.test/i/{token}"));
    assert_eq!(b["media_id"], "1_abc");
    assert_eq!(b["role"], "moderator");
    assert_eq!(b["max_uses"], 1);
    assert_eq!(b["email"], json!({ "status": "not_requested" }));
    assert_eq!(b["id"].as_str().unwrap().len(), 22);
    let expires = time::OffsetDateTime::parse(
        b["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let minutes = (expires - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!((58..=60).contains(&minutes), "{minutes}");
}

#[tokio::test]
async fn the_link_carries_no_personal_data_in_clear() {
    let app = spawn_app().await;
    let token = app.create_token(json!({})).await;
    let mut seen = String::new();
    for segment in token.split('.').take(2) {
        seen.push_str(&String::from_utf8_lossy(
            &URL_SAFE_NO_PAD.decode(segment).unwrap(),
        ));
    }
    assert!(seen.contains("\"typ\":\"invite+jwt\""), "{seen}");
    for secret in [
        "ada",
        "Ada",
        "Lovelace",
        "example.com",
        "Weekly",
        "Prof One",
    ] {
        assert!(!seen.contains(secret), "{secret} readable in {seen}");
    }
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "i1");
    assert_eq!(header["alg"], "HS256");
}

#[tokio::test]
async fn requires_a_known_api_key() {
    let app = spawn_app().await;
    for key in [None, Some("wrong-key"), Some("")] {
        let reply = app.post("/v1/invites", key, &invite_body()).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.code(), "unauthenticated");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    let basic = app
        .client
        .post(format!("{}/v1/invites", app.address))
        .basic_auth("demo-api-key", Some(""))
        .json(&invite_body())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_oversized_413() {
    let app = spawn_app().await;
    for raw in [
        "not json",
        "{\"media\": ",
        "[]",
        "{\"media\": {\"id\": 5}}",
        "{\"max_uses\": \"3\"}",
        "{\"send_email\": \"yes\"}",
    ] {
        let reply = app
            .post_raw("/v1/invites", Some(DEMO_KEY), raw.to_owned())
            .await;
        assert_eq!(reply.status, 400, "{raw}: {:?}", reply.body);
        assert_eq!(reply.code(), "malformed_request", "{raw}");
    }
    let mut body = invite_body();
    body["padding"] = Value::String("x".repeat(17 * 1024));
    let reply = app.create(&body).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "payload_too_large");
}

#[tokio::test]
async fn invalid_fields_are_422_naming_each_field() {
    let app = spawn_app().await;
    let long = "x".repeat(201);
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "media": null }), "media.id"),
        (json!({ "media": { "id": null } }), "media.id"),
        (json!({ "media": { "id": "has space" } }), "media.id"),
        (json!({ "media": { "type": "podcast" } }), "media.type"),
        (
            json!({ "media": { "type": "video" }, "invitee": { "role": "moderator" } }),
            "invitee.role",
        ),
        (
            json!({ "media": { "type": "quiz" }, "invitee": { "role": "speaker" } }),
            "invitee.role",
        ),
        (json!({ "invitee": { "role": "owner" } }), "invitee.role"),
        (json!({ "invitee": { "role": null } }), "invitee.role"),
        (json!({ "media": { "title": long } }), "media.title"),
        (json!({ "media": { "title": "a\r\nb" } }), "media.title"),
        (
            json!({ "inviter": { "role": "superRole" } }),
            "inviter.role",
        ),
        (
            json!({ "inviter": { "permission": "boss" } }),
            "inviter.permission",
        ),
        (json!({ "inviter": { "id": null } }), "inviter.id"),
        (
            json!({ "invitee": { "email": "Ada <ada@example.com>" } }),
            "invitee.email",
        ),
        (
            json!({ "invitee": { "email": "ada@[127.0.0.1]" } }),
            "invitee.email",
        ),
        (json!({ "invitee": { "email": null } }), "invitee.email"),
        (
            json!({ "invitee": { "first_name": null } }),
            "invitee.first_name",
        ),
        (
            json!({ "invitee": { "last_name": "\u{0}" } }),
            "invitee.last_name",
        ),
        (json!({ "duration_minutes": 1441 }), "duration_minutes"),
        (json!({ "duration_minutes": 0 }), "duration_minutes"),
        (json!({ "max_uses": 2 }), "max_uses"),
        (json!({ "max_uses": -1 }), "max_uses"),
        (json!({ "max_uses": 0 }), "max_uses"),
        (json!({ "language": "english language!" }), "language"),
    ];
    for (changes, field) in cases {
        let mut body = invite_body();
        merge(&mut body, changes.clone());
        let reply = app.create(&body).await;
        assert_eq!(reply.status, 422, "{changes}: {:?}", reply.body);
        assert_eq!(reply.code(), "invalid_request", "{changes}");
        let fields: Vec<&str> = reply.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{changes}: expected {field} in {fields:?}"
        );
    }
}

#[tokio::test]
async fn policy_refusals_are_403() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "inviter": { "role": "viewerRole" } }),
            "inviter_not_allowed",
        ),
        (
            json!({ "inviter": { "role": "anonymousRole" } }),
            "inviter_not_allowed",
        ),
        (
            json!({ "inviter": { "permission": "co_viewer" } }),
            "not_media_collaborator",
        ),
        (
            json!({ "inviter": { "permission": "none" } }),
            "not_media_collaborator",
        ),
        (
            json!({ "inviter": { "permission": "co_editor" }, "invitee": { "role": "moderator" } }),
            "role_not_grantable",
        ),
        (
            json!({ "inviter": { "permission": "co_publisher" }, "invitee": { "role": "moderator" } }),
            "role_not_grantable",
        ),
    ];
    for (changes, code) in cases {
        let mut body = invite_body();
        merge(&mut body, changes.clone());
        let reply = app.create(&body).await;
        assert_eq!((reply.status, reply.code()), (403, code), "{changes}");
    }
    // A co-editor may grant speaker; an admin co-owner may grant moderator.
    app.create_token(
        json!({ "inviter": { "permission": "co_editor" }, "invitee": { "role": "speaker" } }),
    )
    .await;
    app.create_token(json!({ "inviter": { "role": "adminRole", "permission": "co_owner" }, "invitee": { "role": "moderator" } })).await;
}

#[tokio::test]
async fn allowed_users_by_id_or_group() {
    let app = spawn_app().await;
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "inviter": { "id": "bob", "role": "unmoderatedAdminRole", "groups": ["staff"] } }),
    );
    let reply = app.post("/v1/invites", Some(ACME_KEY), &body).await;
    assert_eq!((reply.status, reply.code()), (403, "inviter_not_allowed"));
    merge(
        &mut body,
        json!({ "inviter": { "groups": ["staff", "faculty"] } }),
    );
    app.create_token_as(ACME_KEY, &body).await;
    merge(
        &mut body,
        json!({ "inviter": { "id": "alice", "role": "viewerRole", "groups": [] } }),
    );
    app.create_token_as(ACME_KEY, &body).await;
}

#[tokio::test]
async fn module_disabled_is_403() {
    let app = spawn_app().await;
    let reply = app.post("/v1/invites", Some(OFF_KEY), &invite_body()).await;
    assert_eq!((reply.status, reply.code()), (403, "module_disabled"));
}

#[tokio::test]
async fn restricted_domains_cannot_be_invited() {
    let app = spawn_app().await;
    for email in [
        "prof@university.edu",
        "ta@cs.university.edu",
        "TA@CS.University.EDU.",
    ] {
        let mut body = invite_body();
        merge(&mut body, json!({ "invitee": { "email": email } }));
        let reply = app.create(&body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (422, "restricted_domain"),
            "{email}"
        );
    }
    app.create_token(json!({ "invitee": { "email": "student@notuniversity.edu" } }))
        .await;
}

#[tokio::test]
async fn email_needs_a_template_and_an_address() {
    let app = spawn_app().await;
    let mut body = invite_body();
    body["send_email"] = json!(true);
    let reply = app
        .post("/v1/invites", Some(ACME_KEY), &{
            let mut b = body.clone();
            merge(&mut b, json!({ "inviter": { "id": "alice" } }));
            b
        })
        .await;
    assert_eq!((reply.status, reply.code()), (422, "email_disabled"));
    // An open link has nobody to send to.
    let mut open = body.clone();
    merge(
        &mut open,
        json!({ "inviter": { "id": "alice" }, "invitee": { "email": null, "first_name": null, "last_name": null } }),
    );
    let reply = app.post("/v1/invites", Some(ACME_KEY), &open).await;
    assert_eq!((reply.status, reply.code()), (422, "invalid_request"));
    assert_eq!(reply.body["errors"][0]["field"], "send_email");
}

#[tokio::test]
async fn open_links_only_where_allowed() {
    let app = spawn_app().await;
    let open = json!({ "invitee": { "email": null, "first_name": null, "last_name": null } });
    let mut body = invite_body();
    merge(&mut body, open.clone());
    let reply = app.create(&body).await;
    assert_eq!((reply.status, reply.code()), (422, "invalid_request"));
    merge(&mut body, json!({ "inviter": { "id": "alice" } }));
    let reply = app.post("/v1/invites", Some(ACME_KEY), &body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(
        reply.body["max_uses"], -1,
        "acme's LinkReusability is unlimited"
    );
    // Names without an address are refused rather than silently dropped.
    merge(&mut body, json!({ "invitee": { "first_name": "Ada" } }));
    let reply = app.post("/v1/invites", Some(ACME_KEY), &body).await;
    assert_eq!(reply.status, 422);
}
