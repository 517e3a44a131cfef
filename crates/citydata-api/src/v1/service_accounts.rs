//! `/api/v1/service-accounts`: applications' identities, owned by a department (issue #21).

use super::tokens::{CreateTokenRequest, CreatedTokenView};
use super::views::TokenView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::service_accounts::{NewServiceAccountInput, ServiceAccountView};
use uuid::Uuid;

fn account_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::not_found(format!("服务账号不存在：{id} / no such service account: {id}")))
}

/// Service accounts the caller manages (platform admins: all; department admins: their departments').
#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "service-accounts",
    responses((status = 200, body = Vec<ServiceAccountView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<ServiceAccountView>>, ApiError> {
    Ok(Json(state.core.list_service_accounts(&p).await?))
}

/// Create a service account in a department: it holds tokens and cannot log in.
#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service-accounts", request_body = NewServiceAccountInput,
    responses((status = 201, body = ServiceAccountView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewServiceAccountInput>,
) -> Result<(StatusCode, Json<ServiceAccountView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_service_account(&meta, &p, &body).await?)))
}

/// A service account's tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(state.core.list_service_account_tokens(&p, account_id(&id)?).await?))
}

/// Issue a token to a service account, with scopes and optionally a resource list.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = Uuid, Path)), request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedTokenView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedTokenView>), ApiError> {
    let id = account_id(&id)?;
    let t = state.core.create_service_account_token(&meta, &p, id, &body.into()).await?;
    Ok((StatusCode::CREATED, Json(CreatedTokenView { token: t.token, info: t.record })))
}

/// Revoke one of a service account's tokens.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}/tokens/{token_id}", tag = "service-accounts",
    params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = account_id(&id)?;
    let token_id = Uuid::parse_str(&token_id)
        .map_err(|_| ApiError::not_found(format!("令牌不存在：{token_id} / no such token: {token_id}")))?;
    state.core.revoke_service_account_token(&meta, &p, id, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
