//! HTTP routes, one file per endpoint group. Handlers are thin: extract, call `service`,
//! shape the response.

mod auth;
mod body;
mod demo;
mod invites;
mod landing;
mod ops;
mod redeem;
mod revocations;
mod settings;

pub use auth::{AuthTenant, Current};
pub use body::{Body, integer, non_null, object};

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{Error, HttpRequest, Resource, ResponseError, web};

use crate::error::ApiError;
use crate::state::AppState;

/// The label of a route's request metrics: the pattern it is registered under, attached to the
/// route itself (`resource`), so a new route can never be labelled by a stale copy of this
/// table. Requests that match no route carry none and are labelled `unmatched`.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// A resource under `pattern`, labelled with it.
fn resource(pattern: &'static str) -> Resource {
    web::resource(pattern).app_data(RouteLabel(pattern))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/invites").route(web::post().to(invites::create)))
        .service(resource("/v1/invites/introspect").route(web::post().to(invites::introspect)))
        .service(resource("/v1/invites/revoke").route(web::post().to(invites::revoke)))
        .service(
            resource("/v1/invites/{id}")
                .route(web::get().to(invites::get))
                .route(web::delete().to(invites::delete)),
        )
        .service(
            resource("/v1/redeem")
                .route(web::post().to(redeem::redeem))
                .route(web::method(Method::OPTIONS).to(redeem::preflight))
                // The last wrap is the outermost: CORS headers reach 429 answers too.
                .wrap_fn(rate_limit)
                .wrap_fn(redeem::cors),
        )
        .service(
            resource("/v1/redeem/code")
                .route(web::post().to(redeem::code))
                .route(web::method(Method::OPTIONS).to(redeem::preflight))
                .wrap_fn(rate_limit)
                .wrap_fn(redeem::cors),
        )
        .service(resource("/v1/revocations").route(web::post().to(revocations::revoke)))
        .service(resource("/v1/settings").route(web::get().to(settings::get)))
        .service(
            // Every path under /i/ reaches `landing::dispatch` (see there why not a resource);
            // it answers 404 to anything but /i/{token}.
            web::scope("/i")
                .app_data(RouteLabel("/i/{token}"))
                .default_service(web::to(landing::dispatch))
                .wrap_fn(rate_limit),
        )
        .service(
            resource("/demo/accept")
                .route(web::get().to(demo::info))
                .route(web::post().to(demo::accept)),
        )
        .service(resource("/.well-known/jwks.json").route(web::get().to(ops::jwks)))
        .service(resource("/healthz").route(web::get().to(ops::healthz)))
        .service(resource("/healthz/store").route(web::get().to(ops::store_health)))
        .service(resource("/readyz").route(web::get().to(ops::readyz)))
        .service(resource("/metrics").route(web::get().to(ops::metrics)))
        .service(resource("/openapi.yaml").route(web::get().to(ops::openapi)));
}

/// Applies the configured per-client rate limit in front of the participant endpoints (the
/// platform's backend calls from a few addresses and authenticates, so it is not limited). A
/// refused request answers 429 with `Retry-After`: the participant page under `/i/`,
/// problem+json elsewhere. CORS preflights pass: they are cheap, a browser caches them, and a
/// refused one would hide the reason from the page; the request they precede is limited.
fn rate_limit<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let limited = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| refusal(state, req.request()));
    let outcome = match limited {
        None => Ok(srv.call(req)),
        Some(error) => {
            let response = if req.path().starts_with("/i/") {
                let accept = req
                    .headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok());
                landing::status_page(crate::pages::negotiate(accept, None, None), None, &error)
            } else {
                error.error_response()
            };
            Err(req.into_response(response).map_into_right_body())
        }
    };
    async move {
        match outcome {
            Ok(call) => call.await.map(|response| response.map_into_left_body()),
            Err(refused) => Ok(refused),
        }
    }
}

/// Why the configured limit refuses this request, if it does.
fn refusal(state: &AppState, req: &HttpRequest) -> Option<ApiError> {
    let limiter = state.rate_limiter.as_ref()?;
    if *req.method() == Method::OPTIONS {
        return None;
    }
    let peer = req.peer_addr()?.ip();
    let forwarded_for = req
        .headers()
        .get_all(header::X_FORWARDED_FOR)
        .map(HeaderValue::as_bytes);
    let client = limiter.client(peer, forwarded_for);
    limiter
        .check(client.into(), Instant::now())
        .err()
        .map(|retry_after| ApiError::RateLimited { retry_after })
}
