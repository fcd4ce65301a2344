//! Invite operations over tokens and the store: what the API routes (and the participant
//! pages) call. Each function applies the product's checks in the order openapi.yaml documents.

pub mod code;
pub mod create;
pub mod inspect;
pub mod redeem;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{InviteeRole, MediaType, UseLimit};
use crate::error::ApiError;
use crate::state::{AppState, Live, Tenant};
use crate::store::{LinkRef, StoreError, unix_now};
use crate::tokens::VerifiedInvite;
use crate::tokens::invite;

/// RFC 3339 UTC timestamp of a unix second.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An invite whose token verified and whose tenant is configured.
#[derive(Debug)]
pub struct Invite<'a> {
    /// The verified token.
    pub token: VerifiedInvite<'a>,
    /// Its tenant.
    pub tenant: Arc<Tenant>,
    /// Media type, parsed.
    pub media_type: MediaType,
    /// Role, parsed.
    pub role: InviteeRole,
    /// Use limit, parsed.
    pub max: UseLimit,
}

impl Invite<'_> {
    /// The store's view of this link: what is kept about it lives its remaining life plus the
    /// leeway, as a relative TTL.
    pub fn link_ref(&self, live: &Live) -> LinkRef<'_> {
        let c = &self.token.claims;
        LinkRef {
            tenant: &c.tid,
            jti: &c.jti,
            media_id: &c.mid,
            inviter_id: &c.inv,
            iat: c.iat,
            max: self.max,
            keep_seconds: (c.exp + live.leeway() - unix_now()).max(1),
            max_attempts: live.settings.security.max_email_attempts,
        }
    }

    /// Whether the link may be used now: `module_disabled`, then `not_yet_valid` / `expired`
    /// with `leeway` seconds.
    pub fn check_usable(&self, leeway: i64) -> Result<(), ApiError> {
        if !self.tenant.module.enable {
            return Err(ApiError::ModuleDisabled);
        }
        self.check_time(unix_now(), leeway)
    }

    /// `not_yet_valid` / `expired` at `now`, with the configured leeway.
    pub fn check_time(&self, now: i64, leeway: i64) -> Result<(), ApiError> {
        let c = &self.token.claims;
        if now + leeway < c.nbf {
            return Err(ApiError::NotYetValid);
        }
        if now - leeway >= c.exp {
            return Err(ApiError::Expired);
        }
        Ok(())
    }
}

/// Verifies a token and finds its tenant: `malformed_token`, then `invalid_token` (signature,
/// kid, alg, typ, iss, aud, unknown tenant, claims of an unknown shape).
pub fn verify_invite<'a>(live: &'a Live, token: &str) -> Result<Invite<'a>, ApiError> {
    let verified = invite::verify(&live.invite_keys, &live.settings.tokens.issuer, token)?;
    let claims = &verified.claims;
    let tenant = live
        .tenant(&claims.tid)
        .cloned()
        .ok_or(ApiError::InvalidToken)?;
    let media_type = MediaType::parse(&claims.mty).ok_or(ApiError::InvalidToken)?;
    let role = InviteeRole::parse(&claims.role).ok_or(ApiError::InvalidToken)?;
    let max = UseLimit::from_i64(claims.max).ok_or(ApiError::InvalidToken)?;
    Ok(Invite {
        token: verified,
        tenant,
        media_type,
        role,
        max,
    })
}

/// Verifies a token and checks it may be used now: `malformed_token`, `invalid_token`,
/// `module_disabled`, `not_yet_valid`, `expired`, in that order.
pub fn open_invite<'a>(live: &'a Live, token: &str) -> Result<Invite<'a>, ApiError> {
    let invite = verify_invite(live, token)?;
    invite.check_usable(live.leeway())?;
    Ok(invite)
}

impl AppState {
    /// Runs a store operation, recording its latency and failure.
    pub async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let result = fut.await;
        self.metrics
            .store_op(op, started.elapsed().as_secs_f64(), result.is_ok());
        result.map_err(ApiError::from)
    }
}
