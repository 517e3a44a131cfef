use super::views::UserView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use citydata_core::accounts::NewUserInput;

/// Users (platform admins: all; department admins: their departments' members).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_users(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(state.core.list_users(&p).await?.into_iter().map(Into::into).collect()))
}

/// Create a user with roles in departments.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserInput,
    responses(
        (status = 201, body = UserView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    ),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewUserInput>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let u = state.core.create_user(&meta, &p, &body).await?;
    Ok((StatusCode::CREATED, Json(u.into())))
}
