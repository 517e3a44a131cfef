use super::views::TokenView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. `etl`.
    pub name: String,
    /// Scopes: `catalog:read`, `catalog:write`, `data:read`, `data:write`, `requests`,
    /// `webhooks`, `admin`. Absent: every scope (as tokens were before scopes existed).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Resources (ids or codes) the token is limited to; absent: every resource.
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// Lifetime in days; no expiry when absent.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

impl From<CreateTokenRequest> for citydata_core::tokens::TokenRequest {
    fn from(b: CreateTokenRequest) -> Self {
        Self { name: b.name, scopes: b.scopes, resources: b.resources, expires_in_days: b.expires_in_days }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTokenView {
    /// The secret, shown only now. Send it as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

/// Create an API token acting for the caller, with scopes and optionally a resource list.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedTokenView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedTokenView>), ApiError> {
    let t = state.core.create_scoped_token(&meta, &p, &body.into()).await?;
    Ok((StatusCode::CREATED, Json(CreatedTokenView { token: t.token, info: t.record })))
}

/// The caller's own tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_tokens(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.core.list_tokens(&p).await?))
}

/// Revoke one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::not_found(format!("令牌不存在：{id} / no such token: {id}")))?;
    state.core.revoke_token(&meta, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
