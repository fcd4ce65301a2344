//! Tenant authentication of platform endpoints: `Authorization: Bearer <api key>`.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::error::ApiError;
use crate::state::{AppState, Tenant};

/// The tenant whose API key authenticated the request.
#[derive(Debug)]
pub struct AuthTenant(pub Arc<Tenant>);

impl FromRequest for AuthTenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tenant = req.app_data::<web::Data<AppState>>().and_then(|state| {
            let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
            let (scheme, key) = header.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
                return None;
            }
            state.tenant_for_api_key(key.trim())
        });
        ready(tenant.map(AuthTenant).ok_or(ApiError::Unauthenticated))
    }
}
