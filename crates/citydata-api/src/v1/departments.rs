use super::views::DepartmentView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::accounts::NewDepartmentInput;

/// All departments (public).
#[utoipa::path(get, path = "/api/v1/departments", tag = "departments",
    responses((status = 200, body = Vec<DepartmentView>)))]
pub async fn list_departments(State(state): State<AppState>) -> Result<Json<Vec<DepartmentView>>, ApiError> {
    Ok(Json(state.core.list_departments().await?.into_iter().map(Into::into).collect()))
}

/// One department by code (public).
#[utoipa::path(get, path = "/api/v1/departments/{code}", tag = "departments",
    params(("code" = String, Path, description = "Department code, e.g. gaj")),
    responses((status = 200, body = DepartmentView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_department(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<DepartmentView>, ApiError> {
    Ok(Json(state.core.get_department(&code).await?.into()))
}

/// Create a department (platform admins).
#[utoipa::path(post, path = "/api/v1/departments", tag = "departments", request_body = NewDepartmentInput,
    responses(
        (status = 201, body = DepartmentView),
        (status = 400, body = ErrorEnvelope, description = "Invalid fields, named in details.fields"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope, description = "The code exists"),
    ),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_department(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewDepartmentInput>,
) -> Result<(StatusCode, Json<DepartmentView>), ApiError> {
    let d = state.core.create_department(&meta, &p, &body).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}
