//! 授权 (grants) on resources.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use citydata_core::grants::NewGrantInput;
use citydata_store::GrantRecord;
use serde_json::{Value, json};

/// The JSON of a grant, with its state (`pending`, `active`, `expired`, `revoked`).
pub fn grant_view(g: &GrantRecord) -> Value {
    let now = Utc::now();
    let state = if g.revoked_at.is_some() {
        "revoked"
    } else if g.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if g.valid_from > now {
        "pending"
    } else {
        "active"
    };
    json!({
        "id": g.id,
        "resource_id": g.resource_id,
        "grantee": { g.grantee_kind.clone(): g.grantee },
        "fields": g.fields,
        "row_filter": g.row_filter,
        "masks": g.masks,
        "purpose": g.purpose,
        "valid_from": g.valid_from,
        "expires_at": g.expires_at,
        "granted_by": g.granted_by,
        "created_at": g.created_at,
        "revoked_at": g.revoked_at,
        "revoked_by": g.revoked_by,
        "state": state,
    })
}

/// Grant a department (or a public user) a scope of a resource: items, a row filter, masks,
/// a period (stewards of the provider department).
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = NewGrantInput,
    responses((status = 201, body = Object), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewGrantInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let g = state.core.create_grant(&meta, &p, &input).await?;
    Ok((StatusCode::CREATED, Json(grant_view(&g))))
}

/// Grants on my departments' resources and to my departments or me (admins: all).
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants",
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_grants(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<Value>>, ApiError> {
    Ok(Json(state.core.list_grants(&p).await?.iter().map(grant_view).collect()))
}

/// Revoke a grant; reads under it stop at once (`grant_revoked`).
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "grants", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(grant_view(&state.core.revoke_grant(&meta, &p, &id).await?)))
}
