//! Tenant authentication of platform endpoints: `Authorization: Bearer <api key>`, and the
//! configuration a request runs with.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::error::ApiError;
use crate::state::{AppState, Live, Tenant};

/// The tenant whose API key authenticated the request, and the configuration it was found in:
/// the handler uses that same configuration throughout, whatever a reload does meanwhile.
#[derive(Debug)]
pub struct AuthTenant(pub Arc<Tenant>, pub Arc<Live>);

impl FromRequest for AuthTenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req.app_data::<web::Data<AppState>>().and_then(|state| {
            let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
            let (scheme, key) = header.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
                return None;
            }
            let live = state.live();
            let tenant = live.tenant_for_api_key(key.trim())?;
            Some(AuthTenant(tenant, live))
        });
        ready(found.ok_or(ApiError::Unauthenticated))
    }
}

/// The configuration now, taken once for a handler that authenticates no tenant.
#[derive(Debug)]
pub struct Current(pub Arc<Live>);

impl FromRequest for Current {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<AppState>>()
                .map(|state| Current(state.live()))
                .ok_or_else(|| ApiError::Internal("no application state".to_owned())),
        )
    }
}
