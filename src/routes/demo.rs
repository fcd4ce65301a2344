//! `/demo/accept` (development only; 404 in production): stands in for the platform, verifying
//! a posted grant through the service's own keys and showing what the platform would open.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::Current;
use crate::error::ApiError;
use crate::pages::{self, Page};
use crate::tokens::verify_grant;

/// The posted grant.
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    grant: Option<String>,
}

/// `GET /demo/accept`: what this page is for.
pub async fn info(live: Current) -> Result<HttpResponse, ApiError> {
    if live.0.settings.is_production() {
        return Err(ApiError::NotFound);
    }
    let mut page = Page::new("demo", "Demo platform");
    page.message = Some("The invite pages post grants here when the demo tenant is used. Open an invite link to try it.".to_owned());
    Ok(pages::respond(StatusCode::OK, None, &page))
}

/// `POST /demo/accept`: verify the grant and show it.
pub async fn accept(live: Current, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let state = &live.0;
    if state.settings.is_production() {
        return Err(ApiError::NotFound);
    }
    // Read as a form whatever its Content-Type, like the join form: 400 when it is not one.
    let form: GrantForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::MalformedRequest(format!("The form could not be read: {e}")))?;
    let audiences: Vec<&str> = state
        .tenants
        .values()
        .map(|t| t.grant_audience.as_str())
        .collect();
    let grant = form.grant.as_deref().unwrap_or_default();
    let verified = verify_grant(
        &state.grant_keys,
        &state.settings.tokens.issuer,
        &audiences,
        state.leeway() as u64,
        grant,
    );
    let Ok(claims) = verified else {
        let mut page = Page::new("invalid_token", "Grant refused");
        page.message = Some("The grant did not verify against the published keys.".to_owned());
        return Ok(pages::respond(StatusCode::UNAUTHORIZED, None, &page));
    };
    let tenant = state.tenant(&claims.tid).cloned();
    let mut page = Page::new("accepted", "Access granted");
    page.message = Some("The platform would now open this entry for this participant.".to_owned());
    page.facts = [
        ("Media id", &claims.mid, "media_id"),
        ("Media type", &claims.mty, "media_type"),
        ("Role", &claims.role, "role"),
        ("Name", &claims.name, "name"),
        ("Email", &claims.email, "email"),
        ("Participant id", &claims.sub, "participant_id"),
    ]
    .into_iter()
    .map(|(label, value, field)| (label.to_owned(), value.clone(), field.to_owned()))
    .collect();
    Ok(pages::respond(StatusCode::OK, tenant.as_deref(), &page))
}
