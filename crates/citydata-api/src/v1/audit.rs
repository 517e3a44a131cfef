use crate::error::ErrorEnvelope;
use crate::extract::ApiQuery;
use crate::extract::Auth;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::audit::{AuditEntry, AuditFilter, ChainBreak};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Username of the actor.
    pub actor: Option<String>,
    /// Department code of the actor.
    pub department: Option<String>,
    /// An action (`auth.login`) or a prefix ending in `.` (`auth.`).
    pub action: Option<String>,
    /// e.g. `department:gaj`.
    pub target: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// RFC 3339 time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339 time, exclusive.
    pub to: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    /// 1-based page number.
    pub page: Option<u64>,
    /// 1–500, default 50.
    pub per_page: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPageView {
    pub total: u64,
    pub page: u64,
    pub per_page: u32,
    pub entries: Vec<AuditEntry>,
}

/// The audit log, newest first, with filters and paging (platform admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPageView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    let outcome = match q.outcome.as_deref() {
        None | Some("") => None,
        Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "outcome 须为 success、denied 或 failure / outcome must be success, denied or failure",
            )
            .with_details(json!({"fields": [{"field": "outcome", "code": "invalid_outcome"}]}))
        })?),
    };
    let filter = AuditFilter {
        actor: q.actor,
        department: q.department,
        action: q.action,
        target: q.target,
        outcome,
        from: q.from,
        to: q.to,
        request_id: q.request_id,
    };
    let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
    // Bounded so that the offset cannot overflow; a page past the end is simply empty.
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let result = state.core.list_audit(&p, &filter, per_page, (page - 1) * u64::from(per_page)).await?;
    Ok(Json(AuditPageView { total: result.total, page, per_page, entries: result.entries }))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    pub entries: u64,
    /// The first broken entry, when the chain does not verify.
    pub first_break: Option<ChainBreak>,
    /// Signed checkpoints checked (their signatures, and the chain's hash at each).
    pub checkpoints: usize,
}

/// Walk the hash chain, check the signed checkpoints, and report the first broken entry
/// (platform admins). A clean walk signs a checkpoint of the head.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn verify_audit(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<VerifyView>, ApiError> {
    let r = state.core.verify_audit(&p).await?;
    Ok(Json(VerifyView { ok: r.ok, entries: r.entries, first_break: r.first_break, checkpoints: r.checkpoints }))
}
