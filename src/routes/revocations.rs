//! `POST /v1/revocations`: revoke every link of a media entry, of an inviter, or of the tenant,
//! issued up to now.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{AuthTenant, Body};
use crate::domain::invite::identifier;
use crate::error::ApiError;
use crate::service::inspect::revoke_scope;
use crate::service::rfc3339;
use crate::state::AppState;
use crate::store::Scope;

/// The scope to revoke; `{}` is the whole tenant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    media_id: Option<String>,
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    inviter_id: Option<String>,
}

/// Revokes a scope.
#[tracing::instrument(skip_all, fields(tenant = %tenant.0.id))]
pub async fn revoke(
    tenant: AuthTenant,
    state: web::Data<AppState>,
    Body(body): Body<ScopeBody>,
) -> Result<HttpResponse, ApiError> {
    let scope = match (&body.media_id, &body.inviter_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "media_id",
                "give media_id or inviter_id, not both",
            ));
        }
        (Some(id), None) => {
            Scope::Media(identifier(id).map_err(|m| ApiError::invalid("media_id", m))?)
        }
        (None, Some(id)) => {
            Scope::Inviter(identifier(id).map_err(|m| ApiError::invalid("inviter_id", m))?)
        }
        (None, None) => Scope::Tenant,
    };
    let before = revoke_scope(&state, &tenant.1, &tenant.0, &scope).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "scope": scope.name(), "revoked_before": rfc3339(before) })))
}
