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

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/invites").route(web::post().to(invites::create)))
        .service(web::resource("/v1/invites/introspect").route(web::post().to(invites::introspect)))
        .service(web::resource("/v1/invites/revoke").route(web::post().to(invites::revoke)))
        .service(web::resource("/v1/invites/{id}").route(web::delete().to(invites::delete)))
        .service(web::resource("/v1/redeem").route(web::post().to(redeem::redeem)))
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
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/openapi.yaml").route(web::get().to(ops::openapi)));
}
