//! 定时采集 pages in the console: the steward's sources, and a page per source with its run
//! history (state, cause, counts, the reason of a failure) and a column chart of the rows each
//! run committed; "run now" is a form. Everything comes from the `citydata_core::sources`
//! use cases the API calls, so the same stewards see the same sources.

use crate::chart;
use crate::ctx::Ctx;
use crate::public::CsrfOnly;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use citydata_api::AppState;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

fn state_title(ctx: &Ctx, state: &str) -> String {
    ctx.m(&format!("src_state_{state}"))
}

fn kind_title(ctx: &Ctx, kind: &str) -> String {
    ctx.m(&format!("src_kind_{kind}"))
}

/// `/console/sources`: the sources of the departments the caller stewards.
pub async fn list(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let sources = match state.core.list_sources(&p).await {
        Ok(s) => s,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let mut rows = Vec::new();
    for s in sources {
        let last = state.core.source_runs(&p, &s.id.to_string(), 1).await.ok().and_then(|r| r.into_iter().next());
        let target = match s.resource_id {
            Some(id) => state.core.get_resource(Some(&p), &id.to_string()).await.ok().map(|r| r.content.name),
            None => None,
        };
        rows.push(json!({
            "id": s.id, "name": s.name, "kind": kind_title(&ctx, &s.kind), "target": target,
            "schedule": s.schedule, "enabled": s.enabled, "next_run_at": s.next_run_at,
            "last": last.map(|r| state_title(&ctx, &r.state)),
        }));
    }
    ctx.render(&portal, "console/sources.html", json!({ "sources": rows }))
}

/// `/console/sources/{id}`: one source, its runs and rows per run.
pub async fn page(State(state): State<AppState>, Extension(portal): P, Path(id): Path<String>, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let s = match state.core.get_source(&p, &id).await {
        Ok(s) => s,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let runs = state.core.source_runs(&p, &id, 50).await.unwrap_or_default();
    let count =
        |r: &citydata_core::sources::RunView, k: &str| r.report.as_ref().and_then(|v| v[k].as_u64()).unwrap_or(0);
    let history: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "state": state_title(&ctx, &r.state), "ok": r.state == "succeeded", "cause": ctx.m(&format!("src_cause_{}", r.cause)),
                "at": r.started_at.unwrap_or(r.created_at), "finished_at": r.finished_at,
                "committed": count(r, "rows_committed"), "deleted": count(r, "rows_deleted"),
                "quarantined": count(r, "rows_quarantined"), "error": r.error.as_deref().map(|e| crate::present::one_language(e, ctx.lang)),
            })
        })
        .collect();
    // Oldest first in the chart; labels are the runs' local start times.
    let points: Vec<(String, f64)> = runs
        .iter()
        .rev()
        .filter(|r| r.state == "succeeded")
        .map(|r| {
            let at = r.started_at.unwrap_or(r.created_at).with_timezone(&citydata_domain::cast::local_offset());
            (at.format("%m-%d %H:%M").to_string(), (count(r, "rows_committed") + count(r, "rows_deleted")) as f64)
        })
        .collect();
    let chart = (!points.is_empty()).then(|| chart::columns(&ctx.m("src_rows_per_run"), &points));
    let target = match s.resource_id {
        Some(rid) => state
            .core
            .get_resource(Some(&p), &rid.to_string())
            .await
            .ok()
            .map(|r| json!({"name": r.content.name, "slug": r.content.slug})),
        None => None,
    };
    ctx.render(
        &portal,
        "console/source.html",
        json!({
            "source": {
                "id": s.id, "name": s.name, "kind": kind_title(&ctx, &s.kind), "schedule": s.schedule,
                "enabled": s.enabled, "next_run_at": s.next_run_at, "mode": ctx.m(&format!("src_mode_{}", s.mode)),
                "failures": s.consecutive_failures, "watermark": s.watermark_value.is_some(),
            },
            "target": target, "runs": history, "chart": chart,
        }),
    )
}

/// `POST /console/sources/{id}/run`: run now, back to the page.
pub async fn run(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&f.csrf) {
        return r;
    }
    let result = state.core.run_source(&ctx.meta, &p, &id).await;
    ctx.done(&portal, result, &format!("/console/sources/{id}"))
}
