//! The optional per-client rate limit and CORS of the participant endpoints.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::helpers::*;

const LIMITED: &str = "[server.rate_limit]\nrequests_per_second = 0.5\nburst = 3\n";

/// A redemption carrying one `X-Forwarded-For` header line per item (none: no header).
async fn redeem_from(app: &TestApp, forwarded_for: &[&str]) -> Reply {
    let mut headers = HeaderMap::new();
    for line in forwarded_for {
        headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
    }
    let response = app
        .client
        .post(format!("{}/v1/redeem", app.address))
        .headers(headers)
        .json(&json!({ "token": "a.b.c", "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let app = spawn_with(Backend::Memory, LIMITED).await;
    for _ in 0..3 {
        assert_eq!(
            redeem_from(&app, &[]).await.status,
            401,
            "within the burst the request is served"
        );
    }
    let limited = redeem_from(&app, &[]).await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    let retry: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // The landing page shares the client's bucket and says so in a page.
    let page = app
        .client
        .get(format!("{}/i/a.b.c", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 429);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-code=\"rate_limited\"")
    );
    // The platform's authenticated API is not limited.
    for _ in 0..5 {
        assert_eq!(app.create(&invite_body()).await.status, 201);
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let untrusted = spawn_with(Backend::Memory, LIMITED).await;
    for i in 0..3 {
        let spoofed = format!("203.0.113.{i}");
        redeem_from(&untrusted, &[spoofed.as_str()]).await;
    }
    assert_eq!(
        redeem_from(&untrusted, &["203.0.113.99"]).await.status,
        429,
        "a spoofed header mints no bucket"
    );

    let behind_proxy = spawn_with(
        Backend::Memory,
        &format!("{LIMITED}trusted_proxies = [\"127.0.0.1\"]\n"),
    )
    .await;
    for _ in 0..3 {
        redeem_from(&behind_proxy, &["203.0.113.1"]).await;
    }
    assert_eq!(
        redeem_from(&behind_proxy, &["203.0.113.1"]).await.status,
        429
    );
    assert_eq!(
        redeem_from(&behind_proxy, &["203.0.113.2"]).await.status,
        401,
        "another client behind the proxy"
    );
}

#[tokio::test]
async fn every_forwarded_for_line_is_read_as_one_list() {
    let app = spawn_with(
        Backend::Memory,
        &format!("{LIMITED}trusted_proxies = [\"127.0.0.1\"]\n"),
    )
    .await;
    // The lines concatenate in order. With three lines the client is on the middle one, so
    // reading the first line alone (6.6.6.6) or the last alone (the proxy) would count
    // another client.
    assert_eq!(
        redeem_from(&app, &["203.0.113.9", "127.0.0.1"])
            .await
            .status,
        401
    );
    for _ in 0..2 {
        assert_eq!(
            redeem_from(&app, &["6.6.6.6", "203.0.113.9", "127.0.0.1"])
                .await
                .status,
            401
        );
    }
    assert_eq!(
        redeem_from(&app, &["203.0.113.9"]).await.status,
        429,
        "on one line or several, the same client"
    );
    assert_eq!(
        redeem_from(&app, &["6.6.6.6"]).await.status,
        401,
        "not the first line alone"
    );
    assert_eq!(
        redeem_from(&app, &[]).await.status,
        401,
        "not the proxy itself"
    );
}

#[tokio::test]
async fn no_limit_unless_configured() {
    let app = spawn_app().await;
    for _ in 0..30 {
        assert_eq!(redeem_from(&app, &[]).await.status, 401);
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/redeem", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_for_configured_origins_only() {
    let toml = test_toml(Backend::Memory, "redis://127.0.0.1:1", "c", "");
    let overrides = Overrides::new().set("server.cors_allowed_origins", "https://app.example");
    let app = spawn_overridden(&toml, &overrides).await;
    let allowed = preflight(&app, "https://app.example").await;
    assert_eq!(allowed.status().as_u16(), 204);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    let other = preflight(&app, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Actual requests, errors included, carry the header for the allowed origin only.
    let token = app.create_token(json!({})).await;
    for (origin, expected) in [
        ("https://app.example", Some("https://app.example")),
        ("https://evil.example", None),
    ] {
        let response = app
            .client
            .post(format!("{}/v1/redeem", app.address))
            .header("origin", origin)
            .json(&json!({ "token": token, "email": "eve@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403);
        let header = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap());
        assert_eq!(header, expected, "{origin}");
    }
    let unconfigured = spawn_app().await;
    assert!(
        preflight(&unconfigured, "https://app.example")
            .await
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
