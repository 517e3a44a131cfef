//! 授权 (grants) on resources.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::grants::{GrantView, NewGrantInput};

/// Grant a department (or a public user) a scope of a resource: items, a row filter, masks,
/// a period (stewards of the provider department).
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = NewGrantInput,
    responses((status = 201, body = GrantView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewGrantInput>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    let g = state.core.create_grant(&meta, &p, &input).await?;
    let view = state.core.grant_views(std::slice::from_ref(&g)).await?.remove(0);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Grants on my departments' resources and to my departments or me (admins: all).
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants",
    responses((status = 200, body = Vec<GrantView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_grants(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<GrantView>>, ApiError> {
    Ok(Json(state.core.grant_views(&state.core.list_grants(&p).await?).await?))
}

/// Why a grant is revoked (optional): told to the grantee and kept in the audit entry.
#[derive(serde::Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeGrant {
    pub reason: Option<String>,
}

/// Revoke a grant; reads under it stop at once (`grant_revoked`). The optional body's reason
/// goes to the grantee's notice and into the audit entry.
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "grants", params(("id" = String, Path)),
    request_body(content = Option<RevokeGrant>, description = "Optional: the reason"),
    responses((status = 200, body = GrantView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: Option<ApiJson<RevokeGrant>>,
) -> Result<Json<GrantView>, ApiError> {
    let reason = body.and_then(|b| b.0.reason);
    Ok(Json(GrantView::from(&state.core.revoke_grant_because(&meta, &p, &id, reason.as_deref()).await?)))
}
