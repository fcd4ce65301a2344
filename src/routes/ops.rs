//! Operations: health, readiness, metrics, JWKS, the OpenAPI document.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::UseStore;

/// The committed OpenAPI document.
const OPENAPI: &str = include_str!("../../openapi.yaml");

/// Liveness: the process answers. Depends on nothing.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: the store answers and the process is not shutting down.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(HttpResponse::ServiceUnavailable()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(r#"{"status":"draining"}"#));
    }
    state.timed("ping", state.store.ping()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(r#"{"status":"ready"}"#))
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render())
}

/// Public grant keys.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(state.jwks.clone())
}

/// The OpenAPI document.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/yaml"))
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .body(OPENAPI)
}
