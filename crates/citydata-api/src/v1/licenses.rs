//! 电子证照核验 (license verification): anyone gives a license number and the holder's name and
//! gets the status and the issuing department with a signed receipt; the receipt key is
//! published here.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use citydata_core::licenses::{LicenseAnswer, LicenseQuery, ReceiptKeyView};

/// Verify a license by number and holder: `valid`, `revoked`, `expired` or `not_found` (an
/// unknown number and a wrong holder answer the same), the issuing department of a found
/// license and a receipt signed with the key at `/api/v1/licenses/receipt-key` — never any
/// other content of the license. Anonymous callers are welcome; 429 `rate_limited` (with
/// `Retry-After`) past the per-address limit, 400 `enumeration_suspected` past 5 numbers a day
/// that differ only in their last 4 characters.
#[utoipa::path(post, path = "/api/v1/licenses/verify", tag = "data", request_body = LicenseQuery,
    responses((status = 200, body = LicenseAnswer), (status = 400, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security((), ("session" = []), ("bearer" = [])))]
pub async fn verify_license(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    ApiJson(q): ApiJson<LicenseQuery>,
) -> Result<Json<LicenseAnswer>, ApiError> {
    Ok(Json(state.core.verify_license(&meta, p.as_ref(), &q).await?))
}

/// The public key that signs license receipts (Ed25519: raw key in base64 and PEM).
#[utoipa::path(get, path = "/api/v1/licenses/receipt-key", tag = "data",
    responses((status = 200, body = ReceiptKeyView)), security(()))]
pub async fn receipt_key(State(state): State<AppState>) -> Json<ReceiptKeyView> {
    Json(state.core.receipt_key_view())
}

/// The public key that signs license receipts as a PEM SubjectPublicKeyInfo.
#[utoipa::path(get, path = "/api/v1/licenses/receipt-key.pem", tag = "data",
    responses((status = 200, body = String, content_type = "application/x-pem-file")), security(()))]
pub async fn receipt_key_pem(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], state.core.receipt_key().public_pem())
}
