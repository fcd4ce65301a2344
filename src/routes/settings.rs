//! `GET /v1/settings`: the tenant's effective module settings, for the platform's UI.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};

use super::AuthTenant;
use crate::domain::MediaType;
use crate::error::ApiError;
use crate::state::AppState;

/// The tenant's settings, roles per media type, and whether email can be sent.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn get(tenant: AuthTenant, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = &tenant.0;
    let table = &state
        .settings
        .tenants
        .get(&tenant.id)
        .ok_or(ApiError::NotFound)?
        .invitetomedia;
    let roles: BTreeMap<&str, Vec<&str>> = MediaType::ALL
        .iter()
        .map(|t| (t.as_str(), t.roles().iter().map(|r| r.as_str()).collect()))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tenant": tenant.id,
        "invitetomedia": table,
        "email_enabled": tenant.module.email_enabled(),
        "roles": roles,
    })))
}
