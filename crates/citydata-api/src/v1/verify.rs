//! 核验 (verification, "usable but invisible"): match answers under a verification grant.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use citydata_core::verify::{VerifyInput, VerifyResult};

/// Verify records against a resource under a verification grant: per record `match`,
/// `no_match`, `not_found` or `invalid`, and `match`/`mismatch` for the items in `compare` —
/// never a value. Batches up to the grant's `max_batch`; 429 `quota_exhausted` (with
/// `Retry-After` and `details.resets_at`) when the grant's or the user's daily quota is used;
/// 400 `enumeration_suspected` for batches of neighbouring keys.
#[utoipa::path(post, path = "/api/v1/resources/{id}/verify", tag = "data", params(("id" = String, Path)),
    request_body = VerifyInput,
    responses((status = 200, body = VerifyResult), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<VerifyInput>,
) -> Result<Json<VerifyResult>, ApiError> {
    Ok(Json(state.core.verify_records(&meta, &p, &id, &input).await?))
}
