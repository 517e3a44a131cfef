//! 定时采集: collection sources of a provider department, their runs, run now and abort.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::sources::{RunStarted, RunView, SourceInput, SourcePatch, SourceView};
use serde::Deserialize;
use utoipa::IntoParams;

/// Create a source for a resource of a department you steward: `{"name", "kind": "postgres",
/// "resource_id", "connection": {"url" | "host", "port", "database", "user", "password"},
/// "query" | "table", "mode": "replace" | "upsert", "watermark"?, "deleted"?, "schedule":
/// "0 */6 * * *" | "every 6h" | null}`. Secrets are sealed and never returned; a schedule that
/// does not parse is refused naming its field.
#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", request_body = SourceInput,
    responses((status = 201, body = SourceView, description = "The source, without secrets"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_source(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<SourceInput>,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_source(&meta, &p, input).await?)))
}

/// The sources of the departments I steward (platform admins: all).
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources",
    responses((status = 200, body = Vec<SourceView>), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_sources(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<SourceView>>, ApiError> {
    Ok(Json(state.core.list_sources(&p).await?))
}

/// One source (its stewards only; to anyone else it does not exist).
#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn get_source(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    Ok(Json(state.core.get_source(&p, &id).await?))
}

/// Change a source (the fields given); `"reset_watermark": true` makes the next run read all.
#[utoipa::path(patch, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = String, Path)), request_body = SourcePatch,
    responses((status = 200, body = SourceView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn update_source(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<SourcePatch>,
) -> Result<Json<SourceView>, ApiError> {
    Ok(Json(state.core.update_source(&meta, &p, &id, patch).await?))
}

/// Remove a source and its run history (the data it collected stays).
#[utoipa::path(delete, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn delete_source(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_source(&meta, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a source now: `{"run_id"}` of the queued run (or of the run already under way).
#[utoipa::path(post, path = "/api/v1/sources/{id}/run", tag = "sources", params(("id" = String, Path)),
    responses((status = 202, body = RunStarted), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn run_source(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(state.core.run_source(&meta, &p, &id).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// 1–1000, default 100.
    pub limit: Option<u32>,
}

/// A source's runs, newest first, each with its state and report.
#[utoipa::path(get, path = "/api/v1/sources/{id}/runs", tag = "sources", params(("id" = String, Path), RunsQuery),
    responses((status = 200, body = Vec<RunView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_runs(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    Ok(Json(state.core.source_runs(&p, &id, q.limit.unwrap_or(100)).await?))
}

/// One run: `{"state", "report": {...}}`.
#[utoipa::path(get, path = "/api/v1/sources/{id}/runs/{run_id}", tag = "sources",
    params(("id" = String, Path), ("run_id" = String, Path)),
    responses((status = 200, body = RunView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn get_run(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(state.core.source_run(&p, &id, &run_id).await?))
}

/// Abort a run: a queued one at once, a running one before its commit (nothing is written).
#[utoipa::path(post, path = "/api/v1/runs/{id}/abort", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn abort_run(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(state.core.abort_run(&meta, &p, &id).await?))
}

/// The routes of this module (merged into `v1::router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(run_source))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(abort_run))
}
