//! 评估考核: the evaluation of every department for a period, one department's, the records
//! behind a figure, the XLSX export, the center's rules, and the applications registry.

use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, ApiQuery, Auth, MaybeAuth, Meta};
use crate::v1::catalog_io::attachment;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use citydata_core::evaluation::applications::{ApplicationView, NewApplication};
use citydata_core::evaluation::records::Evidence;
use citydata_core::evaluation::{DepartmentResult, Evaluation, RulesVersion};
use citydata_domain::evaluation::Rules;
use citydata_domain::{FieldError, ValidationErrors};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// `YYYY-MM`, `YYYY-Qn` or `YYYY` (China time); not in the future.
    pub period: Option<String>,
    /// Rescore a closed period with the current rules (platform admins; audited).
    pub rescore: Option<bool>,
    /// `xlsx` (the export's only format).
    pub format: Option<String>,
    /// The indicator whose records to list.
    pub indicator: Option<String>,
}

fn required(field: &'static str, v: Option<&str>) -> Result<String, ApiError> {
    v.map(str::to_string).ok_or_else(|| {
        ApiError::from(citydata_core::CoreError::from(ValidationErrors::from(FieldError::new(
            field,
            "required",
            format!("缺少 {field} / {field} is required"),
        ))))
    })
}

/// Every department's indicators, score (0–100), rank and change since the previous period,
/// and the city's totals against the plan's targets. Department members and platform admins.
#[utoipa::path(get, path = "/api/v1/evaluation", tag = "evaluation", params(PeriodQuery),
    responses((status = 200, body = Evaluation), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn evaluation(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<Evaluation>, ApiError> {
    let period = required("period", q.period.as_deref())?;
    Ok(Json(state.core.evaluate(&meta, p.as_ref(), &period, q.rescore.unwrap_or(false)).await?))
}

/// One department's evaluation for a period.
#[utoipa::path(get, path = "/api/v1/evaluation/departments/{code}", tag = "evaluation", params(("code" = String, Path), PeriodQuery),
    responses((status = 200, body = DepartmentResult), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn department(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    Path(code): Path<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<DepartmentResult>, ApiError> {
    let period = required("period", q.period.as_deref())?;
    Ok(Json(state.core.evaluate_department(&meta, p.as_ref(), &code, &period).await?))
}

/// The records behind one indicator of a department (reads, requests, tickets, resources).
#[utoipa::path(get, path = "/api/v1/evaluation/departments/{code}/records", tag = "evaluation",
    params(("code" = String, Path), PeriodQuery),
    responses((status = 200, body = Evidence), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn records(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    Path(code): Path<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<Evidence>, ApiError> {
    let period = required("period", q.period.as_deref())?;
    let indicator = required("indicator", q.indicator.as_deref())?;
    Ok(Json(state.core.evaluation_records(p.as_ref(), &code, &period, &indicator).await?))
}

/// The evaluation as an XLSX workbook: 汇总, one sheet per indicator, 评估规则.
#[utoipa::path(get, path = "/api/v1/evaluation/export", tag = "evaluation", params(PeriodQuery),
    responses((status = 200, description = "The workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Meta(meta): Meta,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let period = required("period", q.period.as_deref())?;
    if let Some(f) = q.format.as_deref().filter(|f| *f != "xlsx") {
        return Err(citydata_core::CoreError::from(ValidationErrors::from(FieldError::new(
            "format",
            "invalid_value",
            format!("format 须为 xlsx，收到 \"{f}\" / format must be xlsx"),
        )))
        .into());
    }
    let e = state.core.evaluate(&meta, p.as_ref(), &period, false).await?;
    let bytes = citydata_core::evaluation::export::evaluation_xlsx(&e)?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    );
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        attachment(&format!("evaluation-{}.xlsx", e.period), &format!("评估考核-{}.xlsx", e.period)),
    );
    Ok(resp)
}

/// The current rules (targets, weights, plan targets) and their version.
#[utoipa::path(get, path = "/api/v1/evaluation/rules", tag = "evaluation",
    responses((status = 200, body = RulesVersion)))]
pub async fn get_rules(State(state): State<AppState>) -> Result<Json<RulesVersion>, ApiError> {
    Ok(Json(state.core.evaluation_rules(None).await?))
}

/// Set the rules (platform admins): weights summing to 100 over known indicators, a target for
/// each weighted one. Stored as the next version; closed periods keep theirs.
#[utoipa::path(put, path = "/api/v1/evaluation/rules", tag = "evaluation", request_body = Rules,
    responses((status = 201, body = RulesVersion), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn put_rules(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(rules): ApiJson<Rules>,
) -> Result<(StatusCode, Json<RulesVersion>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.set_evaluation_rules(&meta, &p, rules).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    /// Only the applications using this resource (id or code).
    pub resource: Option<String>,
}

/// The applications registry (应用), oldest first; resources the caller may not see in the
/// catalog are left out of each entry.
#[utoipa::path(get, path = "/api/v1/applications", tag = "evaluation", params(ApplicationQuery),
    responses((status = 200, body = Vec<ApplicationView>), (status = 404, body = ErrorEnvelope)))]
pub async fn list_applications(
    State(state): State<AppState>,
    MaybeAuth(p): MaybeAuth,
    ApiQuery(q): ApiQuery<ApplicationQuery>,
) -> Result<Json<Vec<ApplicationView>>, ApiError> {
    Ok(Json(state.core.list_applications(p.as_ref(), q.resource.as_deref()).await?))
}

/// Register an application with the resources it uses (stewards of its department; each
/// resource one the department may read).
#[utoipa::path(post, path = "/api/v1/applications", tag = "evaluation", request_body = NewApplication,
    responses((status = 201, body = ApplicationView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn create_application(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NewApplication>,
) -> Result<(StatusCode, Json<ApplicationView>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.core.create_application(&meta, &p, &body).await?)))
}
