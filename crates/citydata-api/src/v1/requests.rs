//! 共享申请 (requests), their comments, and the inbox.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use citydata_core::requests::{
    ApproveInput, CommentView, CommitmentView, InboxView, NewRequestInput, RenewInput, RequestView, ResponseTimes,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Ask for a resource. Unconditional sharing is granted at once (`approved`), 不予共享 is
/// refused at once with the catalog's basis (`rejected`), conditional sharing waits (`pending`,
/// with a due date 10 working days ahead). Public users apply for 有条件开放 resources.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequestInput,
    responses((status = 201, body = RequestView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_request(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewRequestInput>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let r = state.core.create_request(&meta, &p, &input).await?;
    Ok((StatusCode::CREATED, Json(RequestView::from(&r))))
}

/// The security commitment (安全承诺书) public applicants accept, with its SHA-256: send it as
/// `commitment_sha256` with the application to be sure the text you showed is the one in force.
#[utoipa::path(get, path = "/api/v1/requests/commitment", tag = "requests",
    responses((status = 200, body = CommitmentView)))]
pub async fn commitment(State(state): State<AppState>) -> Json<CommitmentView> {
    Json(state.core.commitment())
}

/// Ask to renew a grant before it expires (its grantees): a request for the same items and
/// purpose, `period_days` beyond the current expiry, answered by the provider like any other.
/// On approval the new grant replaces the old one (closed with `revoked_by: "renewal"`).
#[utoipa::path(post, path = "/api/v1/grants/{id}/renew", tag = "grants", params(("id" = String, Path)), request_body = RenewInput,
    responses((status = 201, body = RequestView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn renew_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RenewInput>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let r = state.core.renew_grant(&meta, &p, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(RequestView::from(&r))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    /// Only pending requests past their due date.
    pub overdue: Option<bool>,
    /// `pending`, `approved`, `rejected`, `withdrawn`.
    pub state: Option<String>,
}

/// My requests, my departments' requests, and requests to my departments.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestsQuery),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let list = state.core.list_requests(&p, q.overdue.unwrap_or(false), q.state.as_deref()).await?;
    Ok(Json(list.iter().map(RequestView::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn get_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let (r, _) = state.core.get_request(&p, &id).await?;
    Ok(Json(RequestView::from(&r)))
}

/// Approve, possibly narrowing the items, adding a row filter or masks, shortening the period.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", params(("id" = String, Path)), request_body = ApproveInput,
    responses((status = 200, body = RequestView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ApproveInput>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(RequestView::from(&state.core.approve_request(&meta, &p, &id, &input).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Required.
    pub reason: String,
}

/// Reject with a reason.
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", params(("id" = String, Path)), request_body = RejectBody,
    responses((status = 200, body = RequestView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(RequestView::from(&state.core.reject_request(&meta, &p, &id, &body.reason).await?)))
}

/// Withdraw one's own pending request.
#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = RequestView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(RequestView::from(&state.core.withdraw_request(&meta, &p, &id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub body: String,
}

/// Comment on a request (questions both ways).
#[utoipa::path(post, path = "/api/v1/requests/{id}/comments", tag = "requests", params(("id" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = CommentView), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn add_comment(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<CommentView>), ApiError> {
    let c = state.core.comment_request(&meta, &p, &id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(CommentView::from(&c))))
}

/// The comment thread, oldest first.
#[utoipa::path(get, path = "/api/v1/requests/{id}/comments", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = Vec<CommentView>), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn list_comments(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<CommentView>>, ApiError> {
    Ok(Json(state.core.request_comments(&p, &id).await?.iter().map(CommentView::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    pub unread: Option<bool>,
}

/// My inbox: new requests for my department, decisions on my requests, comments, grants.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "requests", params(InboxQuery),
    responses((status = 200, body = Vec<InboxView>), (status = 401, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Vec<InboxView>>, ApiError> {
    Ok(Json(state.core.inbox(&p, q.unread.unwrap_or(false)).await?.iter().map(InboxView::from).collect()))
}

/// Mark a message read.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/read", tag = "requests", params(("id" = String, Path)),
    responses((status = 204, description = "Read"), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn mark_read(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.mark_read(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Response times of a department's answers to requests: median and 90th percentile, in
/// working days and hours; pending and overdue counts.
#[utoipa::path(get, path = "/api/v1/departments/{code}/response-times", tag = "requests", params(("code" = String, Path)),
    responses((status = 200, body = ResponseTimes), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn response_times(
    State(state): State<AppState>,
    Auth(_p): Auth,
    Path(code): Path<String>,
) -> Result<Json<ResponseTimes>, ApiError> {
    Ok(Json(state.core.response_times(&code).await?))
}
