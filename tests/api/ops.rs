//! Operations endpoints.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let app = spawn_redis_app().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    assert_eq!(app.get("/readyz", None).await.status, 200);
    let missing = app.get("/nowhere", None).await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn jwks_publishes_the_grant_key_only() {
    let app = spawn_app().await;
    let reply = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(reply.status, 200);
    let keys = reply.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    for (field, value) in [
        ("kty", "OKP"),
        ("crv", "Ed25519"),
        ("kid", "g1"),
        ("use", "sig"),
        ("alg", "EdDSA"),
    ] {
        assert_eq!(key[field], Value::from(value), "{field}");
    }
    assert!(key.get("d").is_none() && key.get("k").is_none());
    let text = app.get_text("/.well-known/jwks.json").await.1;
    assert!(!text.contains(INVITE_SECRET));
}

#[tokio::test]
async fn metrics_count_requests_invites_and_redemptions() {
    let app = spawn_app().await;
    let token = app.create_token(serde_json::json!({})).await;
    app.redeem_as(&token, &device(1)).await;
    app.redeem_as(&token, &device(2)).await;
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "invitetomedia_invites_created_total{tenant=\"demo\"} 1",
        "invitetomedia_redemptions_total{tenant=\"demo\",outcome=\"granted\"} 1",
        "invitetomedia_redemptions_total{tenant=\"demo\",outcome=\"exhausted\"} 1",
        "invitetomedia_http_requests_total{route=\"/v1/redeem\",method=\"POST\",status=\"200\"} 1",
        "invitetomedia_store_operation_duration_seconds_bucket{le=",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(&token[..20]), "no token in metrics");
}

#[tokio::test]
async fn openapi_document_is_served_and_covers_every_route() {
    let app = spawn_app().await;
    let (status, text) = app.get_text("/openapi.yaml").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("openapi: 3.1"));
    for path in [
        "/v1/invites:",
        "/v1/redeem:",
        "/v1/invites/introspect:",
        "/v1/invites/revoke:",
        "/v1/invites/{id}:",
        "/v1/revocations:",
        "/v1/settings:",
        "/.well-known/jwks.json:",
        "/healthz:",
        "/healthz/store:",
        "/readyz:",
        "/metrics:",
        "/openapi.yaml:",
    ] {
        assert!(text.contains(path), "openapi.yaml lacks {path}");
    }
    // Every code the server can answer, and only those: the two lists compared as sets.
    let documented: std::collections::BTreeSet<String> = error_code_enum(&text);
    let served: std::collections::BTreeSet<String> = invitetomedia::error::ErrorCode::ALL
        .iter()
        .map(|code| code.as_str().to_owned())
        .collect();
    assert_eq!(documented, served, "openapi.yaml's ErrorCode enum");
}

/// The members of `components.schemas.ErrorCode.enum` in openapi.yaml.
fn error_code_enum(yaml: &str) -> std::collections::BTreeSet<String> {
    let block = yaml
        .split("\n    ErrorCode:\n")
        .nth(1)
        .expect("openapi.yaml defines ErrorCode");
    let list = block.split_once("enum:\n").expect("ErrorCode is an enum").1;
    list.lines()
        .map_while(|line| line.trim().strip_prefix("- "))
        .map(|code| code.trim().to_owned())
        .collect()
}
