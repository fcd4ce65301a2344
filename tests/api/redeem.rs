//! `POST /v1/redeem`.

use invitetomedia::domain::EmailAddress;
use invitetomedia::service::redeem::participant_id;
use invitetomedia::tokens::verify_grant;
use serde_json::json;

use crate::helpers::*;
use crate::on_every_backend;

on_every_backend!(
    bound_link_grants_once_then_reenters_free,
    email_mismatch_consumes_nothing,
    open_links_take_names,
    unlimited_links_count_every_redemption
);

async fn bound_link_grants_once_then_reenters_free(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let token = app
        .create_token(json!({ "invitee": { "role": "speaker" } }))
        .await;
    let reply = app
        .redeem(&json!({ "token": token, "email": "ADA@Example.com", "device_id": device(1) }))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let b = &reply.body;
    assert_eq!(b["reentry"], false);
    assert_eq!(b["device_id"], device(1));
    assert_eq!(b["accept_url"], "http://127.0.0.1:8080/demo/accept");
    assert_eq!(b["invite"]["uses"], 1);
    assert_eq!(b["invite"]["max_uses"], 1);
    assert_eq!(b["invite"]["media_type"], "room");
    assert_eq!(b["invite"]["role"], "speaker");
    assert_eq!(b["participant"]["email"], "ada@example.com");
    assert_eq!(b["participant"]["first_name"], "Ada");
    assert_eq!(b["participant"]["last_name"], "Lovelace");

    // The grant verifies against the published keys, for the tenant's audience.
    let grant = b["grant"].as_str().unwrap();
    let claims = verify_grant(
        &app.state.live().grant_keys,
        "invitetomedia",
        &["demo-platform"],
        0,
        grant,
    )
    .unwrap();
    assert_eq!(claims.mid, "1_abc");
    assert_eq!(claims.role, "speaker");
    assert_eq!(claims.mty, "room");
    assert_eq!(claims.name, "Ada Lovelace");
    assert_eq!(claims.sub, b["participant"]["id"].as_str().unwrap());
    assert!(claims.exp - claims.iat <= 300);
    assert_eq!(claims.iid, b["invite"]["id"].as_str().unwrap());
    assert!(claims.bound, "the inviter set the address and it was typed");
    assert!(!claims.email_verified, "no one-time code was used");
    assert_eq!(b["participant"]["email_verified"], false);

    // Same device again: a fresh grant, nothing consumed.
    let again = app.redeem_as(&token, &device(1)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["reentry"], true);
    assert_ne!(again.body["grant"], b["grant"]);
    // Another device: used up.
    let other = app.redeem_as(&token, &device(2)).await;
    assert_eq!((other.status, other.code()), (410, "exhausted"));
    assert_eq!(app.introspect(&token).await.body["uses"], 1);
}

async fn email_mismatch_consumes_nothing(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let token = app.create_token(json!({})).await;
    let wrong = app
        .redeem(&json!({ "token": token, "email": "eve@example.com", "device_id": device(9) }))
        .await;
    assert_eq!((wrong.status, wrong.code()), (403, "email_mismatch"));
    assert_eq!(app.introspect(&token).await.body["uses"], 0);
    let right = app.redeem_as(&token, &device(1)).await;
    assert_eq!(right.status, 200);
}

async fn open_links_take_names(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "inviter": { "id": "alice" }, "invitee": { "email": null, "first_name": null, "last_name": null }, "max_uses": 2 }),
    );
    let token = app.create_token_as(ACME_KEY, &body).await;
    let missing = app
        .redeem(&json!({ "token": token, "email": "grace@example.org" }))
        .await;
    assert_eq!((missing.status, missing.code()), (422, "invalid_request"));
    let fields: Vec<&str> = missing.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["first_name", "last_name"]);
    let restricted = app.redeem(&json!({ "token": token, "email": "x@dept.sso.example", "first_name": "X", "last_name": "Y" })).await;
    assert_eq!(
        (restricted.status, restricted.code()),
        (422, "restricted_domain")
    );
    let ok = app.redeem(&json!({ "token": token, "email": "grace@example.org", "first_name": "Grace", "last_name": "Hopper" })).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["participant"]["first_name"], "Grace");
    assert_eq!(ok.body["accept_url"], "https://platform.acme.test/accept");
    // No device id given: one was made, 22 URL-safe characters, usable for re-entry.
    let made = ok.body["device_id"].as_str().unwrap();
    assert_eq!(made.len(), 22);
    let again = app.redeem(&json!({ "token": token, "email": "grace@example.org", "first_name": "Grace", "last_name": "Hopper", "device_id": made })).await;
    assert_eq!(again.body["reentry"], true);
}

async fn unlimited_links_count_every_redemption(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "inviter": { "id": "alice" }, "max_uses": -1 }),
    );
    let token = app.create_token_as(ACME_KEY, &body).await;
    for n in 1..=3 {
        let reply = app.redeem_as(&token, &device(1)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body["reentry"], false,
            "unlimited links keep no device list"
        );
        assert_eq!(reply.body["invite"]["uses"], n);
    }
}

#[tokio::test]
async fn request_problems_are_reported_in_order() {
    let app = spawn_app().await;
    let token = app.create_token(json!({})).await;
    let cases = vec![
        (
            json!({ "email": "ada@example.com" }),
            422,
            "invalid_request",
        ),
        (
            json!({ "token": "", "email": "ada@example.com" }),
            400,
            "malformed_token",
        ),
        (
            json!({ "token": "abc", "email": "ada@example.com" }),
            400,
            "malformed_token",
        ),
        (json!({ "token": token }), 422, "invalid_request"),
        (
            json!({ "token": token, "email": "not-an-email" }),
            422,
            "invalid_request",
        ),
        (
            json!({ "token": token, "email": "ada@example.com", "device_id": "short" }),
            422,
            "invalid_request",
        ),
        (
            json!({ "token": token, "email": "ada@example.com", "device_id": "bad device id with spaces" }),
            422,
            "invalid_request",
        ),
        // invalid_request comes before email_mismatch.
        (
            json!({ "token": token, "email": "eve@example.com", "device_id": "x" }),
            422,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let reply = app.redeem(&body).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{body}");
    }
    let reply = app.post_raw("/v1/redeem", None, "{\"token\": 5}").await;
    assert_eq!((reply.status, reply.code()), (400, "malformed_request"));
    assert_eq!(
        app.introspect(&token).await.body["uses"],
        0,
        "no failed request consumed a use"
    );
}

#[tokio::test]
async fn restricted_domain_is_rechecked_at_redemption() {
    // A link made before an admin restricted the domain stops working for that domain.
    let app = spawn_app().await;
    let token = app
        .create_token(json!({ "invitee": { "email": "ada@lab.example.net" } }))
        .await;
    let restricted = spawn_with(
        Backend::Memory,
        "[tenants.demo.invitetomedia]\nRestrictNewUserDomains = [\"example.net\"]",
    )
    .await;
    let reply = restricted
        .redeem(&json!({ "token": token, "email": "ada@lab.example.net" }))
        .await;
    assert_eq!((reply.status, reply.code()), (422, "restricted_domain"));
    let reply = app
        .redeem(&json!({ "token": token, "email": "ada@lab.example.net" }))
        .await;
    assert_eq!(reply.status, 200);
}

/// On an open link a use is a device and an address: one device cannot mint grants for any
/// number of identities, and a self-declared address never gets an invited person's `sub`.
async fn open_links_count_a_device_and_an_address(backend: Backend) {
    let app = spawn_with(backend, "").await;
    let mut body = invite_body();
    merge(
        &mut body,
        json!({ "inviter": { "id": "alice" }, "max_uses": 3 }),
    );
    body["invitee"].as_object_mut().unwrap().remove("email");
    body["invitee"]
        .as_object_mut()
        .unwrap()
        .remove("first_name");
    body["invitee"].as_object_mut().unwrap().remove("last_name");
    let token = app.create_token_as(ACME_KEY, &body).await;
    let join = |email: &str, device_n: usize| json!({ "token": token, "email": email, "first_name": "A", "last_name": "B", "device_id": device(device_n) });
    // Twenty addresses from one device at once: exactly three get in.
    let bodies: Vec<_> = (0..20)
        .map(|i| join(&format!("p{i}@example.org"), 1))
        .collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|b| app.redeem(b))).await;
    let granted: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(granted.len(), 3, "one device, twenty addresses");
    assert!(
        replies
            .iter()
            .filter(|r| r.status != 200)
            .all(|r| r.code() == "exhausted")
    );
    // Each admitted pair re-enters; the same device with a fourth address does not.
    let first = granted[0].body["participant"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = app.redeem(&join(&first, 1)).await;
    assert_eq!((again.status, &again.body["reentry"]), (200, &json!(true)));
    assert_eq!(
        app.redeem(&join("new@example.org", 1)).await.code(),
        "exhausted"
    );
    // The grant says the address is self-declared, under a `sub` of its own.
    let claims = verify_grant(
        &app.state.live().grant_keys,
        "invitetomedia",
        &["acme-platform"],
        0,
        again.body["grant"].as_str().unwrap(),
    )
    .unwrap();
    assert!(!claims.bound && !claims.email_verified);
    let invited = EmailAddress::parse(&first).unwrap();
    assert_eq!(claims.sub, participant_id("acme", &invited, true));
    assert_ne!(claims.sub, participant_id("acme", &invited, false));
}

on_every_backend!(open_links_count_a_device_and_an_address);
