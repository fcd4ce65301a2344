//! `POST /v1/redeem`: public; consumes a use. `POST /v1/redeem/code`: public; sends a one-time
//! code to the invited address. Open to browsers of the configured origins (CORS);
//! the optional per-client rate limit runs before it, as middleware (`routes::rate_limit`).

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{Error, HttpRequest, HttpResponse, web};

use super::Body;
use super::auth::Current;
use crate::error::ApiError;
use crate::service::code::{CodeRequest, send_code};
use crate::service::redeem::{RedeemRequest, redeem as redeem_link};
use crate::state::AppState;

/// Redeems a link for a grant.
#[tracing::instrument(skip_all)]
pub async fn redeem(
    state: web::Data<AppState>,
    live: Current,
    Body(body): Body<RedeemRequest>,
) -> Result<HttpResponse, ApiError> {
    let redeemed = redeem_link(&state, &live.0, body).await?;
    Ok(HttpResponse::Ok().json(redeemed))
}

/// Sends a one-time code for a link to its invited address.
#[tracing::instrument(skip_all)]
pub async fn code(
    state: web::Data<AppState>,
    live: Current,
    Body(body): Body<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let sent = send_code(&state, &live.0, body).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

/// The request's `Origin` when CORS allows it.
fn allowed_origin(state: &AppState, req: &HttpRequest) -> Option<HeaderValue> {
    let origins = &state.cors_allowed_origins;
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    origins
        .iter()
        .any(|o| o.trim_end_matches('/') == text)
        .then(|| origin.clone())
}

/// CORS preflight of `POST /v1/redeem` and `POST /v1/redeem/code`: allowed origins get the headers, others nothing.
pub async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    response.insert_header((header::VARY, "Origin"));
    if let Some(origin) = allowed_origin(&state, &req) {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    }
    response.finish()
}

/// Adds `Access-Control-Allow-Origin` to every answer of the resource (errors included, so a
/// browser can read why a redemption failed) when the origin is allowed.
pub fn cors<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let origin = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| allowed_origin(state, req.request()));
    let call = srv.call(req);
    async move {
        let mut response = call.await?;
        if let Some(origin) = origin {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        Ok(response)
    }
}
