//! `POST /v1/redeem/code`: a one-time code for an email-bound link, sent to the invited address
//! (SPEC §5). Checks, in order: `malformed_token`, `invalid_token`, `module_disabled`,
//! `not_yet_valid`, `expired`, `invalid_request` (an open link, a missing or invalid email),
//! `email_disabled` (no code template), `locked`, `email_mismatch` (counted as a failed
//! attempt), `revoked`, `rate_limited` (5 codes per link per hour). A link used up by other
//! devices is not refused: that is where a code helps.
//!
//! The code is 6 digits from the system's CSPRNG; the store keeps only its keyed digest
//! (`VerifiedInvite::code_digest`). It is never logged, counted in metrics or answered.

use serde::{Deserialize, Serialize};

use super::create::link_url;
use super::{open_invite, rfc3339};
use crate::domain::EmailAddress;
use crate::domain::invite::FieldErrors;
use crate::email::{Message, TemplateValues};
use crate::error::ApiError;
use crate::state::{AppState, Live};
use crate::store::{CodeIssue, FailedAttempt, UseStore, unix_now};
use crate::tokens::keyring::random_bytes;

/// The request: the link and the address the participant says it was sent to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The invite token.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub token: Option<String>,
    /// The invited address.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub email: Option<String>,
}

/// 202 body.
#[derive(Debug, Serialize)]
pub struct CodeSent {
    /// Always true: the relay accepted the message.
    pub sent: bool,
    /// When the code stops working, RFC 3339.
    pub expires_at: String,
}

/// Six decimal digits, uniformly drawn from the CSPRNG (draws past the last whole million of
/// `u32` are thrown away, so no code is likelier than another).
pub fn new_code() -> String {
    const LIMIT: u32 = u32::MAX - u32::MAX % 1_000_000;
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        if n < LIMIT {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Sends a code, recording the outcome in metrics (never the code).
pub async fn send_code(
    state: &AppState,
    live: &Live,
    request: CodeRequest,
) -> Result<CodeSent, ApiError> {
    let Some(token) = request.token.as_deref() else {
        return Err(ApiError::invalid("token", "is required"));
    };
    let invite = open_invite(live, token)?;
    let tenant = &invite.tenant;
    let personal = invite.token.personal_data()?;
    if personal.is_open() {
        return Err(ApiError::invalid(
            "token",
            "one-time codes are for links bound to an email address",
        ));
    }
    let mut errors = FieldErrors::default();
    let email = errors
        .require("email", request.email.as_deref())
        .and_then(|e| errors.check("email", EmailAddress::parse(e)));
    let Some(email) = email else {
        return Err(ApiError::InvalidRequest(
            errors.finish().err().unwrap_or_default(),
        ));
    };
    let Some(template) = live.mailer.template(&tenant.module.code_email_template) else {
        return Err(ApiError::EmailDisabled);
    };
    let link = invite.link_ref(live);
    let invited = EmailAddress::parse(&personal.email).map_err(|_| ApiError::InvalidToken)?;
    if !invited.same_as(&email) {
        return Err(
            match state
                .timed("attempt", state.store.fail_attempt(&link))
                .await?
            {
                FailedAttempt::AlreadyLocked => ApiError::Locked,
                FailedAttempt::Counted { .. } => ApiError::EmailMismatch,
            },
        );
    }
    let code = new_code();
    let digest = invite.token.code_digest(&code);
    let seconds = match state
        .timed("issue_code", state.store.issue_code(&link, &digest))
        .await?
    {
        CodeIssue::Issued { seconds } => seconds,
        CodeIssue::TooMany { retry_after } => {
            return Err(ApiError::RateLimited {
                retry_after: u32::try_from(retry_after).unwrap_or(u32::MAX),
            });
        }
        CodeIssue::Revoked => return Err(ApiError::Revoked),
        CodeIssue::Locked => return Err(ApiError::Locked),
    };
    let expires = unix_now() + seconds;
    let claims = &invite.token.claims;
    let language =
        template.pick_language(claims.lng.as_deref(), tenant.default_language.as_deref());
    let values = TemplateValues {
        url: link_url(live, token),
        first_name: personal.first_name.clone(),
        last_name: personal.last_name.clone(),
        email: personal.email.clone(),
        title: personal.title.clone(),
        inviter: personal.inviter_name.clone(),
        role: invite.role.as_str().to_owned(),
        starts: claims.nbf,
        expires,
        code,
    };
    // Always to the invited address, whatever the participant typed.
    let sent = match template.render(language, &values) {
        Ok(content) => {
            let message = Message {
                to_email: &personal.email,
                to_name: format!("{} {}", personal.first_name, personal.last_name),
                content,
                jti: &claims.jti,
            };
            live.mailer.send(&message).await.map_err(|e| e.0)
        }
        Err(problem) => Err(format!(
            "the code template could not be rendered: {problem}"
        )),
    };
    if let Err(cause) = sent {
        state.metrics.email(&tenant.id, "failed");
        tracing::warn!(tenant = %tenant.id, jti = %claims.jti, %cause, "code email not sent; code voided");
        // Nobody can receive this code: it must not stay valid.
        state
            .timed("void_code", state.store.void_code(&link, &digest))
            .await?;
        return Err(ApiError::EmailFailed);
    }
    state.metrics.email(&tenant.id, "sent");
    tracing::info!(tenant = %tenant.id, jti = %claims.jti, "one-time code sent");
    Ok(CodeSent {
        sent: true,
        expires_at: rfc3339(expires),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..1000).map(|_| new_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        // 1000 draws from a million values: a repeat or two at most.
        assert!(codes.len() > 990, "{}", codes.len());
    }
}
