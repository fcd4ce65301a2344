//! `POST /v1/invites`, `POST /v1/invites/introspect`, `POST /v1/invites/revoke`,
//! `DELETE /v1/invites/{id}`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AuthTenant;
use crate::error::ApiError;
use crate::service::create::{CreateInviteRequest, create as create_invite};
use crate::service::inspect;
use crate::state::AppState;

/// A body that names a token.
#[derive(Debug, Deserialize)]
pub struct TokenBody {
    token: Option<String>,
}

impl TokenBody {
    fn token(&self) -> Result<&str, ApiError> {
        self.token
            .as_deref()
            .ok_or_else(|| ApiError::invalid("token", "is required"))
    }
}

/// Creates an invite link.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn create(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    body: web::Json<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = create_invite(&state, &tenant.1, &tenant.0, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Reports a link's state.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn introspect(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    body: web::Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let report = inspect::introspect(&state, &tenant.1, &tenant.0, body.token()?).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Revokes the link a token names.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn revoke(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    body: web::Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let id = inspect::revoke_token(&state, &tenant.1, &tenant.0, body.token()?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "revoked": true })))
}

/// Revokes a link by id.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn delete(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Invite ids are 22 base64url characters; anything else names no link of ours.
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::NotFound);
    }
    inspect::revoke_id(&state, &tenant.1, &tenant.0, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
