//! `POST /v1/redeem`: public; consumes a use.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::service::redeem::{RedeemRequest, redeem as redeem_link};
use crate::state::AppState;

/// Redeems a link for a grant.
#[tracing::instrument(skip_all)]
pub async fn redeem(
    state: web::Data<AppState>,
    body: web::Json<RedeemRequest>,
) -> Result<HttpResponse, ApiError> {
    let redeemed = redeem_link(&state, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(redeemed))
}
