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
async fn openapi_document_is_served_and_its_error_codes_are_the_servers() {
    let app = spawn_app().await;
    let (status, text) = app.get_text("/openapi.yaml").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("openapi: 3.1"));
    // Every code the server can answer, and only those: the two lists compared as sets.
    let documented: std::collections::BTreeSet<String> = error_code_enum(&text);
    let served: std::collections::BTreeSet<String> = invitetomedia::error::ErrorCode::ALL
        .iter()
        .map(|code| code.as_str().to_owned())
        .collect();
    assert_eq!(documented, served, "openapi.yaml's ErrorCode enum");
}

/// Every operation of openapi.yaml is routed, and its requests are counted under its own path
/// template, taken from the route the server registered; a path no route matches is `unmatched`.
#[tokio::test]
async fn every_documented_operation_is_routed_and_labelled_by_its_route() {
    let app = spawn_app().await;
    let operations = documented_operations(include_str!("../../openapi.yaml"));
    assert!(operations.len() >= 17, "{operations:?}");
    for (path, method) in &operations {
        let concrete = path
            .replace("{id}", "some-id")
            .replace("{token}", "some.token");
        let request = app.client.request(
            reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            format!("{}{concrete}", app.address),
        );
        let status = request.bearer_auth(DEMO_KEY).send().await.unwrap().status();
        assert_ne!(status.as_u16(), 405, "{method} {path} is not routed");
    }
    app.get("/nowhere/else", None).await;
    let (_, metrics) = app.get_text("/metrics").await;
    for (path, method) in &operations {
        let label = format!("route=\"{path}\",method=\"{}\"", method.to_uppercase());
        assert!(metrics.contains(&label), "no {label} in\n{metrics}");
    }
    assert!(metrics.contains("route=\"unmatched\",method=\"GET\",status=\"404\""));
    assert!(!metrics.contains("some-id") && !metrics.contains("some.token"));
}

/// The (path, method) pairs of openapi.yaml's `paths`.
fn documented_operations(yaml: &str) -> Vec<(String, String)> {
    let paths = yaml
        .split("\npaths:\n")
        .nth(1)
        .expect("openapi.yaml has paths");
    let mut operations = Vec::new();
    let mut current = None;
    for line in paths
        .lines()
        .take_while(|line| !line.starts_with(|c: char| c.is_alphabetic()))
    {
        if let Some(path) = line
            .strip_prefix("  /")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            current = Some(format!("/{path}"));
        } else if let (Some(path), Some(method)) = (&current, line.strip_prefix("    ")) {
            let method = method.trim_end_matches(':');
            if ["get", "post", "delete", "put", "patch", "head", "options"].contains(&method) {
                operations.push((path.clone(), method.to_owned()));
            }
        }
    }
    operations
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
