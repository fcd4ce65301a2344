//! Introspection and revocation of links by their token, for the tenant that owns them.

use serde::Serialize;

use super::{Invite, rfc3339, verify_invite};
use crate::domain::{InviteeRole, MediaType};
use crate::error::ApiError;
use crate::state::{AppState, Live, Tenant};
use crate::store::{LONGEST_LINK_LIFE_SECONDS, Scope, UseStore, unix_now};

/// 200 body of `POST /v1/invites/introspect`.
#[derive(Debug, Serialize, Default)]
pub struct Introspection {
    /// Whether the link can be redeemed now.
    pub active: bool,
    /// `active`, `expired`, `exhausted`, `revoked`, `locked`, `not_yet_valid` or `invalid`.
    pub state: &'static str,
    /// Invite id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Media entry id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// Media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<InviteeRole>,
    /// Uses recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
    /// Use limit, `-1` unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<i64>,
    /// Issue time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// When the link opens (`nbf`), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// Expiry, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Inviter id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inviter_id: Option<String>,
}

impl Introspection {
    fn invalid() -> Self {
        Self {
            active: false,
            state: "invalid",
            ..Self::default()
        }
    }
}

/// Verifies `token` for `tenant`; a token of another tenant does not verify for it.
fn verify_for<'a>(live: &'a Live, tenant: &Tenant, token: &str) -> Option<Invite<'a>> {
    verify_invite(live, token)
        .ok()
        .filter(|invite| invite.tenant.id == tenant.id)
}

/// Reports a link's state without consuming anything. Precedence: invalid, not_yet_valid,
/// expired, revoked, locked, exhausted, active.
pub async fn introspect(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    token: &str,
) -> Result<Introspection, ApiError> {
    let Some(invite) = verify_for(live, tenant, token) else {
        return Ok(Introspection::invalid());
    };
    let status = state
        .timed("status", state.store.status(&invite.link_ref(live), None))
        .await?;
    let claims = &invite.token.claims;
    let link_state = match invite.check_time(unix_now(), live.leeway()) {
        Err(ApiError::NotYetValid) => "not_yet_valid",
        Err(_) => "expired",
        Ok(()) if status.revoked => "revoked",
        Ok(()) if status.locked => "locked",
        Ok(()) if claims.max >= 1 && status.uses >= claims.max as u64 => "exhausted",
        Ok(()) => "active",
    };
    Ok(Introspection {
        active: link_state == "active",
        state: link_state,
        id: Some(claims.jti.clone()),
        media_id: Some(claims.mid.clone()),
        media_type: Some(invite.media_type),
        role: Some(invite.role),
        uses: Some(status.uses),
        max_uses: Some(claims.max),
        issued_at: Some(rfc3339(claims.iat)),
        starts_at: Some(rfc3339(claims.nbf)),
        expires_at: Some(rfc3339(claims.exp)),
        inviter_id: Some(claims.inv.clone()),
    })
}

/// Revokes the link `token` names; 404 when it does not verify for `tenant`. Returns its id.
pub async fn revoke_token(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    token: &str,
) -> Result<String, ApiError> {
    let invite = verify_for(live, tenant, token).ok_or(ApiError::NotFound)?;
    let claims = &invite.token.claims;
    let keep_seconds = (claims.exp + live.leeway() - unix_now()).max(1);
    state
        .timed(
            "revoke",
            state
                .store
                .revoke_link(&tenant.id, &claims.jti, keep_seconds),
        )
        .await?;
    tracing::info!(tenant = %tenant.id, jti = %claims.jti, "invite revoked");
    Ok(claims.jti.clone())
}

/// What the store knows of a link by id (`GET /v1/invites/{id}`): uses, revoked (by token or
/// id), locked (under the current `security.max_email_attempts`).
pub async fn by_id(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    jti: &str,
) -> Result<crate::store::LinkById, ApiError> {
    let max_attempts = live.settings.security.max_email_attempts;
    state
        .timed("status", state.store.by_id(&tenant.id, jti, max_attempts))
        .await
}

/// Revokes a link by id. Without its token the expiry is unknown, so the marker is kept for
/// the longest life any link can have, whatever `LinkDuration` is now.
pub async fn revoke_id(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    jti: &str,
) -> Result<(), ApiError> {
    state
        .timed(
            "revoke",
            state
                .store
                .revoke_link(&tenant.id, jti, longest_marker_life(live)),
        )
        .await?;
    tracing::info!(tenant = %tenant.id, jti = %jti, "invite revoked by id");
    Ok(())
}

/// Revokes every link of `scope` issued up to this second. The marker is kept for the longest
/// life any link can have, whatever `LinkDuration` is now (a link made under a longer one
/// must stay revoked). Returns the effective moment.
pub async fn revoke_scope(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    scope: &Scope,
) -> Result<i64, ApiError> {
    let before = state
        .timed(
            "revoke",
            state
                .store
                .revoke_scope(&tenant.id, scope, unix_now(), longest_marker_life(live)),
        )
        .await?;
    tracing::info!(tenant = %tenant.id, scope = scope.name(), "scope revoked");
    Ok(before)
}

/// Seconds a marker by id or by scope lives: the longest link life plus the leeway.
fn longest_marker_life(live: &Live) -> i64 {
    LONGEST_LINK_LIFE_SECONDS + live.leeway()
}
