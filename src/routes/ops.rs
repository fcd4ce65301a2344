//! Operations: health, readiness, metrics, JWKS, the OpenAPI document.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use super::auth::Current;
use crate::state::AppState;

/// The committed OpenAPI document.
const OPENAPI: &str = include_str!("../../openapi.yaml");

/// Liveness: the process answers. Depends on nothing.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: the process serves and is not shutting down. Not the store: see
/// [`crate::health`].
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(r#"{"status":"draining"}"#);
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(r#"{"status":"ready"}"#)
}

/// The store as this replica sees it, checked now: for dashboards and alerts.
pub async fn store_health(state: web::Data<AppState>) -> HttpResponse {
    match crate::health::probe(&state).await {
        Some(latency) => HttpResponse::Ok().json(serde_json::json!({
            "store": "up",
            "latency_ms": (latency.as_secs_f64() * 10_000.0).round() / 10.0,
        })),
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({ "store": "down" })),
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render())
}

/// Public grant keys.
pub async fn jwks(live: Current) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(live.0.jwks.clone())
}

/// The OpenAPI document.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/yaml"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(OPENAPI)
}
