//! `/api/v1/sharing/profiles`: a recipient's Delta Sharing profiles (共享凭证).

use super::views::TokenView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProfileRequest {
    /// What the profile is for, e.g. `pandas`.
    pub name: String,
    /// Lifetime in days (default 90).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// The Delta Sharing profile file, as a client reads it (`delta_sharing.SharingClient`).
#[derive(Serialize, ToSchema)]
pub struct ProfileFile {
    #[serde(rename = "shareCredentialsVersion")]
    pub share_credentials_version: i32,
    /// `<base>/delta-sharing`.
    pub endpoint: String,
    /// The bearer token, shown only now.
    #[serde(rename = "bearerToken")]
    pub bearer_token: String,
    /// When the token expires (RFC 3339).
    #[serde(rename = "expirationTime")]
    pub expiration_time: Option<String>,
}

/// Create a Delta Sharing profile for the caller; the answer is the profile file itself.
#[utoipa::path(post, path = "/api/v1/sharing/profiles", tag = "sharing", request_body = CreateProfileRequest,
    responses((status = 201, body = ProfileFile), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateProfileRequest>,
) -> Result<(StatusCode, Json<ProfileFile>), ApiError> {
    let created = state.core.create_sharing_profile(&meta, &p, &body.name, body.expires_in_days).await?;
    Ok((StatusCode::CREATED, Json(profile_file(&state, &headers, created.token, created.record.expires_at))))
}

/// The profile file for `token` (also used by the console's download).
pub fn profile_file(
    state: &AppState,
    headers: &HeaderMap,
    token: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> ProfileFile {
    ProfileFile {
        share_credentials_version: 1,
        endpoint: format!("{}/delta-sharing", state.base_url(headers)),
        bearer_token: token,
        expiration_time: expires_at.map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

/// The caller's profiles (never their tokens).
#[utoipa::path(get, path = "/api/v1/sharing/profiles", tag = "sharing",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_profiles(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.core.list_sharing_profiles(&p).await?))
}

/// Revoke one of the caller's profiles: its token is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/sharing/profiles/{id}", tag = "sharing",
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn revoke_profile(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::not_found(format!("共享凭证不存在：{id} / no such sharing profile: {id}")))?;
    state.core.revoke_sharing_profile(&meta, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
