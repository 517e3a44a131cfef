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
    // A catalog harvest counts catalog entries, not rows.
    let harvest = matches!(s.kind.as_str(), "ckan" | "dcat");
    let count =
        |r: &citydata_core::sources::RunView, k: &str| r.report.as_ref().and_then(|v| v[k].as_u64()).unwrap_or(0);
    let history: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "state": state_title(&ctx, &r.state), "ok": r.state == "succeeded", "cause": ctx.m(&format!("src_cause_{}", r.cause)),
                "at": r.started_at.unwrap_or(r.created_at), "finished_at": r.finished_at,
                "committed": if harvest { count(r, "objects_created") + count(r, "objects_updated") } else { count(r, "rows_committed") },
                "deleted": count(r, if harvest { "objects_withdrawn" } else { "rows_deleted" }),
                "quarantined": count(r, if harvest { "objects_refused" } else { "rows_quarantined" }), "error": r.error.as_deref().map(|e| crate::present::one_language(e, ctx.lang)),
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
            let n = if harvest {
                count(r, "objects_created") + count(r, "objects_updated") + count(r, "objects_withdrawn")
            } else {
                count(r, "rows_committed") + count(r, "rows_deleted")
            };
            (at.format("%m-%d %H:%M").to_string(), n as f64)
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
            "target": target, "runs": history, "chart": chart, "harvest": harvest,
        }),
    )
}

/// The creation form's fields (a PostgreSQL source).
#[derive(serde::Deserialize, Default)]
pub struct NewSourceForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub table: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub watermark: String,
    #[serde(default)]
    pub deleted: String,
    #[serde(default)]
    pub schedule: String,
}

/// The resources of the departments the caller stewards, for the form's picker.
async fn own_resources(state: &AppState, p: &citydata_domain::principal::Principal) -> Vec<Value> {
    let mut out = Vec::new();
    for m in &p.memberships {
        if !p.can_steward(&m.department) {
            continue;
        }
        let q = citydata_core::catalog::ListFilter { provider: Some(m.department.to_string()), ..Default::default() };
        if let Ok((_, list)) = state.core.list_resources(Some(p), &q, 500, 0).await {
            out.extend(list.into_iter().map(|r| json!({"id": r.id, "name": r.content.name})));
        }
    }
    out
}

fn form_page(
    ctx: &Ctx,
    portal: &Portal,
    resources: Vec<Value>,
    form: Value,
    errors: Value,
    status: axum::http::StatusCode,
) -> Response {
    ctx.render_status(
        portal,
        status,
        "console/source_new.html",
        json!({"resources": resources, "form": form, "errors": errors}),
    )
}

/// `GET /console/sources/new`.
pub async fn new_page(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let resources = own_resources(&state, &p).await;
    form_page(&ctx, &portal, resources, json!({"mode": "upsert"}), json!({}), axum::http::StatusCode::OK)
}

/// `POST /console/sources/new`: create, or the form again with each message by its field.
pub async fn create(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(f): Form<NewSourceForm>,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&f.csrf) {
        return r;
    }
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let input = citydata_core::sources::SourceInput {
        name: f.name.clone(),
        kind: "postgres".into(),
        resource_id: opt(&f.resource),
        connection: Some(citydata_core::sources::ConnectionInput {
            url: opt(&f.url),
            password: opt(&f.password),
            ..Default::default()
        }),
        query: opt(&f.query),
        table: opt(&f.table),
        mode: opt(&f.mode),
        watermark: opt(&f.watermark),
        deleted: opt(&f.deleted),
        schedule: opt(&f.schedule),
        ..Default::default()
    };
    match state.core.create_source(&ctx.meta, &p, input).await {
        Ok(s) => ctx.redirect(&format!("/console/sources/{}", s.id)),
        Err(e @ citydata_core::CoreError::Validation(_)) => {
            let mut errors = ctx.field_errors(&e);
            if let Some(o) = errors.as_object_mut() {
                let renamed: Vec<(String, Value)> = o
                    .iter()
                    .map(|(k, v)| {
                        (
                            match k.as_str() {
                                "connection.url" | "connection" => "url".to_string(),
                                "resource_id" => "resource".to_string(),
                                k => k.to_string(),
                            },
                            v.clone(),
                        )
                    })
                    .collect();
                o.clear();
                o.extend(renamed);
            }
            // Everything typed comes back, except the password.
            let form = json!({"name": f.name, "resource": f.resource, "url": f.url, "table": f.table, "query": f.query,
                              "mode": f.mode, "watermark": f.watermark, "deleted": f.deleted, "schedule": f.schedule});
            let resources = own_resources(&state, &p).await;
            form_page(&ctx, &portal, resources, form, errors, axum::http::StatusCode::BAD_REQUEST)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
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
