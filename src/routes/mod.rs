//! HTTP routes, one file per endpoint group. Handlers are thin: extract, call `service`,
//! shape the response.

mod auth;
mod demo;
mod invites;
mod landing;
mod ops;
mod redeem;
mod revocations;
mod settings;

pub use auth::AuthTenant;

use actix_web::{HttpRequest, web};

use crate::error::ApiError;
use crate::state::AppState;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/invites").route(web::post().to(invites::create)))
        .service(web::resource("/v1/invites/introspect").route(web::post().to(invites::introspect)))
        .service(web::resource("/v1/invites/revoke").route(web::post().to(invites::revoke)))
        .service(web::resource("/v1/invites/{id}").route(web::delete().to(invites::delete)))
        .service(
            web::resource("/v1/redeem")
                .route(web::post().to(redeem::redeem))
                .route(web::method(actix_web::http::Method::OPTIONS).to(redeem::preflight))
                .wrap_fn(redeem::cors),
        )
        .service(web::resource("/v1/revocations").route(web::post().to(revocations::revoke)))
        .service(web::resource("/v1/settings").route(web::get().to(settings::get)))
        .service(web::scope("/i").default_service(web::to(landing::dispatch)))
        .service(
            web::resource("/demo/accept")
                .route(web::get().to(demo::info))
                .route(web::post().to(demo::accept)),
        )
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(ops::jwks)))
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/healthz/store").route(web::get().to(ops::store_health)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/openapi.yaml").route(web::get().to(ops::openapi)));
}

/// Applies the configured per-client rate limit (participant endpoints only: the platform's
/// backend calls from a few addresses and authenticates).
pub fn throttle(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(limiter) = &state.rate_limiter else {
        return Ok(());
    };
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return Ok(());
    };
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    limiter
        .check(limiter.client(peer, forwarded), std::time::Instant::now())
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}
