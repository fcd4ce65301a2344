//! `GET /v1/settings`: the tenant's effective module settings, for the platform's UI.

use std::collections::BTreeMap;

use actix_web::HttpResponse;

use super::AuthTenant;
use crate::domain::MediaType;
use crate::error::ApiError;

/// The tenant's settings, roles per media type, and whether email can be sent.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn get(tenant: AuthTenant) -> Result<HttpResponse, ApiError> {
    let tenant = &tenant.0;
    let roles: BTreeMap<&str, Vec<&str>> = MediaType::ALL
        .iter()
        .map(|t| (t.as_str(), t.roles().iter().map(|r| r.as_str()).collect()))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tenant": tenant.id,
        "revision": tenant.revision,
        "invitetomedia": tenant.module,
        "email_enabled": tenant.module.email_enabled(),
        "roles": roles,
    })))
}
