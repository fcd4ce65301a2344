//! Redemption: the one operation that consumes a use. Checks run in the order openapi.yaml
//! documents and the first failure answers: `malformed_token`, `invalid_token`,
//! `module_disabled`, `not_yet_valid`, `expired`, `invalid_request`, `locked`,
//! `email_mismatch`, `restricted_domain`, `code_required`, `invalid_code`, `revoked`,
//! `exhausted`. Nothing is consumed unless a grant is returned.
//!
//! A one-time code (SPEC §5) proves the invited inbox: the grant says `email_verified`, a
//! tenant's `RequireEmailCode` is satisfied for this device, and on a link whose uses are all
//! taken by other devices this device takes one's place (`moved`). The code, the lock, the
//! revocations and the use are decided in one atomic store step.
//!
//! A wrong email on an email-bound link counts one failed attempt in the store; at
//! `security.max_email_attempts` the link locks. The lock is read in the same atomic step that
//! records a device, so a redemption with the right email costs no extra store call.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Invite, open_invite, rfc3339};
use crate::domain::invite::{FieldErrors, device_id, display_text};
use crate::domain::{EmailAddress, InviteeRole, MediaType};
use crate::error::ApiError;
use crate::state::{AppState, Live, Tenant};
use crate::store::{
    CodeProof, CodeRedemption, FailedAttempt, LinkRef, Redemption, UseStore, unix_now,
};
use crate::tokens::{GrantClaims, random_id, sign_grant};

/// A redemption request (`POST /v1/redeem`, or the landing page's form with its cookie).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The invite token.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub token: Option<String>,
    /// The participant's email.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub email: Option<String>,
    /// First name (open links).
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub first_name: Option<String>,
    /// Last name (open links).
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub last_name: Option<String>,
    /// The participant's device; generated when absent.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub device_id: Option<String>,
    /// A one-time code sent to the invited address.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub code: Option<String>,
}

/// 200 body of a redemption.
#[derive(Debug, Serialize)]
pub struct Redeemed {
    /// The grant the platform verifies.
    pub grant: String,
    /// When the grant expires, RFC 3339.
    pub grant_expires_at: String,
    /// Where to post the grant.
    pub accept_url: String,
    /// The device this redemption counted for; keep it for free re-entry.
    pub device_id: String,
    /// The device had redeemed this link before; no use was consumed.
    pub reentry: bool,
    /// Every use was taken by other devices and a one-time code moved the link to this one.
    pub moved: bool,
    /// The invite.
    pub invite: InviteView,
    /// The participant.
    pub participant: Participant,
    /// The link's tenant (for the participant pages; not part of the API answer).
    #[serde(skip)]
    pub tenant: Arc<Tenant>,
    /// The media title sealed in the link (for the hand-off page; not part of the API answer).
    #[serde(skip)]
    pub media_title: String,
    /// The link's language (`lng`), for the hand-off page (not part of the API answer).
    #[serde(skip)]
    pub lng: Option<String>,
}

/// The invite as a redemption reports it.
#[derive(Debug, Serialize)]
pub struct InviteView {
    /// Invite id.
    pub id: String,
    /// Media entry id.
    pub media_id: String,
    /// Media type.
    pub media_type: MediaType,
    /// Role granted.
    pub role: InviteeRole,
    /// Uses after this redemption.
    pub uses: u64,
    /// Use limit, `-1` unlimited.
    pub max_uses: i64,
    /// When the link opened (`nbf`), RFC 3339.
    pub starts_at: String,
    /// Link expiry, RFC 3339.
    pub expires_at: String,
}

/// The participant a grant is for.
#[derive(Debug, Serialize)]
pub struct Participant {
    /// Stable id, the grant's `sub` (see [`participant_id`]).
    pub id: String,
    /// Email.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Whether the participant proved the inbox with a one-time code.
    pub email_verified: bool,
}

/// Redeems a link, recording the outcome in metrics and logs.
pub async fn redeem(
    state: &AppState,
    live: &Live,
    mut request: RedeemRequest,
) -> Result<Redeemed, ApiError> {
    // Made before anything can fail, so a 503 can name it: a retry with it re-enters instead
    // of spending a second use if the first attempt did count.
    let device = request.device_id.get_or_insert_with(random_id).clone();
    let mut tenant = None;
    let result = match redeem_checked(state, live, request, &mut tenant).await {
        Err(ApiError::StoreUnavailable { .. }) => Err(ApiError::StoreUnavailable {
            device_id: Some(device),
        }),
        other => other,
    };
    let tenant = tenant.as_ref().map_or("unknown", |t| t.id.as_str());
    match &result {
        Ok(r) => {
            let outcome = match (r.moved, r.reentry) {
                (true, _) => "moved",
                (false, true) => "reentry",
                (false, false) => "granted",
            };
            state.metrics.redemption(tenant, outcome);
            tracing::info!(tenant, jti = %r.invite.id, uses = r.invite.uses, reentry = r.reentry, moved = r.moved, "invite redeemed");
        }
        Err(e) => {
            state.metrics.redemption(tenant, e.code());
            tracing::info!(tenant, code = e.code(), "redemption refused");
        }
    }
    result
}

async fn redeem_checked(
    state: &AppState,
    live: &Live,
    request: RedeemRequest,
    tenant_label: &mut Option<Arc<Tenant>>,
) -> Result<Redeemed, ApiError> {
    let Some(token) = request.token.as_deref() else {
        return Err(ApiError::invalid("token", "is required"));
    };
    let invite = open_invite(live, token)?;
    *tenant_label = Some(Arc::clone(&invite.tenant));
    let personal = invite.token.personal_data()?;

    let mut errors = FieldErrors::default();
    let code = request
        .code
        .as_deref()
        .and_then(|c| errors.check("code", one_time_code(c)));
    let device = request
        .device_id
        .as_deref()
        .and_then(|d| errors.check("device_id", device_id(d)));
    let email = errors
        .require("email", request.email.as_deref())
        .and_then(|e| errors.check("email", EmailAddress::parse(e)));
    let names = if personal.is_open() {
        let first = errors
            .require("first_name", request.first_name.as_deref())
            .and_then(|v| errors.check("first_name", display_text(v)));
        let last = errors
            .require("last_name", request.last_name.as_deref())
            .and_then(|v| errors.check("last_name", display_text(v)));
        first.zip(last)
    } else {
        Some((personal.first_name.clone(), personal.last_name.clone()))
    };
    let (Some(device), Some(email), Some((first_name, last_name))) = (device, email, names) else {
        return Err(ApiError::InvalidRequest(
            errors.finish().err().unwrap_or_default(),
        ));
    };
    // A bad code is the one field error the values above do not show.
    errors.finish().map_err(ApiError::InvalidRequest)?;

    let link = invite.link_ref(live);
    let open = personal.is_open();
    // A bound link's grant carries the invited address as the inviter typed it.
    let email = if open {
        email
    } else {
        let invited = EmailAddress::parse(&personal.email).map_err(|_| ApiError::InvalidToken)?;
        if !invited.same_as(&email) {
            return Err(count_failed_attempt(state, &link).await);
        }
        invited
    };
    if invite.tenant.module.is_restricted(&email) {
        // `locked` outranks `restricted_domain`: one read, on this refusal only.
        let status = state
            .timed("status", state.store.status(&link, None))
            .await?;
        return Err(if status.locked {
            ApiError::Locked
        } else {
            ApiError::RestrictedDomain
        });
    }

    let key = participant_key(&device, &email, open);
    // Codes exist only for email-bound links: one given on an open link is never valid.
    let digest = code.filter(|_| !open).map(|c| invite.token.code_digest(c));
    let proof = match (&digest, code) {
        (Some(digest), _) => Some(CodeProof::Given(digest)),
        (None, Some(_)) => return Err(ApiError::InvalidCode { tries_left: None }),
        (None, None) if !open && invite.tenant.module.require_email_code => Some(CodeProof::Needed),
        (None, None) => None,
    };
    let outcome = match proof {
        None => CodeRedemption::Done(
            state
                .timed("redeem", state.store.redeem(&link, &key))
                .await?,
        ),
        Some(proof) => {
            state
                .timed(
                    "redeem_code",
                    state.store.redeem_with_code(&link, &key, proof),
                )
                .await?
        }
    };
    let (uses, reentry, moved) = match outcome {
        CodeRedemption::Done(Redemption::Admitted { uses, reentry }) => (uses, reentry, false),
        CodeRedemption::Moved { uses } => (uses, false, true),
        CodeRedemption::Done(Redemption::Locked) => return Err(ApiError::Locked),
        CodeRedemption::Done(Redemption::Revoked) => return Err(ApiError::Revoked),
        CodeRedemption::Done(Redemption::Exhausted { .. }) => return Err(ApiError::Exhausted),
        CodeRedemption::CodeRequired => return Err(ApiError::CodeRequired),
        CodeRedemption::WrongCode { tries_left } => {
            return Err(ApiError::InvalidCode {
                tries_left: Some(tries_left),
            });
        }
        CodeRedemption::NoCode => return Err(ApiError::InvalidCode { tries_left: None }),
    };
    let participant = Participant {
        id: participant_id(&invite.tenant.id, &email, open),
        email: email.to_string(),
        first_name,
        last_name,
        // A code proves the inbox; under RequireEmailCode every device the link admitted
        // proved it, so its re-entries say so too.
        email_verified: proof.is_some(),
    };
    let mut redeemed = grant(live, &invite, participant, !open, device, uses, reentry)?;
    redeemed.moved = moved;
    redeemed.media_title = personal.title;
    redeemed.lng.clone_from(&invite.token.claims.lng);
    Ok(redeemed)
}

/// Counts a wrong email against the link: `email_mismatch`, or `locked` when the link was
/// locked already. The attempt that reaches the limit locks the link and is logged.
async fn count_failed_attempt(state: &AppState, link: &LinkRef<'_>) -> ApiError {
    match state.timed("attempt", state.store.fail_attempt(link)).await {
        Ok(FailedAttempt::AlreadyLocked) => ApiError::Locked,
        Ok(FailedAttempt::Counted { attempts }) => {
            if attempts >= u64::from(link.max_attempts) {
                tracing::warn!(
                    tenant = link.tenant,
                    jti = link.jti,
                    attempts,
                    "invite locked after failed attempts"
                );
            }
            ApiError::EmailMismatch
        }
        Err(e) => e,
    }
}

/// Signs the grant for `participant` and shapes the answer. `bound`: the inviter set the
/// address and the participant typed the same.
fn grant(
    live: &Live,
    invite: &Invite<'_>,
    mut participant: Participant,
    bound: bool,
    device: String,
    uses: u64,
    reentry: bool,
) -> Result<Redeemed, ApiError> {
    let claims = &invite.token.claims;
    let tenant = &invite.tenant;
    let now = unix_now();
    let exp = now + live.settings.tokens.grant_ttl_seconds as i64;
    let grant_claims = GrantClaims {
        iss: live.settings.tokens.issuer.clone(),
        aud: tenant.grant_audience.clone(),
        sub: participant.id.clone(),
        jti: random_id(),
        iat: now,
        exp,
        tid: tenant.id.clone(),
        mid: claims.mid.clone(),
        mty: claims.mty.clone(),
        role: claims.role.clone(),
        name: format!("{} {}", participant.first_name, participant.last_name),
        // Lent to the claims and taken back once signed: no copy on the redeem path.
        email: std::mem::take(&mut participant.email),
        iid: claims.jti.clone(),
        bound,
        email_verified: participant.email_verified,
    };
    let grant = sign_grant(&live.grant_keys, &grant_claims)
        .map_err(|e| ApiError::Internal(format!("grant signing: {e:?}")))?;
    participant.email = grant_claims.email;
    Ok(Redeemed {
        grant,
        grant_expires_at: rfc3339(exp),
        accept_url: tenant.accept_url.clone(),
        device_id: device,
        reentry,
        moved: false,
        invite: InviteView {
            id: claims.jti.clone(),
            media_id: claims.mid.clone(),
            media_type: invite.media_type,
            role: invite.role,
            uses,
            max_uses: claims.max,
            starts_at: rfc3339(claims.nbf),
            expires_at: rfc3339(claims.exp),
        },
        participant,
        tenant: Arc::clone(tenant),
        media_title: String::new(),
        lng: None,
    })
}

/// A one-time code as typed: exactly 6 ASCII digits.
pub fn one_time_code(code: &str) -> Result<&str, &'static str> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err("must be the 6 digits of the code")
    }
}

/// The participant id (the grant's `sub`): stable per tenant and address (case-insensitive),
/// the UUIDv5 of `invitetomedia:<tenant>:<email>` on email-bound links and of
/// `invitetomedia:<tenant>:open:<email>` on open links, where the address is self-declared: a
/// platform that maps `sub` to an account can never be led to an invited person's account.
pub fn participant_id(tenant: &str, email: &EmailAddress, open: bool) -> String {
    let space = if open { "open:" } else { "" };
    let name = format!("invitetomedia:{tenant}:{space}{}", email.canonical());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

/// What counts as one use in the store: the device on an email-bound link; on an open link the
/// device and the address, so one device cannot mint grants for any number of identities
/// without each taking a use.
fn participant_key<'a>(device: &'a str, email: &EmailAddress, open: bool) -> Cow<'a, str> {
    if open {
        // A unit separator cannot occur in a device id ([A-Za-z0-9_-]).
        Cow::Owned(format!("{device}\u{1f}{}", email.canonical()))
    } else {
        Cow::Borrowed(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_are_stable_and_case_insensitive() {
        let ada = |text| EmailAddress::parse(text).unwrap();
        let a = participant_id("demo", &ada("Ada@Example.com"), false);
        let b = participant_id("demo", &ada("ada@example.com"), false);
        let c = participant_id("acme", &ada("ada@example.com"), false);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let expected = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            b"invitetomedia:demo:ada@example.com",
        );
        assert_eq!(a, expected.to_string());
        // An open link's self-declared address has a namespace of its own.
        let open = participant_id("demo", &ada("ada@example.com"), true);
        let expected = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            b"invitetomedia:demo:open:ada@example.com",
        );
        assert_eq!(open, expected.to_string());
        assert_ne!(open, a);
    }

    #[test]
    fn on_open_links_a_use_is_a_device_and_an_address() {
        let ada = EmailAddress::parse("Ada@example.com").unwrap();
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        assert_eq!(participant_key("d1", &ada, false), "d1");
        assert_ne!(
            participant_key("d1", &ada, true),
            participant_key("d1", &bob, true)
        );
        assert_eq!(
            participant_key("d1", &ada, true),
            participant_key("d1", &EmailAddress::parse("ada@EXAMPLE.com").unwrap(), true)
        );
    }
}
