//! 共享申请 (requests), their comments, and the inbox.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citydata_core::requests::{ApproveInput, NewRequestInput, RenewInput};
use citydata_store::{CommentRecord, InboxRecord, RequestRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

pub fn request_view(r: &RequestRecord) -> Value {
    json!({
        "id": r.id, "resource_id": r.resource_id, "requester": r.requester_name, "requester_department": r.requester_department,
        "fields": r.fields, "purpose": r.purpose, "basis": r.basis, "scenario": r.scenario, "contact": r.contact,
        "period_days": r.period_days, "state": r.state, "reason": r.reason, "decided_by": r.decided_by, "decided_at": r.decided_at,
        "grant_id": r.grant_id, "due_at": r.due_at, "overdue": r.state == "pending" && r.due_at < chrono::Utc::now(), "created_at": r.created_at,
        "renews_grant": r.renews_grant, "commitment_sha256": r.commitment,
    })
}

fn comment_view(c: &CommentRecord) -> Value {
    json!({"id": c.id, "author": c.author, "body": c.body, "created_at": c.created_at})
}

fn inbox_view(m: &InboxRecord) -> Value {
    json!({"id": m.id, "kind": m.kind, "title": m.title, "body": m.body, "link": m.link, "created_at": m.created_at, "read": m.read_at.is_some()})
}

/// Ask for a resource. Unconditional sharing is granted at once (`approved`), 不予共享 is
/// refused at once with the catalog's basis (`rejected`), conditional sharing waits (`pending`,
/// with a due date 10 working days ahead). Public users apply for 有条件开放 resources.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequestInput,
    responses((status = 201, body = Object), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_request(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewRequestInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = state.core.create_request(&meta, &p, &input).await?;
    Ok((StatusCode::CREATED, Json(request_view(&r))))
}

/// The security commitment (安全承诺书) public applicants accept, with its SHA-256: send it as
/// `commitment_sha256` with the application to be sure the text you showed is the one in force.
#[utoipa::path(get, path = "/api/v1/requests/commitment", tag = "requests",
    responses((status = 200, body = Object, description = "{text, sha256}")))]
pub async fn commitment(State(state): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(state.core.commitment()).unwrap_or_default())
}

/// Ask to renew a grant before it expires (its grantees): a request for the same items and
/// purpose, `period_days` beyond the current expiry, answered by the provider like any other.
/// On approval the new grant replaces the old one (closed with `revoked_by: "renewal"`).
#[utoipa::path(post, path = "/api/v1/grants/{id}/renew", tag = "grants", params(("id" = String, Path)), request_body = RenewInput,
    responses((status = 201, body = Object), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn renew_grant(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RenewInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = state.core.renew_grant(&meta, &p, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(request_view(&r))))
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
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<RequestsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let Query(q) = q?;
    let list = state.core.list_requests(&p, q.overdue.unwrap_or(false), q.state.as_deref()).await?;
    Ok(Json(list.iter().map(request_view).collect()))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn get_request(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (r, _) = state.core.get_request(&p, &id).await?;
    Ok(Json(request_view(&r)))
}

/// Approve, possibly narrowing the items, adding a row filter or masks, shortening the period.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", params(("id" = String, Path)), request_body = ApproveInput,
    responses((status = 200, body = Object), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ApproveInput>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(request_view(&state.core.approve_request(&meta, &p, &id, &input).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Required.
    pub reason: String,
}

/// Reject with a reason.
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", params(("id" = String, Path)), request_body = RejectBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(request_view(&state.core.reject_request(&meta, &p, &id, &body.reason).await?)))
}

/// Withdraw one's own pending request.
#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(request_view(&state.core.withdraw_request(&meta, &p, &id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub body: String,
}

/// Comment on a request (questions both ways).
#[utoipa::path(post, path = "/api/v1/requests/{id}/comments", tag = "requests", params(("id" = String, Path)), request_body = CommentBody,
    responses((status = 201, body = Object), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn add_comment(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = state.core.comment_request(&meta, &p, &id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(comment_view(&c))))
}

/// The comment thread, oldest first.
#[utoipa::path(get, path = "/api/v1/requests/{id}/comments", tag = "requests", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn list_comments(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    Ok(Json(state.core.request_comments(&p, &id).await?.iter().map(comment_view).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    pub unread: Option<bool>,
}

/// My inbox: new requests for my department, decisions on my requests, comments, grants.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "requests", params(InboxQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let Query(q) = q?;
    Ok(Json(state.core.inbox(&p, q.unread.unwrap_or(false)).await?.iter().map(inbox_view).collect()))
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
    responses((status = 200, body = Object), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)), security(("session" = []), ("bearer" = [])))]
pub async fn response_times(
    State(state): State<AppState>,
    Auth(_p): Auth,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = state.core.response_times(&code).await?;
    Ok(Json(serde_json::to_value(r).unwrap_or_default()))
}
