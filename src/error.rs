//! The one API error type, mapped to HTTP status, stable `code` and an RFC 9457 problem
//! document in one place.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::Refusal;
use crate::domain::invite::FieldError;
use crate::store::StoreError;
use crate::tokens::TokenError;

/// Seconds a client should wait before retrying while the store is unavailable.
const STORE_RETRY_AFTER_SECONDS: u32 = 1;

macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every stable `code` the API answers with: the one list, which openapi.yaml's
        /// `ErrorCode` enum must equal (a test compares them as sets).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $code, "`")]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as problem documents spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedRequest => "malformed_request",
    Unauthenticated => "unauthenticated",
    ModuleDisabled => "module_disabled",
    InviterNotAllowed => "inviter_not_allowed",
    NotMediaCollaborator => "not_media_collaborator",
    RoleNotGrantable => "role_not_grantable",
    InvalidRequest => "invalid_request",
    RestrictedDomain => "restricted_domain",
    EmailDisabled => "email_disabled",
    NotFound => "not_found",
    PayloadTooLarge => "payload_too_large",
    MalformedToken => "malformed_token",
    InvalidToken => "invalid_token",
    NotYetValid => "not_yet_valid",
    Expired => "expired",
    Exhausted => "exhausted",
    Revoked => "revoked",
    EmailMismatch => "email_mismatch",
    Locked => "locked",
    CrossSiteRequest => "cross_site_request",
    IdempotencyConflict => "idempotency_conflict",
    CodeRequired => "code_required",
    InvalidCode => "invalid_code",
    EmailFailed => "email_failed",
    RateLimited => "rate_limited",
    StoreUnavailable => "store_unavailable",
    Internal => "internal",
}

/// Every error the API answers with.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not JSON or has a value of the wrong JSON type.
    MalformedRequest(String),
    /// 401: missing or unknown API key.
    Unauthenticated,
    /// 403: the module is off for the tenant.
    ModuleDisabled,
    /// 403: `AllowedUsers` does not include the inviter.
    InviterNotAllowed,
    /// 403: the inviter may not invite to this entry.
    NotMediaCollaborator,
    /// 403: only owners may grant `moderator`.
    RoleNotGrantable,
    /// 422: missing or invalid fields.
    InvalidRequest(Vec<FieldError>),
    /// 422: the invitee's domain signs in through SSO.
    RestrictedDomain,
    /// 422: email was asked for but the tenant has no template.
    EmailDisabled,
    /// 404.
    NotFound,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 400: the token is too long or not a compact JWT.
    MalformedToken,
    /// 401: the token does not verify.
    InvalidToken,
    /// 403: the link is not valid yet.
    NotYetValid,
    /// 409: the `Idempotency-Key` was used with another body.
    IdempotencyConflict,
    /// 410: the link has expired.
    Expired,
    /// 410: every use of the link is taken.
    Exhausted,
    /// 410: the link was revoked.
    Revoked,
    /// 403: the email is not the invited one.
    EmailMismatch,
    /// 410: the link had too many failed attempts (wrong emails) and is locked.
    Locked,
    /// 403: a browser posted the join form from another site.
    CrossSiteRequest,
    /// 403: a device new to the link needs a one-time code (`RequireEmailCode`).
    CodeRequired,
    /// 403: the one-time code is wrong (`Some(tries left)`; 0: now void) or there is no live
    /// code (`None`: none sent, expired, used or voided).
    InvalidCode {
        /// Wrong tries the code still allows, when it was wrong.
        tries_left: Option<u32>,
    },
    /// 502: the email could not be handed to the relay (a one-time code: it was voided).
    EmailFailed,
    /// 429: too many requests from this client.
    RateLimited {
        /// Seconds until a request may succeed.
        retry_after: u32,
    },
    /// 503: the store did not answer; nothing was granted. A redemption's answer names the
    /// device it counted for, so a retry re-enters instead of spending a second use.
    StoreUnavailable {
        /// The redemption's device id, when the request was a redemption.
        device_id: Option<String>,
    },
    /// 500: a bug or an unexpected failure, logged with its cause, opaque to the client.
    Internal(String),
}

/// RFC 9457 problem document with the stable `code`.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The code as a value of the one list of codes.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::MalformedRequest(_) => ErrorCode::MalformedRequest,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::ModuleDisabled => ErrorCode::ModuleDisabled,
            Self::InviterNotAllowed => ErrorCode::InviterNotAllowed,
            Self::NotMediaCollaborator => ErrorCode::NotMediaCollaborator,
            Self::RoleNotGrantable => ErrorCode::RoleNotGrantable,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::RestrictedDomain => ErrorCode::RestrictedDomain,
            Self::EmailDisabled => ErrorCode::EmailDisabled,
            Self::NotFound => ErrorCode::NotFound,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::MalformedToken => ErrorCode::MalformedToken,
            Self::InvalidToken => ErrorCode::InvalidToken,
            Self::NotYetValid => ErrorCode::NotYetValid,
            Self::Expired => ErrorCode::Expired,
            Self::Exhausted => ErrorCode::Exhausted,
            Self::Revoked => ErrorCode::Revoked,
            Self::EmailMismatch => ErrorCode::EmailMismatch,
            Self::Locked => ErrorCode::Locked,
            Self::CrossSiteRequest => ErrorCode::CrossSiteRequest,
            Self::CodeRequired => ErrorCode::CodeRequired,
            Self::InvalidCode { .. } => ErrorCode::InvalidCode,
            Self::EmailFailed => ErrorCode::EmailFailed,
            Self::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::StoreUnavailable { .. } => ErrorCode::StoreUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Short human title.
    pub fn title(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "Malformed request",
            Self::Unauthenticated => "Authentication required",
            Self::ModuleDisabled => "Invitations are turned off",
            Self::InviterNotAllowed => "Not allowed to invite",
            Self::NotMediaCollaborator => "Not a collaborator of this media",
            Self::RoleNotGrantable => "Role cannot be granted",
            Self::InvalidRequest(_) => "Invalid request",
            Self::RestrictedDomain => "Domain signs in through SSO",
            Self::EmailDisabled => "Email cannot be sent",
            Self::NotFound => "Not found",
            Self::PayloadTooLarge => "Request body too large",
            Self::MalformedToken => "Malformed link",
            Self::InvalidToken => "Invalid link",
            Self::NotYetValid => "Link not valid yet",
            Self::Expired => "Link expired",
            Self::Exhausted => "Link used up",
            Self::Revoked => "Link revoked",
            Self::EmailMismatch => "Email does not match the invitation",
            Self::Locked => "Link locked",
            Self::CrossSiteRequest => "Request from another site",
            Self::CodeRequired => "Code required",
            Self::InvalidCode { .. } => "Code not valid",
            Self::EmailFailed => "Email not sent",
            Self::IdempotencyConflict => "Idempotency key reused",
            Self::RateLimited { .. } => "Too many requests",
            Self::StoreUnavailable { .. } => "Temporarily unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// What happened, for a developer or a participant.
    pub fn detail(&self) -> String {
        match self {
            Self::MalformedRequest(why) => why.clone(),
            Self::Unauthenticated => "Send the tenant's API key as `Authorization: Bearer <key>`.".into(),
            Self::ModuleDisabled => "The invitetomedia module is not enabled for this site.".into(),
            Self::InviterNotAllowed => "AllowedUsers does not include this user.".into(),
            Self::NotMediaCollaborator => "Only the owner, co-owners, co-editors and co-publishers of an entry may invite.".into(),
            Self::RoleNotGrantable => "Only the owner or a co-owner may invite a moderator.".into(),
            Self::InvalidRequest(_) => "Some fields are missing or invalid; see `errors`.".into(),
            Self::RestrictedDomain => "People of this email domain sign in through the organisation's single sign-on and cannot be invited as new users.".into(),
            Self::EmailDisabled => "No invite email template is configured for this site (inviteEmailTemplate).".into(),
            Self::NotFound => "Nothing here.".into(),
            Self::PayloadTooLarge => "Request bodies are limited to 16 KiB.".into(),
            Self::MalformedToken => "This is not an invitation link.".into(),
            Self::InvalidToken => "This invitation link is not valid.".into(),
            Self::NotYetValid => "This invitation link is not valid yet.".into(),
            Self::Expired => "This invitation link has expired.".into(),
            Self::Exhausted => "This invitation link has already been used.".into(),
            Self::Revoked => "This invitation link has been withdrawn.".into(),
            Self::EmailMismatch => "This invitation was sent to a different email address.".into(),
            Self::Locked => "This invitation link is locked after too many attempts with a wrong email address. Ask the person who invited you for a new one.".into(),
            Self::CrossSiteRequest => "This form can only be sent from the invitation page itself. Open the invitation link and join from there.".into(),
            Self::CodeRequired => "This invitation needs a one-time code sent to the invited address: ask for one, then enter it.".into(),
            Self::InvalidCode { tries_left: None } => "This code has expired or was already used. Ask for a new one.".into(),
            Self::InvalidCode { tries_left: Some(0) } => "This code is not right, and after too many tries it no longer works. Ask for a new one.".into(),
            Self::InvalidCode { tries_left: Some(1) } => "This code is not right. One try left.".into(),
            Self::InvalidCode { tries_left: Some(n) } => format!("This code is not right. {n} tries left."),
            Self::EmailFailed => "The email could not be sent right now; try again in a moment.".into(),
            Self::IdempotencyConflict => "This Idempotency-Key was used within the last 24 hours with a different request body: use a new key for a new request.".into(),
            Self::RateLimited { .. } => "Too many requests; try again shortly.".into(),
            Self::StoreUnavailable { .. } => "The service cannot check this link right now; try again in a moment.".into(),
            Self::Internal(_) => "Something went wrong on our side.".into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedRequest(_) | Self::MalformedToken => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::ModuleDisabled
            | Self::InviterNotAllowed
            | Self::NotMediaCollaborator
            | Self::RoleNotGrantable
            | Self::NotYetValid
            | Self::EmailMismatch
            | Self::CrossSiteRequest
            | Self::CodeRequired
            | Self::InvalidCode { .. } => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) | Self::RestrictedDomain | Self::EmailDisabled => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::IdempotencyConflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Expired | Self::Exhausted | Self::Revoked | Self::Locked => StatusCode::GONE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::EmailFailed => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidRequest(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// The `Retry-After` value, for errors that have one.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::StoreUnavailable { .. } => Some(STORE_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "internal error");
        }
        let problem = Problem {
            kind: format!("urn:invitetomedia:problem:{}", self.code()),
            title: self.title(),
            status: self.status().as_u16(),
            detail: self.detail(),
            code: self.code(),
            errors: match self {
                Self::InvalidRequest(errors) => Some(errors),
                _ => None,
            },
            device_id: match self {
                Self::StoreUnavailable { device_id } => device_id.as_deref(),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(self.status());
        response
            .content_type("application/problem+json")
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Malformed => Self::MalformedToken,
            TokenError::Invalid(reason) => {
                tracing::debug!(reason, "token refused");
                Self::InvalidToken
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::warn!(cause = %err, "store unavailable");
        Self::StoreUnavailable { device_id: None }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::InviterNotAllowed => Self::InviterNotAllowed,
            Refusal::NotMediaCollaborator => Self::NotMediaCollaborator,
            Refusal::RoleNotGrantable => Self::RoleNotGrantable,
        }
    }
}
