//! 数据质量: quality reports per table version, their trend, 纠错 tickets, overdue updates.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, MaybeAuth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::quality::tickets::{NewTicket, TicketStep, TicketView};
use citydata_core::quality::timeliness::OverdueResource;
use citydata_core::quality::{QualityPoint, QualityReport};
use citydata_domain::quality::TicketAction;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QualityQuery {
    /// A table version (default: the newest with a report).
    pub version: Option<i64>,
}

/// The quality report of a table version: score 0–100, the six dimensions (rates 0–1), per
/// item rates and counts, per rule failures. Failing values only for the provider's stewards.
#[utoipa::path(get, path = "/api/v1/resources/{id}/quality", tag = "quality", params(("id" = String, Path), QualityQuery),
    responses((status = 200, body = QualityReport), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn quality(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<QualityQuery>,
) -> Result<Json<QualityReport>, ApiError> {
    Ok(Json(state.core.quality_report(p.as_ref(), &id, q.version).await?))
}

/// The quality trend: score and dimensions of each version with a report, oldest first.
#[utoipa::path(get, path = "/api/v1/resources/{id}/quality/history", tag = "quality", params(("id" = String, Path)),
    responses((status = 200, body = Vec<QualityPoint>), (status = 404, body = ErrorEnvelope)))]
pub async fn quality_history(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<QualityPoint>>, ApiError> {
    Ok(Json(state.core.quality_history(p.as_ref(), &id).await?))
}

/// A resource's 纠错 tickets with their states (reporters shown only to the provider).
#[utoipa::path(get, path = "/api/v1/resources/{id}/tickets", tag = "quality", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TicketView>), (status = 404, body = ErrorEnvelope)))]
pub async fn resource_tickets(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<TicketView>>, ApiError> {
    Ok(Json(state.core.resource_tickets(p.as_ref(), &id).await?))
}

/// File a 纠错 ticket: routed to the provider's stewards, due within the SLA in working days.
#[utoipa::path(post, path = "/api/v1/resources/{id}/tickets", tag = "quality", params(("id" = String, Path)), request_body = NewTicket,
    responses((status = 201, body = TicketView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_ticket(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTicket>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_ticket(&meta, Some(&p), &id, &body, None).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// `submitted`, `accepted`, `rejected`, `fixed`, `confirmed` or `closed`.
    pub state: Option<String>,
    /// Provider department code.
    pub department: Option<String>,
    /// Only tickets waiting for the provider past their due time.
    pub overdue: Option<bool>,
}

/// Tickets the caller answers (as the provider's steward; all for platform admins) or filed.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "quality", params(TicketQuery),
    responses((status = 200, body = Vec<TicketView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_tickets(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<TicketQuery>,
) -> Result<Json<Vec<TicketView>>, ApiError> {
    let v =
        state.core.list_tickets(&p, q.state.as_deref(), q.department.as_deref(), q.overdue.unwrap_or(false)).await?;
    Ok(Json(v))
}

/// One ticket with its history.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "quality", params(("id" = String, Path)),
    responses((status = 200, body = TicketView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_ticket(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(id): Path<String>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(state.core.get_ticket(p.as_ref(), &id).await?))
}

async fn step(
    state: AppState,
    meta: citydata_core::RequestMeta,
    p: citydata_domain::principal::Principal,
    id: String,
    action: TicketAction,
    body: TicketStep,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(state.core.ticket_step(&meta, &p, &id, action, &body).await?))
}

macro_rules! transition {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "quality", params(("id" = String, Path)), request_body = TicketStep,
            responses((status = 200, body = TicketView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
                (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
            security(("session" = []), ("bearer" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            Meta(meta): Meta,
            Auth(p): Auth,
            Path(id): Path<String>,
            ApiJson(body): ApiJson<TicketStep>,
        ) -> Result<Json<TicketView>, ApiError> {
            step(state, meta, p, id, $action, body).await
        }
    };
}

transition!(
    accept_ticket,
    "/api/v1/tickets/{id}/accept",
    TicketAction::Accept,
    "Accept (the provider's stewards): `{}`."
);
transition!(
    reject_ticket,
    "/api/v1/tickets/{id}/reject",
    TicketAction::Reject,
    "Reject with `{\"reason\"}` (the provider's stewards)."
);
transition!(
    fix_ticket,
    "/api/v1/tickets/{id}/fix",
    TicketAction::Fix,
    "Mark fixed with `{\"note\", \"version\"?}` (default: the current table version)."
);
transition!(
    confirm_ticket,
    "/api/v1/tickets/{id}/confirm",
    TicketAction::Confirm,
    "Confirm the fix (the reporter): `{}`."
);
transition!(
    reopen_ticket,
    "/api/v1/tickets/{id}/reopen",
    TicketAction::Reopen,
    "Reopen with `{\"reason\"}` (the reporter)."
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketComment {
    pub body: String,
}

/// Comment on a ticket (the provider's stewards or the reporter).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/comments", tag = "quality", params(("id" = String, Path)), request_body = TicketComment,
    responses((status = 201, body = TicketView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn comment_ticket(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TicketComment>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.comment_ticket(&meta, &p, &id, &body.body).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverdueQuery {
    /// Provider department code.
    pub department: Option<String>,
}

/// Published resources whose update is past due (更新周期 from the last successful commit).
#[utoipa::path(get, path = "/api/v1/quality/overdue", tag = "quality", params(OverdueQuery),
    responses((status = 200, body = Vec<OverdueResource>), (status = 400, body = ErrorEnvelope)))]
pub async fn overdue(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<OverdueQuery>,
) -> Result<Json<Vec<OverdueResource>>, ApiError> {
    Ok(Json(state.core.overdue_resources(p.as_ref(), q.department.as_deref(), chrono::Utc::now()).await?))
}

/// A full profile of the current table version on demand (the provider's stewards): the stored
/// rows run through the rules again; replaces that version's report.
#[utoipa::path(post, path = "/api/v1/resources/{id}/quality/profile", tag = "quality", params(("id" = String, Path)),
    responses((status = 200, body = QualityReport), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn profile(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<QualityReport>, ApiError> {
    Ok(Json(state.core.profile_quality(&meta, &p, &id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketAssign {
    /// A steward of the provider department (username); `null` clears the assignment.
    pub assignee: Option<String>,
}

/// Assign a ticket to one of the provider's stewards, or clear it (the provider's stewards).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "quality", params(("id" = String, Path)), request_body = TicketAssign,
    responses((status = 200, body = TicketView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn assign_ticket(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TicketAssign>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(state.core.assign_ticket(&meta, &p, &id, body.assignee.as_deref()).await?))
}
