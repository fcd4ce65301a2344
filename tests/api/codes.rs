//! One-time codes (SPEC §5): `POST /v1/redeem/code`, redemption with a `code`, moving a used-up
//! link to a new device, and `RequireEmailCode` — through the real app, with a real HTTP relay
//! catching the code emails, on every backend.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::on_every_backend;

/// `replicas` apps sharing one store (one app on the memory store, which replicas cannot
/// share), sending email through the relay at `relay_url`, with `extra` TOML.
async fn apps(backend: Backend, replicas: usize, relay_url: &str, extra: &str) -> Vec<TestApp> {
    let prefix = format!("c{}", &invitetomedia::tokens::random_id()[..8]);
    let url = if backend == Backend::Redis {
        shared_redis().url()
    } else {
        "redis://127.0.0.1:1".to_owned()
    };
    let extra = format!("{extra}\n{}", relay_toml(relay_url));
    let toml = test_toml(backend, &url, &prefix, &extra);
    let count = if backend == Backend::Memory {
        1
    } else {
        replicas
    };
    let mut apps = Vec::new();
    for _ in 0..count {
        apps.push(spawn_configured(&toml).await);
    }
    apps
}

/// Asks for a code for `token` as `email`.
async fn ask_code(app: &TestApp, token: &str, email: &str) -> Reply {
    app.post(
        "/v1/redeem/code",
        None,
        &json!({ "token": token, "email": email }),
    )
    .await
}

/// The code of the last message the relay received, and its recipient.
fn last_code(relay: &Relay) -> (String, String) {
    let received = relay.received.lock().unwrap();
    let (_, message) = received.last().expect("the relay received a message");
    let subject = message["subject"].as_str().unwrap();
    let code = subject[subject.len() - 6..].to_owned();
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{subject}");
    let text = message["text"].as_str().unwrap();
    assert!(text.contains(&code) && message["html"].as_str().unwrap().contains(&code));
    (code, message["to"][0]["email"].as_str().unwrap().to_owned())
}

/// Redeems `token` from `device` with `code`.
async fn redeem_code(app: &TestApp, token: &str, device: &str, code: &str) -> Reply {
    app.redeem(
        &json!({ "token": token, "email": "ada@example.com", "device_id": device, "code": code }),
    )
    .await
}

/// The claims of a grant, unverified (the grant tests verify signatures).
fn grant_claims(reply: &Reply) -> Value {
    let grant = reply.body["grant"].as_str().unwrap();
    let payload = grant.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn a_code_moves_a_single_use_link_to_another_device(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let app = apps(backend, 1, &url, "").await.remove(0);
    let created = app.create(&invite_body()).await.body;
    let token = created["token"].as_str().unwrap();
    let laptop = app.redeem_as(token, &device(1)).await;
    assert_eq!(
        (laptop.status, laptop.body["moved"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(app.redeem_as(token, &device(2)).await.code(), "exhausted");

    // The phone asks for a code; it goes to the invited address, typed in another case.
    let sent = ask_code(&app, token, "ADA@example.com").await;
    assert_eq!(
        (sent.status, sent.body["sent"].as_bool()),
        (202, Some(true)),
        "{:?}",
        sent.body
    );
    assert!(sent.body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        sent.body.as_object().unwrap().len(),
        2,
        "the answer never holds the code"
    );
    let (code, to) = last_code(&relay);
    assert_eq!(to, "ada@example.com");

    let phone = redeem_code(&app, token, &device(2), &code).await;
    assert_eq!(phone.status, 200, "{:?}", phone.body);
    assert_eq!(phone.body["moved"], true);
    assert_eq!(phone.body["reentry"], false);
    assert_eq!(phone.body["invite"]["uses"], 1);
    assert_eq!(phone.body["participant"]["email_verified"], true);
    let claims = grant_claims(&phone);
    assert_eq!(
        (
            claims["email_verified"].as_bool(),
            claims["bound"].as_bool()
        ),
        (Some(true), Some(true))
    );

    // The laptop lost its place; the phone re-enters without a code; the code worked once.
    assert_eq!(app.redeem_as(token, &device(1)).await.code(), "exhausted");
    let again = app.redeem_as(token, &device(2)).await;
    assert_eq!(
        (again.status, again.body["reentry"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        again.body["participant"]["email_verified"], false,
        "no code this time"
    );
    let reused = redeem_code(&app, token, &device(3), &code).await;
    assert_eq!((reused.status, reused.code()), (403, "invalid_code"));
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/invites/{id}"), Some(DEMO_KEY))
            .await
            .body["uses"],
        1
    );
}

async fn codes_are_refused_when_wrong_used_or_too_many(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let app = apps(backend, 1, &url, "[security]\nmax_email_attempts = 3")
        .await
        .remove(0);
    let token = app.create_token(json!({})).await;
    assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    let (code, _) = last_code(&relay);
    let wrong = if code == "000000" { "000001" } else { "000000" };

    // Five wrong tries: each says how many are left, the fifth voids the code.
    for left in [4, 3, 2, 1, 0] {
        let reply = redeem_code(&app, &token, &device(1), wrong).await;
        assert_eq!((reply.status, reply.code()), (403, "invalid_code"));
        let detail = reply.body["detail"].as_str().unwrap().to_owned();
        match left {
            0 => assert!(detail.contains("no longer works"), "{detail}"),
            1 => assert!(detail.contains("One try left"), "{detail}"),
            n => assert!(detail.contains(&format!("{n} tries left")), "{detail}"),
        }
    }
    let voided = redeem_code(&app, &token, &device(1), &code).await;
    assert_eq!(
        voided.code(),
        "invalid_code",
        "the right code after the code was voided"
    );
    assert!(
        voided.body["detail"]
            .as_str()
            .unwrap()
            .contains("expired or was already used")
    );
    // Wrong codes never counted toward the email lock, and consumed nothing.
    assert_eq!(app.introspect(&token).await.body["state"], "active");

    // A new code replaces the previous one.
    assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    let (first, _) = last_code(&relay);
    assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    let (second, _) = last_code(&relay);
    if first != second {
        assert_eq!(
            redeem_code(&app, &token, &device(1), &first).await.code(),
            "invalid_code"
        );
    }
    // Five codes per link per hour: the sixth is 429 with Retry-After, and nothing is sent.
    for _ in 0..2 {
        assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    }
    let before = relay.received.lock().unwrap().len();
    let limited = ask_code(&app, &token, "ada@example.com").await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    let retry: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(relay.received.lock().unwrap().len(), before);
    // The last code sent still works.
    let (last, _) = last_code(&relay);
    let ok = redeem_code(&app, &token, &device(1), &last).await;
    assert_eq!(
        (
            ok.status,
            ok.body["participant"]["email_verified"].as_bool()
        ),
        (200, Some(true))
    );
}

async fn codes_are_worthless_anywhere_else(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let app = apps(backend, 1, &url, "[security]\nmax_email_attempts = 2")
        .await
        .remove(0);
    let token = app.create_token(json!({})).await;
    let other = app.create_token(json!({})).await;
    assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    let (code, _) = last_code(&relay);
    // On another link.
    assert_eq!(
        redeem_code(&app, &other, &device(1), &code).await.code(),
        "invalid_code"
    );
    // With a malformed code: a field error, before any store step.
    let malformed = redeem_code(&app, &token, &device(1), "12345").await;
    assert_eq!(
        (
            malformed.status,
            malformed.body["errors"][0]["field"].as_str()
        ),
        (422, Some("code"))
    );
    // A mismatched address gets no code, counts a failed attempt, and the lock applies.
    let sent = relay.received.lock().unwrap().len();
    assert_eq!(
        ask_code(&app, &token, "eve@example.com").await.code(),
        "email_mismatch"
    );
    assert_eq!(
        ask_code(&app, &token, "eve@example.com").await.code(),
        "email_mismatch"
    );
    assert_eq!(
        ask_code(&app, &token, "ada@example.com").await.code(),
        "locked"
    );
    assert_eq!(
        redeem_code(&app, &token, &device(1), &code).await.code(),
        "locked"
    );
    assert_eq!(relay.received.lock().unwrap().len(), sent);
    // A revoked link refuses a valid code and sends none.
    assert_eq!(ask_code(&app, &other, "ada@example.com").await.status, 202);
    let (other_code, _) = last_code(&relay);
    let revoked = app
        .post(
            "/v1/invites/revoke",
            Some(DEMO_KEY),
            &json!({ "token": other }),
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(
        redeem_code(&app, &other, &device(1), &other_code)
            .await
            .code(),
        "revoked"
    );
    assert_eq!(
        ask_code(&app, &other, "ada@example.com").await.code(),
        "revoked"
    );
    // Every message went to the invited address.
    for (_, message) in relay.received.lock().unwrap().iter() {
        assert_eq!(message["to"][0]["email"], "ada@example.com");
    }
}

async fn open_links_have_no_codes(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let app = apps(backend, 1, &url, "").await.remove(0);
    let mut body = invite_body();
    body["invitee"] = json!({ "role": "viewer" });
    let token = app.create_token_as(ACME_KEY, &body).await;
    let asked = ask_code(&app, &token, "grace@example.org").await;
    assert_eq!(
        (asked.status, asked.body["errors"][0]["field"].as_str()),
        (422, Some("token"))
    );
    let join = json!({ "token": token, "email": "grace@example.org", "first_name": "Grace", "last_name": "Hopper", "code": "123456" });
    assert_eq!(app.redeem(&join).await.code(), "invalid_code");
    assert!(relay.received.lock().unwrap().is_empty());
}

async fn require_email_code_admits_each_new_device_with_a_code(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let extra = "[tenants.demo.invitetomedia]\nRequireEmailCode = true\nLinkReusability = 3";
    let app = apps(backend, 1, &url, extra).await.remove(0);
    let created = app.create(&with_max_uses(3)).await.body;
    let token = created["token"].as_str().unwrap();
    let refused = app.redeem_as(token, &device(1)).await;
    assert_eq!((refused.status, refused.code()), (403, "code_required"));
    assert_eq!(
        app.introspect(token).await.body["uses"],
        0,
        "nothing consumed"
    );

    assert_eq!(ask_code(&app, token, "ada@example.com").await.status, 202);
    let (code, _) = last_code(&relay);
    let admitted = redeem_code(&app, token, &device(1), &code).await;
    assert_eq!(admitted.status, 200);
    assert_eq!(
        (
            admitted.body["moved"].as_bool(),
            admitted.body["participant"]["email_verified"].as_bool()
        ),
        (Some(false), Some(true))
    );
    // The device that got in re-enters without a code, still verified; a new one needs a code.
    let reentry = app.redeem_as(token, &device(1)).await;
    assert_eq!(reentry.status, 200);
    assert_eq!(
        (
            reentry.body["reentry"].as_bool(),
            grant_claims(&reentry)["email_verified"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        app.redeem_as(token, &device(2)).await.code(),
        "code_required"
    );
    let settings = app.get("/v1/settings", Some(DEMO_KEY)).await.body;
    assert_eq!(settings["invitetomedia"]["RequireEmailCode"], true);
    assert_eq!(settings["invitetomedia"]["codeEmailTemplate"], "code");
}

/// A create body for `max` uses.
fn with_max_uses(max: i64) -> Value {
    let mut body = invite_body();
    body["max_uses"] = json!(max);
    body
}

async fn concurrent_moves_never_pass_the_limit(backend: Backend) {
    let (relay, url) = start_relay(&[]).await;
    let apps = apps(
        backend,
        3,
        &url,
        "[tenants.demo.invitetomedia]\nLinkReusability = 3",
    )
    .await;
    let created = apps[0].create(&with_max_uses(3)).await.body;
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        assert_eq!(
            apps[n % apps.len()]
                .redeem_as(&token, &device(n))
                .await
                .status,
            200
        );
    }
    let mut moved_devices = Vec::new();
    for round in 0..3 {
        assert_eq!(
            ask_code(&apps[round % apps.len()], &token, "ada@example.com")
                .await
                .status,
            202
        );
        let (code, _) = last_code(&relay);
        // Twenty new devices race with the one valid code across the replicas.
        let mut tasks = JoinSet::new();
        for i in 0..20 {
            let app = &apps[i % apps.len()];
            let (client, address, token, code) = (
                app.client.clone(),
                app.address.clone(),
                token.clone(),
                code.clone(),
            );
            let device = device(100 + round * 20 + i);
            tasks.spawn(async move {
                let body = json!({ "token": token, "email": "ada@example.com", "device_id": device, "code": code });
                let reply = post_json(&client, &format!("{address}/v1/redeem"), None, &body).await;
                (reply.status, reply.code().to_owned(), reply.body["moved"].as_bool(), device)
            });
        }
        let mut moves = 0;
        while let Some(outcome) = tasks.join_next().await {
            match outcome.unwrap() {
                (200, _, Some(true), device) => {
                    moves += 1;
                    moved_devices.push(device);
                }
                (403, code, _, _) if code == "invalid_code" => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(moves, 1, "one code, one move");
        let state = apps[0]
            .get(&format!("/v1/invites/{id}"), Some(DEMO_KEY))
            .await
            .body;
        assert_eq!(state["uses"], 3, "the device count never passes max_uses");
    }
    // The devices that moved in are among the three.
    for device in &moved_devices[moved_devices.len() - 1..] {
        let again = apps[0].redeem_as(&token, device).await;
        assert_eq!(
            (again.status, again.body["reentry"].as_bool()),
            (200, Some(true))
        );
    }
}

async fn a_failed_code_email_leaves_no_code(backend: Backend) {
    // The relay refuses the first message (4xx is not retried), then accepts.
    let (relay, url) = start_relay(&[Act::Status(400)]).await;
    let app = apps(backend, 1, &url, "").await.remove(0);
    let token = app.create_token(json!({})).await;
    let failed = ask_code(&app, &token, "ada@example.com").await;
    assert_eq!((failed.status, failed.code()), (502, "email_failed"));
    let (voided, _) = last_code(&relay);
    let reply = redeem_code(&app, &token, &device(1), &voided).await;
    assert_eq!(
        reply.code(),
        "invalid_code",
        "the code nobody received was voided"
    );
    assert_eq!(ask_code(&app, &token, "ada@example.com").await.status, 202);
    let (code, _) = last_code(&relay);
    assert_eq!(
        redeem_code(&app, &token, &device(1), &code).await.status,
        200
    );
}

on_every_backend!(
    a_code_moves_a_single_use_link_to_another_device,
    codes_are_refused_when_wrong_used_or_too_many,
    codes_are_worthless_anywhere_else,
    open_links_have_no_codes,
    require_email_code_admits_each_new_device_with_a_code,
    concurrent_moves_never_pass_the_limit,
    a_failed_code_email_leaves_no_code,
);

#[tokio::test]
async fn a_code_template_must_exist_where_codes_are_needed() {
    // Required (RequireEmailCode, or invite emails sent): start-up fails naming the key.
    for extra in [
        "[tenants.demo.invitetomedia]\nRequireEmailCode = true\ncodeEmailTemplate = \"nosuch\"",
        "[tenants.demo.invitetomedia]\ncodeEmailTemplate = \"nosuch\"",
    ] {
        let err = startup_error(extra).await;
        assert!(
            err.contains("tenants.demo.invitetomedia.codeEmailTemplate")
                && err.contains("nosuch.toml"),
            "{err}"
        );
    }
    // Not required (acme sends no invite email): codes are unavailable, 422 email_disabled.
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "x", "");
    let overrides = Overrides::new().set("tenants.acme.invitetomedia.codeEmailTemplate", "nosuch");
    let app = spawn_overridden(&toml, &overrides).await;
    let token = app.create_token_as(ACME_KEY, &invite_body()).await;
    let reply = ask_code(&app, &token, "ada@example.com").await;
    assert_eq!((reply.status, reply.code()), (422, "email_disabled"));
}

/// The landing page's code flow without a browser: the offer under `RequireEmailCode`, the
/// code page, a wrong code, and the hourly limit, each explained on the page.
#[tokio::test]
async fn the_landing_page_offers_sends_and_takes_codes() {
    let (relay, url) = start_relay(&[]).await;
    let app = apps(
        Backend::Memory,
        1,
        &url,
        "[tenants.demo.invitetomedia]\nRequireEmailCode = true",
    )
    .await
    .remove(0);
    let token = app.create_token(json!({})).await;
    let page = |status: u16, text: &str, code: &str| {
        assert!(
            text.contains(&format!("data-code=\"{code}\"")),
            "{status} {text}"
        );
    };
    let link = format!("{}/i/{token}", app.address);
    let offer = app.client.get(&link).send().await.unwrap();
    assert_eq!(offer.status(), 200);
    let text = offer.text().await.unwrap();
    page(200, &text, "active");
    assert!(
        text.contains("name=\"action\" value=\"send_code\""),
        "{text}"
    );
    assert!(
        !text.contains("id=\"code\""),
        "no code field before a code is sent"
    );

    let post = |fields: Vec<(&'static str, String)>| {
        let request = app.client.post(&link).form(&fields);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let send = || {
        vec![
            ("email", "ada@example.com".to_owned()),
            ("action", "send_code".to_owned()),
        ]
    };
    let (status, text) = post(send()).await;
    assert_eq!(status, 200);
    page(status, &text, "code_sent");
    assert!(
        text.contains("autocomplete=\"one-time-code\"") && text.contains("inputmode=\"numeric\"")
    );
    let (code, _) = last_code(&relay);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, text) = post(vec![
        ("email", "ada@example.com".to_owned()),
        ("code", wrong.to_owned()),
    ])
    .await;
    assert_eq!(status, 403);
    page(status, &text, "invalid_code");
    assert!(
        text.contains("Tries left: 4.") && text.contains("id=\"code\""),
        "{text}"
    );
    // Joining without a code from a new browser: 403 code_required with the offer.
    let (status, text) = post(vec![("email", "ada@example.com".to_owned())]).await;
    assert_eq!(status, 403);
    page(status, &text, "code_required");
    assert!(text.contains("value=\"send_code\""));
    for _ in 0..4 {
        assert_eq!(post(send()).await.0, 200);
    }
    let (status, text) = post(send()).await;
    assert_eq!(status, 429);
    assert!(text.contains("most codes allowed"), "{text}");
}
