//! `/api/v1/sessions`: one's login sessions, and ending them (issue #21).

use crate::error::ErrorEnvelope;
use crate::extract::{ApiQuery, Auth, Meta};
use crate::{ApiError, AppState, SESSION_COOKIE};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use citydata_core::sessions::SessionView;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Another user's username (platform admins only).
    pub user: Option<String>,
}

/// The caller's live sessions (client, browser, last use), most recent first; platform admins
/// may name another user.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "auth", params(SessionsQuery),
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(p): Auth,
    jar: CookieJar,
    ApiQuery(q): ApiQuery<SessionsQuery>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let cookie = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    Ok(Json(state.core.list_sessions(&p, q.user.as_deref(), cookie.as_deref()).await?))
}

/// End a session: one's own, or any user's for a platform admin.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "auth", params(("id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn end_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.end_session(&meta, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EndedView {
    pub ended: u64,
}

/// End every session of the caller except the current one (sign out everywhere else).
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "auth",
    responses((status = 200, body = EndedView), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn end_other_sessions(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    jar: CookieJar,
) -> Result<Json<EndedView>, ApiError> {
    let cookie = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    let ended = state.core.end_other_sessions(&meta, &p, cookie.as_deref()).await?;
    Ok(Json(EndedView { ended }))
}
