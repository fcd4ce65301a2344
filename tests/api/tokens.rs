//! Token attacks and time rules, table-driven: each forged or mistimed link fails with the
//! right code and consumes nothing.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use invitetomedia::store::unix_now;
use serde_json::{Value, json};

use crate::helpers::*;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Signs arbitrary header and claims with HS256 and `secret`: a forger who knows the secret
/// (or guesses one) controls every byte.
fn sign_raw(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        message.as_bytes(),
    );
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

pub fn claims(tid: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": "invitetomedia", "aud": format!("invitetomedia:{tid}"), "jti": "forgedforgedforgedforg",
        "iat": now, "nbf": now, "exp": now + 600, "tid": tid, "mid": "1_abc", "mty": "room",
        "role": "moderator", "max": -1, "inv": "prof1", "pii": "AAAA"
    })
}

fn header() -> Value {
    json!({ "typ": "invite+jwt", "alg": "HS256", "kid": "i1" })
}

pub fn with(mut value: Value, changes: Value) -> Value {
    merge(&mut value, changes);
    value
}

#[tokio::test]
async fn forged_and_broken_tokens_fail_closed() {
    let app = spawn_app().await;
    let secret = INVITE_SECRET.as_bytes();
    let real = app.create_token(json!({})).await;
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["role"] = json!("moderator");
    parts[1] = b64(&payload);
    let tampered = parts.join(".");
    let jwks: Value = app.get("/.well-known/jwks.json", None).await.body;
    let grant_public_key = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let unsigned = format!(
        "{}.{}.",
        b64(&with(header(), json!({ "alg": "none" }))),
        b64(&claims("demo"))
    );

    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "alg none, empty signature",
            unsigned.clone(),
            400,
            "malformed_token",
        ),
        (
            "alg none, junk signature",
            format!("{unsigned}AAAA"),
            401,
            "invalid_token",
        ),
        (
            "alg EdDSA on an HS256 kid",
            sign_raw(
                &with(header(), json!({ "alg": "EdDSA" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "HS256 keyed with the public grant key",
            sign_raw(
                &with(header(), json!({ "kid": "g1" })),
                &claims("demo"),
                &grant_public_key,
            ),
            401,
            "invalid_token",
        ),
        (
            "HS256 keyed with the public key, invite kid",
            sign_raw(&header(), &claims("demo"), &grant_public_key),
            401,
            "invalid_token",
        ),
        (
            "unknown kid",
            sign_raw(
                &with(header(), json!({ "kid": "i9" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "no kid",
            sign_raw(
                &with(header(), json!({ "kid": null })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "jku header",
            sign_raw(
                &with(header(), json!({ "jku": "https://evil.test/jwks" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "x5u header",
            sign_raw(
                &with(header(), json!({ "x5u": "https://evil.test/cert" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "wrong typ",
            sign_raw(
                &with(header(), json!({ "typ": "JWT" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "grant typ",
            sign_raw(
                &with(header(), json!({ "typ": "grant+jwt" })),
                &claims("demo"),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "string exp",
            sign_raw(
                &header(),
                &with(claims("demo"), json!({ "exp": "99999999999" })),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "wrong iss",
            sign_raw(
                &header(),
                &with(claims("demo"), json!({ "iss": "someone" })),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "aud of another tenant",
            sign_raw(
                &header(),
                &with(claims("demo"), json!({ "aud": "invitetomedia:acme" })),
                secret,
            ),
            401,
            "invalid_token",
        ),
        (
            "unconfigured tenant",
            sign_raw(&header(), &claims("ghost"), secret),
            401,
            "invalid_token",
        ),
        (
            "missing claim",
            sign_raw(
                &header(),
                &with(claims("demo"), json!({ "max": null })),
                secret,
            ),
            401,
            "invalid_token",
        ),
        ("tampered payload", tampered, 401, "invalid_token"),
        (
            "wrong secret",
            sign_raw(
                &header(),
                &claims("demo"),
                b"another-secret-that-is-long-enough!",
            ),
            401,
            "invalid_token",
        ),
        ("a grant as an invite", String::new(), 401, "invalid_token"),
        ("two segments", "abc.def".to_owned(), 400, "malformed_token"),
        (
            "four segments",
            format!("{real}.abc"),
            400,
            "malformed_token",
        ),
        (
            "not base64url",
            real.replacen('.', ".+", 1),
            400,
            "malformed_token",
        ),
        (
            "over 4 KiB",
            format!(
                "{}.{}.{}",
                "a".repeat(2000),
                "b".repeat(2000),
                "c".repeat(100)
            ),
            400,
            "malformed_token",
        ),
    ];
    let grant = app
        .redeem_as(&app.create_token(json!({})).await, &device(1))
        .await
        .body["grant"]
        .as_str()
        .unwrap()
        .to_owned();
    for (name, token, status, code) in cases {
        let token = if token.is_empty() {
            grant.clone()
        } else {
            token
        };
        let reply = app
            .redeem(&json!({ "token": token, "email": "ada@example.com", "device_id": device(2) }))
            .await;
        assert_eq!((reply.status, reply.code()), (status, code), "{name}");
        let introspected = app.introspect(&token).await;
        assert_eq!(
            introspected.body,
            json!({ "active": false, "state": "invalid" }),
            "{name}"
        );
    }
    assert_eq!(app.introspect(&real).await.body["uses"], 0);
}

#[tokio::test]
async fn time_rules_with_leeway() {
    let app = spawn_app().await;
    let now = unix_now();
    let cases = vec![
        (
            "expired long ago",
            json!({ "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 }),
            410,
            "expired",
        ),
        (
            "expired beyond leeway",
            json!({ "iat": now - 600, "nbf": now - 600, "exp": now - 61 }),
            410,
            "expired",
        ),
        (
            "expired within leeway",
            json!({ "iat": now - 600, "nbf": now - 600, "exp": now - 30 }),
            200,
            "",
        ),
        (
            "not yet valid",
            json!({ "nbf": now + 3600 }),
            403,
            "not_yet_valid",
        ),
        ("nbf within leeway", json!({ "nbf": now + 30 }), 200, ""),
    ];
    for (name, changes, status, code) in cases {
        let token = mint_invite(&app, "demo", changes);
        let reply = app.redeem_as(&token, &device(1)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{name}: {:?}",
            reply.body
        );
    }
}

#[tokio::test]
async fn check_order_is_the_contract() {
    let app = spawn_app().await;
    let now = unix_now();
    let expired = json!({ "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 });
    // Module disabled beats expiry.
    let off = mint_invite(&app, "off", expired.clone());
    let reply = app.redeem_as(&off, &device(1)).await;
    assert_eq!((reply.status, reply.code()), (403, "module_disabled"));
    // Expiry beats a bad request and a wrong email.
    let old = mint_invite(&app, "demo", expired);
    let reply = app
        .redeem(&json!({ "token": old, "email": "eve@example.com", "device_id": "bad" }))
        .await;
    assert_eq!((reply.status, reply.code()), (410, "expired"));
    // not_yet_valid beats expired (a link can be neither; nbf is checked first).
    let future = mint_invite(
        &app,
        "demo",
        json!({ "nbf": now + 3600, "exp": now - 3600 }),
    );
    assert_eq!(
        app.redeem_as(&future, &device(1)).await.code(),
        "not_yet_valid"
    );
    // Email mismatch beats a restricted domain.
    let reply = app
        .redeem(
            &json!({ "token": mint_invite(&app, "demo", json!({})), "email": "x@university.edu" }),
        )
        .await;
    assert_eq!(reply.code(), "email_mismatch");
}

#[tokio::test]
async fn introspection_states() {
    let app = spawn_app().await;
    let now = unix_now();
    let expired = mint_invite(
        &app,
        "demo",
        json!({ "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 }),
    );
    let future = mint_invite(&app, "demo", json!({ "nbf": now + 3600 }));
    let active = mint_invite(&app, "demo", json!({}));
    for (token, state) in [
        (&expired, "expired"),
        (&future, "not_yet_valid"),
        (&active, "active"),
    ] {
        let reply = app.introspect(token).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["state"], state);
        assert_eq!(reply.body["active"], state == "active");
        for field in [
            "id",
            "media_id",
            "media_type",
            "role",
            "uses",
            "max_uses",
            "issued_at",
            "expires_at",
            "inviter_id",
        ] {
            assert!(reply.body.get(field).is_some(), "{state} lacks {field}");
        }
    }
    // Another tenant's key sees an invalid token.
    let reply = app
        .post(
            "/v1/invites/introspect",
            Some(ACME_KEY),
            &json!({ "token": active }),
        )
        .await;
    assert_eq!(reply.body, json!({ "active": false, "state": "invalid" }));
    // Introspection never consumes.
    app.redeem_as(&active, &device(1)).await;
    let reply = app.introspect(&active).await;
    assert_eq!(
        (reply.body["state"].as_str(), reply.body["uses"].as_u64()),
        (Some("exhausted"), Some(1))
    );
}
