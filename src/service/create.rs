//! `POST /v1/invites`: validate, authorise, mint. Creating a link needs no store, so it keeps
//! working while Redis is down.

use serde::{Deserialize, Serialize};

use super::rfc3339;
use crate::domain::invite::{FieldErrors, display_text, identifier};
use crate::domain::{
    EmailAddress, EntryPermission, InviteeRole, Inviter, MediaType, PlatformRole, UseLimit,
};
use crate::email::{Message, TemplateValues};
use crate::error::ApiError;
use crate::state::{AppState, Live, Tenant};
use crate::store::{UseStore, unix_now};
use crate::tokens::{
    InviteClaims, InvitePersonalData, MAX_TOKEN_LEN, invite, random_id, sha256_hex,
};

/// The create request. Every field is optional here so that a missing one is a 422 naming it;
/// a value of the wrong JSON type (`null` included) is a 400 and an unknown field a 422
/// (`routes::Body`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// The media entry.
    #[serde(default, deserialize_with = "crate::routes::object")]
    pub media: Option<MediaIn>,
    /// Who invites.
    #[serde(default, deserialize_with = "crate::routes::object")]
    pub inviter: Option<InviterIn>,
    /// Who is invited, and as what.
    #[serde(default, deserialize_with = "crate::routes::object")]
    pub invitee: Option<InviteeIn>,
    /// Link lifetime; at most `LinkDuration`.
    #[serde(default, deserialize_with = "crate::routes::integer")]
    pub duration_minutes: Option<i64>,
    /// Use limit; at most `LinkReusability`.
    #[serde(default, deserialize_with = "crate::routes::integer")]
    pub max_uses: Option<i64>,
    /// Send the invite by email.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub send_email: Option<bool>,
    /// Email language.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub language: Option<String>,
    /// When the link opens, RFC 3339; omitted or past: now.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub starts_at: Option<String>,
}

/// `media` of a create request.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaIn {
    /// Entry id.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub id: Option<String>,
    /// Media type.
    #[serde(rename = "type")]
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub kind: Option<String>,
    /// Entry title.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub title: Option<String>,
}

/// `inviter` of a create request.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InviterIn {
    /// User id.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub name: Option<String>,
    /// Platform role.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub role: Option<String>,
    /// Group ids.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub groups: Option<Vec<String>>,
    /// Permission on the entry.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub permission: Option<String>,
}

/// `invitee` of a create request.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InviteeIn {
    /// Invited address; omitted for an open link.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub email: Option<String>,
    /// First name.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub last_name: Option<String>,
    /// Role on the entry.
    #[serde(default, deserialize_with = "crate::routes::non_null")]
    pub role: Option<String>,
}

/// What became of the invite email.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EmailStatus {
    /// `sent`, `failed` or `not_requested`.
    pub status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl EmailStatus {
    /// No email was asked for.
    pub fn not_requested() -> Self {
        Self {
            status: "not_requested",
            detail: None,
        }
    }

    /// The relay accepted the message.
    pub fn sent() -> Self {
        Self {
            status: "sent",
            detail: None,
        }
    }

    /// The message could not be sent; the link is still valid.
    pub fn failed(detail: impl Into<String>) -> Self {
        Self {
            status: "failed",
            detail: Some(detail.into()),
        }
    }
}

/// 201 body of a create.
#[derive(Debug, Serialize)]
pub struct CreatedInvite {
    /// Invite id (`jti`).
    pub id: String,
    /// `{public_base_url}/i/{token}`.
    pub url: String,
    /// The token itself.
    pub token: String,
    /// Media entry id.
    pub media_id: String,
    /// Invitee role.
    pub role: InviteeRole,
    /// Use limit, `-1` unlimited.
    pub max_uses: i64,
    /// When the link opens (`nbf`), RFC 3339.
    pub starts_at: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// Email outcome.
    pub email: EmailStatus,
}

/// How long an `Idempotency-Key` is remembered: 24 hours.
const IDEMPOTENCY_SECONDS: i64 = 24 * 3600;

/// What is remembered of a create under its `Idempotency-Key`: the request's digest, the link
/// it made (a repeat mints a token for the same link: same id, times, uses, revocation) and,
/// once known, what became of its email.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    /// SHA-256 of the request body as parsed, hex.
    body: String,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    /// `sent`, `failed` or `not_requested`, once the first request knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

impl Remembered {
    /// The email status a repeat answers: the first request's, once it is known.
    fn email_status(&self) -> EmailStatus {
        match self.email.as_deref() {
            Some("sent") => EmailStatus::sent(),
            Some("failed") => EmailStatus::failed(
                "the email of the first request with this Idempotency-Key could not be sent",
            ),
            Some(_) => EmailStatus::not_requested(),
            None => EmailStatus {
                status: "not_requested",
                detail: Some(
                    "the first request with this Idempotency-Key is sending the email".to_owned(),
                ),
            },
        }
    }
}

/// A create request that passed validation.
#[derive(Debug)]
struct NewInvite {
    media_id: String,
    media_type: MediaType,
    inviter: Inviter,
    role: InviteeRole,
    email: Option<EmailAddress>,
    personal: InvitePersonalData,
    duration_minutes: u32,
    max: UseLimit,
    send_email: bool,
    language: Option<String>,
    /// When the link opens, unix seconds, when given (may be past: then now).
    starts_at: Option<i64>,
}

/// Creates an invite link for `tenant`. With an `Idempotency-Key` (already checked), a repeat
/// of the same request within 24 hours answers the same link and sends no second email; the
/// same key with another body is 409.
pub async fn create(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    request: CreateInviteRequest,
    idempotency_key: Option<&str>,
) -> Result<CreatedInvite, ApiError> {
    let module = &tenant.module;
    if !module.enable {
        return Err(ApiError::ModuleDisabled);
    }
    // The body as parsed, so a repeat with its keys in another order is the same request.
    let body =
        idempotency_key.map(|_| sha256_hex(&serde_json::to_vec(&request).unwrap_or_default()));
    let new = validate(tenant, request)?;
    module.authorize(&new.inviter, new.role)?;
    if new.email.as_ref().is_some_and(|e| module.is_restricted(e)) {
        return Err(ApiError::RestrictedDomain);
    }
    if new.send_email && !module.email_enabled() {
        return Err(ApiError::EmailDisabled);
    }

    let now = unix_now();
    let nbf = new.starts_at.map_or(now, |start| start.max(now));
    let link = Remembered {
        body: body.unwrap_or_default(),
        jti: random_id(),
        iat: now,
        nbf,
        exp: nbf + i64::from(new.duration_minutes) * 60,
        email: None,
    };
    // Minted before anything is remembered: a link too long to use is refused, never recorded.
    let token = mint(live, tenant, &new, &link)?;
    if let Some(key) = idempotency_key {
        let store_key = sha256_hex(key.as_bytes());
        let record = serde_json::to_string(&link).unwrap_or_default();
        let found = state
            .timed(
                "idempotency",
                state
                    .store
                    .remember(&tenant.id, &store_key, &record, IDEMPOTENCY_SECONDS),
            )
            .await?;
        let Some(found) = found else {
            // The first request with this key.
            return finish(state, live, tenant, new, link, token, Some(store_key)).await;
        };
        let found: Remembered = serde_json::from_str(&found)
            .map_err(|e| ApiError::Internal(format!("unreadable idempotency record: {e}")))?;
        if found.body != link.body {
            return Err(ApiError::IdempotencyConflict);
        }
        // The same link again: a token of its own, the same id, times, uses and revocation.
        let token = mint(live, tenant, &new, &found)?;
        tracing::info!(tenant = %tenant.id, jti = %found.jti, "invite create repeated (Idempotency-Key)");
        let email = found.email_status();
        let url = link_url(live, &token);
        return Ok(answer(url, new, &found, token, email));
    }
    finish(state, live, tenant, new, link, token, None).await
}

/// Sends the email a new link asks for, records its outcome under the Idempotency-Key (if
/// any), counts the link and answers.
async fn finish(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    new: NewInvite,
    mut link: Remembered,
    token: String,
    idempotency_record: Option<String>,
) -> Result<CreatedInvite, ApiError> {
    let url = link_url(live, &token);
    let email = if new.send_email {
        send_email(state, live, tenant, &new, &url, &link).await
    } else {
        EmailStatus::not_requested()
    };
    if let Some(store_key) = idempotency_record {
        link.email = Some(email.status.to_owned());
        let record = serde_json::to_string(&link).unwrap_or_default();
        let update = state
            .store
            .update_remembered(&tenant.id, &store_key, &record);
        if let Err(e) = state.timed("idempotency", update).await {
            // The link and its email stand; a repeat will say the email is still being sent.
            tracing::warn!(tenant = %tenant.id, jti = %link.jti, error = %e, "email outcome not recorded for the Idempotency-Key");
        }
    }
    state.metrics.invite_created(&tenant.id);
    tracing::info!(tenant = %tenant.id, jti = %link.jti, media_id = %new.media_id, role = %new.role, max_uses = new.max.as_i64(), "invite created");
    Ok(answer(url, new, &link, token, email))
}

/// Mints a token for `link` (its id and times) with the request's claims.
fn mint(
    live: &Live,
    tenant: &Tenant,
    new: &NewInvite,
    link: &Remembered,
) -> Result<String, ApiError> {
    let claims = InviteClaims {
        iss: live.settings.tokens.issuer.clone(),
        aud: InviteClaims::audience_for(&tenant.id),
        jti: link.jti.clone(),
        iat: link.iat,
        nbf: link.nbf,
        exp: link.exp,
        tid: tenant.id.clone(),
        mid: new.media_id.clone(),
        mty: new.media_type.as_str().to_owned(),
        role: new.role.as_str().to_owned(),
        max: new.max.as_i64(),
        inv: new.inviter.id.clone(),
        lng: new.language.clone(),
        pii: String::new(),
    };
    let token = invite::mint(&live.invite_keys, claims, &new.personal)
        .map_err(|e| ApiError::Internal(format!("{e:?}")))?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::invalid(
            "invitee",
            "names and title are too long to fit in a link; shorten them",
        ));
    }
    Ok(token)
}

/// `{public_base_url}/i/{token}`.
pub(crate) fn link_url(live: &Live, token: &str) -> String {
    let base = &live.settings.server.public_base_url;
    let mut url = String::with_capacity(base.len() + 3 + token.len());
    url.push_str(base);
    url.push_str("/i/");
    url.push_str(token);
    url
}

/// The 201 body.
fn answer(
    url: String,
    new: NewInvite,
    link: &Remembered,
    token: String,
    email: EmailStatus,
) -> CreatedInvite {
    CreatedInvite {
        url,
        id: link.jti.clone(),
        token,
        media_id: new.media_id,
        role: new.role,
        max_uses: new.max.as_i64(),
        starts_at: rfc3339(link.nbf),
        expires_at: rfc3339(link.exp),
        email,
    }
}

/// Renders the tenant's template for the invitee and sends it. The link exists whatever
/// happens here: a failure is reported in `email.status`, never as an error.
async fn send_email(
    state: &AppState,
    live: &Live,
    tenant: &Tenant,
    new: &NewInvite,
    url: &str,
    link: &Remembered,
) -> EmailStatus {
    let name = &tenant.module.invite_email_template;
    let Some(template) = live.mailer.template(name) else {
        return EmailStatus::failed(format!("the email template {name:?} is not loaded"));
    };
    let language =
        template.pick_language(new.language.as_deref(), tenant.default_language.as_deref());
    let p = &new.personal;
    let values = TemplateValues {
        url: url.to_owned(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: p.email.clone(),
        title: p.title.clone(),
        inviter: p.inviter_name.clone(),
        role: new.role.as_str().to_owned(),
        starts: link.nbf,
        expires: link.exp,
        code: String::new(),
    };
    let outcome = match template.render(language, &values) {
        Ok(content) => {
            let message = Message {
                to_email: &p.email,
                to_name: format!("{} {}", p.first_name, p.last_name),
                content,
                jti: &link.jti,
            };
            live.mailer.send(&message).await.map_err(|e| e.0)
        }
        Err(problem) => Err(format!(
            "the email template {name:?} could not be rendered: {problem}"
        )),
    };
    let (status, label) = match outcome {
        Ok(()) => (EmailStatus::sent(), "sent"),
        Err(detail) => (EmailStatus::failed(detail), "failed"),
    };
    state.metrics.email(&tenant.id, label);
    status
}

/// Turns the request into a [`NewInvite`], reporting every bad field at once.
fn validate(tenant: &Tenant, request: CreateInviteRequest) -> Result<NewInvite, ApiError> {
    let module = &tenant.module;
    let mut errors = FieldErrors::default();

    let media = request.media.unwrap_or_default();
    let media_id = required_with(&mut errors, "media.id", media.id.as_deref(), identifier);
    let media_type = required_with(&mut errors, "media.type", media.kind.as_deref(), |v| {
        MediaType::parse(v).ok_or("must be one of room, live, video, audio, document, image, quiz")
    });
    let title = optional_with(
        &mut errors,
        "media.title",
        media.title.as_deref(),
        display_text,
    );

    let inviter = request.inviter.unwrap_or_default();
    let inviter_id = required_with(&mut errors, "inviter.id", inviter.id.as_deref(), identifier);
    let inviter_name = optional_with(
        &mut errors,
        "inviter.name",
        inviter.name.as_deref(),
        display_text,
    );
    let inviter_role = required_with(&mut errors, "inviter.role", inviter.role.as_deref(), |v| {
        PlatformRole::parse(v).ok_or("must be one of anonymousRole, viewerRole, privateOnlyRole, adminRole, unmoderatedAdminRole")
    });
    let permission = required_with(
        &mut errors,
        "inviter.permission",
        inviter.permission.as_deref(),
        |v| {
            EntryPermission::parse(v)
                .ok_or("must be one of owner, co_owner, co_editor, co_publisher, co_viewer, none")
        },
    );
    let mut groups = Vec::new();
    for (i, group) in inviter.groups.unwrap_or_default().iter().enumerate() {
        if let Some(g) = errors.check(&format!("inviter.groups[{i}]"), identifier(group)) {
            groups.push(g);
        }
    }

    let invitee = request.invitee.unwrap_or_default();
    let role = required_with(&mut errors, "invitee.role", invitee.role.as_deref(), |v| {
        InviteeRole::parse(v).ok_or("must be one of viewer, speaker, moderator")
    });
    if let (Some(media_type), Some(role)) = (media_type, role)
        && !media_type.offers(role)
    {
        errors.push(
            "invitee.role",
            format!("a {media_type} offers only: {}", role_list(media_type)),
        );
    }
    let email = match invitee.email.as_deref() {
        Some(e) => errors.check("invitee.email", EmailAddress::parse(e)),
        None if module.allow_open_links => None,
        None => {
            errors.push(
                "invitee.email",
                "is required (open links are not enabled for this site)",
            );
            None
        }
    };
    let (first_name, last_name) = if invitee.email.is_some() {
        (
            required_with(
                &mut errors,
                "invitee.first_name",
                invitee.first_name.as_deref(),
                display_text,
            ),
            required_with(
                &mut errors,
                "invitee.last_name",
                invitee.last_name.as_deref(),
                display_text,
            ),
        )
    } else {
        for (field, value) in [
            ("invitee.first_name", &invitee.first_name),
            ("invitee.last_name", &invitee.last_name),
        ] {
            if value.is_some() {
                errors.push(
                    field,
                    "must be omitted on an open link (the participant enters their name)",
                );
            }
        }
        (None, None)
    };

    let starts_at = request
        .starts_at
        .as_deref()
        .and_then(|text| errors.check("starts_at", start_time(text, unix_now())));
    let duration_minutes = errors.check(
        "duration_minutes",
        module.duration_minutes(request.duration_minutes),
    );
    let max = errors.check("max_uses", module.use_limit(request.max_uses));
    let send_email = request.send_email.unwrap_or(false);
    if send_email && invitee.email.is_none() {
        errors.push("send_email", "an open link has no address to send to");
    }
    if let Some(language) = request.language.as_deref() {
        let valid = (2..=35).contains(&language.len())
            && language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            errors.push("language", "must be a language tag such as en or pt-BR");
        }
    }

    let (
        Some(media_id),
        Some(media_type),
        Some(inviter_id),
        Some(inviter_role),
        Some(permission),
        Some(role),
        Some(duration_minutes),
        Some(max),
    ) = (
        media_id,
        media_type,
        inviter_id,
        inviter_role,
        permission,
        role,
        duration_minutes,
        max,
    )
    else {
        return Err(ApiError::InvalidRequest(
            errors.finish().err().unwrap_or_default(),
        ));
    };
    errors.finish().map_err(ApiError::InvalidRequest)?;

    let personal = InvitePersonalData {
        email: email.as_ref().map(ToString::to_string).unwrap_or_default(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        title: title.unwrap_or_default(),
        inviter_name: inviter_name.unwrap_or_default(),
    };
    Ok(NewInvite {
        media_id,
        media_type,
        inviter: Inviter {
            id: inviter_id,
            role: inviter_role,
            groups,
            permission,
        },
        role,
        email,
        personal,
        duration_minutes,
        max,
        send_email,
        language: request.language,
        starts_at,
    })
}

/// The longest a link may be scheduled ahead: 365 days.
const MAX_SCHEDULE_SECONDS: i64 = 365 * 24 * 3600;

/// `starts_at` as unix seconds: an RFC 3339 date-time at most 365 days after `now` (a past one
/// is accepted: the link then opens now).
fn start_time(text: &str, now: i64) -> Result<i64, &'static str> {
    let start = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "must be an RFC 3339 date-time such as 2026-12-03T09:00:00Z")?
        .unix_timestamp();
    if start > now + MAX_SCHEDULE_SECONDS {
        return Err("must be at most 365 days ahead");
    }
    Ok(start)
}

fn required_with<T, E: Into<String>>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    errors
        .require(field, value)
        .and_then(|v| errors.check(field, parse(v)))
}

fn optional_with<T, E: Into<String>>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    value.and_then(|v| errors.check(field, parse(v)))
}

fn role_list(media_type: MediaType) -> String {
    media_type
        .roles()
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
