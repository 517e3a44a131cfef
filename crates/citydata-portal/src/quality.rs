//! 数据质量 pages: a dataset's quality (score, one bar per dimension, the trend over versions,
//! open tickets), a department's quality report (charts and an XLSX download), and the
//! steward's to-do list in the console (overdue updates, open tickets by age, rules failing
//! most). Every figure comes from the same use cases as `/api/v1/.../quality`.

use crate::chart;
use crate::ctx::Ctx;
use crate::render::Portal;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, http::StatusCode};
use chrono::Utc;
use citydata_api::AppState;
use citydata_core::quality::QualityReport;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

fn dims(ctx: &Ctx, q: &QualityReport) -> Vec<(String, f64)> {
    let d = &q.dimensions;
    [
        ("q_completeness", d.completeness),
        ("q_validity", d.validity),
        ("q_uniqueness", d.uniqueness),
        ("q_consistency", d.consistency),
        ("q_timeliness", d.timeliness),
        ("q_accuracy", d.accuracy),
    ]
    .iter()
    .map(|(k, v)| (ctx.m(k), (v * 1000.0).round() / 10.0))
    .collect()
}

/// `/datasets/{slug}/quality`: score, dimension bars, trend, rules, tickets (public, no reporters).
pub async fn dataset(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = ctx.principal.as_ref();
    let r = match state.core.get_resource(p, &slug).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let report = state.core.quality_report(p, &slug, None).await.ok();
    let history = state.core.quality_history(p, &slug).await.unwrap_or_default();
    let tickets = state.core.resource_tickets(p, &slug).await.unwrap_or_default();
    let open: Vec<Value> = tickets
        .iter()
        .filter(|t| !matches!(t.state.as_str(), "confirmed" | "closed" | "rejected"))
        .map(|t| json!({"title": t.title, "state": t.state.as_str(), "created": t.created_at.format("%Y-%m-%d").to_string(), "overdue": t.overdue}))
        .collect();
    let bars = report.as_ref().map(|q| chart::bars(&ctx.m("q_dimensions"), &dims(&ctx, q)));
    let trend: Vec<(String, f64)> = history.iter().map(|h| (format!("v{}", h.version), h.score)).collect();
    let trend = (trend.len() > 1).then(|| chart::line(&ctx.m("q_trend"), &trend));
    let rules: Vec<Value> = report
        .as_ref()
        .map(|q| q.rules.iter().map(|r| json!({"rule": r.rule, "severity": r.severity, "failed": r.failed})).collect())
        .unwrap_or_default();
    ctx.render(
        &portal,
        "quality.html",
        json!({
            "r": {"name": r.content.name, "slug": r.content.slug.as_str(), "code": r.content.code.to_string()},
            "score": report.as_ref().map(|q| q.score), "version": report.as_ref().map(|q| q.version),
            "rows": report.as_ref().map(|q| q.rows),
            "bars": bars, "trend": trend, "rules": rules, "open": open, "tickets_total": tickets.len(),
        }),
    )
}

async fn department_reports(state: &AppState, ctx: &Ctx, code: &str) -> Result<Vec<(String, QualityReport)>, Response> {
    let filter = citydata_core::catalog::ListFilter { provider: Some(code.to_string()), ..Default::default() };
    let p = ctx.principal.as_ref();
    let (_, list) = state.core.list_resources(p, &filter, 1000, 0).await.map_err(|e| e.to_string().into_response())?;
    let mut out = Vec::new();
    for r in list {
        if let Ok(q) = state.core.quality_report(p, &r.id.to_string(), None).await {
            out.push((r.content.name.clone(), q));
        }
    }
    Ok(out)
}

/// `/departments/{code}/quality`: each resource's score and dimensions, the department's
/// overdue updates, and `?format=xlsx` for the workbook.
pub async fn department(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(code): Path<String>,
    ctx: Ctx,
) -> Response {
    let d = match state.core.get_department(&code).await {
        Ok(d) => d,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let reports = match department_reports(&state, &ctx, d.code.as_str()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if ctx.q("format") == Some("xlsx") {
        return match citydata_core::quality::io::report_xlsx(&format!("{} 数据质量报告", d.name.as_str()), &reports)
        {
            Ok(bytes) => (
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"quality-{}.xlsx\"", d.code)),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => ctx.core_error(&portal, e),
        };
    }
    let scores: Vec<(String, f64)> = reports.iter().map(|(n, q)| (n.clone(), q.score)).collect();
    let overdue = state
        .core
        .overdue_resources(ctx.principal.as_ref(), Some(d.code.as_str()), Utc::now())
        .await
        .unwrap_or_default();
    let rows: Vec<Value> = reports
        .iter()
        .map(|(n, q)| json!({"name": n, "score": q.score, "version": q.version, "rows": q.rows, "d": q.dimensions}))
        .collect();
    ctx.render(
        &portal,
        "department_quality.html",
        json!({
            "d": {"code": d.code.to_string(), "name": d.name.as_str()},
            "chart": (!scores.is_empty()).then(|| chart::bars(&ctx.m("q_score"), &scores)),
            "rows": rows,
            "overdue": overdue.iter().map(|o| json!({"name": o.name, "cycle": o.cycle, "due": o.due_at.format("%Y-%m-%d %H:%M").to_string()})).collect::<Vec<_>>(),
        }),
    )
}

/// `/console/quality`: the steward's to-do list — overdue updates of their departments, open
/// tickets by age, and the rules failing most in the newest reports.
pub async fn console(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let now = Utc::now();
    let mut overdue = Vec::new();
    let mut failing: Vec<(String, String, u64)> = Vec::new();
    for m in &p.memberships {
        let dept = m.department.as_str();
        for o in state.core.overdue_resources(Some(&p), Some(dept), now).await.unwrap_or_default() {
            overdue.push(json!({"name": o.name, "code": o.code, "cycle": o.cycle, "due": o.due_at.format("%Y-%m-%d %H:%M").to_string()}));
        }
        if let Ok(reports) = department_reports(&state, &ctx, dept).await {
            for (name, q) in reports {
                for r in q.rules.iter().filter(|r| r.failed.unwrap_or(0) > 0) {
                    failing.push((name.clone(), r.rule.clone(), r.failed.unwrap_or(0)));
                }
            }
        }
    }
    failing.sort_by_key(|f| std::cmp::Reverse(f.2));
    failing.truncate(10);
    let mut tickets = state.core.list_tickets(&p, None, None, false).await.unwrap_or_default();
    tickets.retain(|t| t.state.awaits_provider());
    tickets.sort_by_key(|t| t.created_at);
    let tickets: Vec<Value> = tickets
        .iter()
        .map(|t| json!({"id": t.id, "title": t.title, "state": t.state.as_str(), "days": (now - t.created_at).num_days(), "overdue": t.overdue}))
        .collect();
    ctx.render(
        &portal,
        "console/quality.html",
        json!({
            "overdue": overdue, "tickets": tickets,
            "failing": failing.iter().map(|(n, r, c)| json!({"name": n, "rule": r, "failed": c})).collect::<Vec<_>>(),
        }),
    )
}
