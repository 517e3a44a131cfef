//! `/api/v1/users/{id}/pinned-roles`: a department admin fixes the roles of an account made by
//! an identity provider, so that sign-ins no longer replace them from claims (issue #21).

use super::views::UserView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The roles to pin in the account's department (`dept_admin`, `steward`, `analyst`); an empty
/// list unpins (the provider's claims govern again from the next sign-in).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRolesRequest {
    pub roles: Vec<String>,
}

/// Pin (or unpin) the roles of an account a provider made; its department's admins and
/// platform admins only (404 for anyone else).
#[utoipa::path(put, path = "/api/v1/users/{id}/pinned-roles", tag = "users",
    params(("id" = Uuid, Path)), request_body = PinRolesRequest,
    responses((status = 200, body = UserView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn pin_roles(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PinRolesRequest>,
) -> Result<Json<UserView>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::not_found(format!("没有此统一认证账号：{id} / no such signed-in account: {id}")))?;
    Ok(Json(state.core.pin_oidc_roles(&meta, &p, id, &body.roles).await?.into()))
}
