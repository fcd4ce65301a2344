//! `POST /v1/invites`, `POST /v1/invites/introspect`, `POST /v1/invites/revoke`,
//! `DELETE /v1/invites/{id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{AuthTenant, Body};
use crate::domain::invite::idempotency_key;
use crate::error::ApiError;
use crate::service::create::{CreateInviteRequest, create as create_invite};
use crate::service::inspect;
use crate::state::AppState;

/// A body that names a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    token: Option<String>,
}

impl TokenBody {
    fn token(&self) -> Result<&str, ApiError> {
        self.token
            .as_deref()
            .ok_or_else(|| ApiError::invalid("token", "is required"))
    }
}

/// Creates an invite link; `Idempotency-Key` makes a retry answer the same link.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn create(
    req: HttpRequest,
    tenant: AuthTenant,
    state: web::Data<AppState>,
    Body(body): Body<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "must be 1 to 255 visible ASCII characters")
                .and_then(idempotency_key)
                .map_err(|message| ApiError::invalid("Idempotency-Key", message))?,
        ),
    };
    let created = create_invite(&state, &tenant.1, &tenant.0, body, key).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Reports a link's state.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn introspect(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    Body(body): Body<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let report = inspect::introspect(&state, &tenant.1, &tenant.0, body.token()?).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Revokes the link a token names.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn revoke(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    Body(body): Body<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let id = inspect::revoke_token(&state, &tenant.1, &tenant.0, body.token()?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "revoked": true })))
}

/// An invite id from the path: 1..=64 characters of `[A-Za-z0-9_-]` (ours are 22), else 404.
fn invite_id(id: &str) -> Result<&str, ApiError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(id).ok_or(ApiError::NotFound)
}

/// What the store knows of a link by id: uses, revoked, locked.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn get(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = invite_id(&id)?;
    let found = inspect::by_id(&state, &tenant.1, &tenant.0, id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": id,
        "uses": found.uses,
        "revoked": found.revoked,
        "locked": found.locked,
    })))
}

/// Revokes a link by id.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn delete(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = invite_id(&id)?;
    inspect::revoke_id(&state, &tenant.1, &tenant.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
