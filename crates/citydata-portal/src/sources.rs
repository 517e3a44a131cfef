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

/// The creation form's fields: every kind's, the kind says which apply.
#[derive(serde::Deserialize, Default)]
pub struct NewSourceForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    /// `postgres` (default), `mysql`, `http`, `ckan` or `dcat`.
    #[serde(default)]
    pub kind: String,
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
    /// HTTP: `json` or `csv`, where the records are, how to page, request headers (one
    /// `Name: value` a line; write-only).
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub records: String,
    #[serde(default)]
    pub page_kind: String,
    #[serde(default)]
    pub size_param: String,
    #[serde(default)]
    pub size: String,
    #[serde(default)]
    pub next: String,
    #[serde(default)]
    pub headers: String,
    /// Harvests: the department the entries go under, the theme of unclassified entries.
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub theme: String,
    /// Harvests: `remote organization = department code`, one a line.
    #[serde(default)]
    pub departments: String,
    /// Harvests: load CSV distributions into tables (a checkbox: present when ticked).
    #[serde(default)]
    pub distributions: Option<String>,
}

/// The kinds the form offers, in its order.
const FORM_KINDS: [&str; 5] = ["postgres", "mysql", "http", "ckan", "dcat"];

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

/// The departments the caller stewards (where a harvest may put its entries).
async fn own_departments(state: &AppState, p: &citydata_domain::principal::Principal) -> Vec<Value> {
    let mut out = Vec::new();
    for m in p.memberships.iter().filter(|m| p.can_steward(&m.department)) {
        let name = match state.core.store().get_department(&m.department).await {
            Ok(Some(d)) => d.name.as_str().to_string(),
            _ => m.department.to_string(),
        };
        if !out.iter().any(|d: &Value| d["code"] == m.department.as_str()) {
            out.push(json!({"code": m.department.as_str(), "name": name}));
        }
    }
    out
}

async fn form_page(
    state: &AppState,
    p: &citydata_domain::principal::Principal,
    ctx: &Ctx,
    portal: &Portal,
    form: Value,
    errors: Value,
    status: axum::http::StatusCode,
) -> Response {
    let resources = own_resources(state, p).await;
    let departments = own_departments(state, p).await;
    let kinds: Vec<Value> = FORM_KINDS.iter().map(|k| json!({"code": k, "title": kind_title(ctx, k)})).collect();
    ctx.render_status(
        portal,
        status,
        "console/source_new.html",
        json!({"resources": resources, "departments": departments, "kinds": kinds, "form": form, "errors": errors}),
    )
}

/// `GET /console/sources/new`.
pub async fn new_page(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let form = json!({"kind": "postgres", "mode": "upsert", "format": "json"});
    form_page(&state, &p, &ctx, &portal, form, json!({}), axum::http::StatusCode::OK).await
}

/// `Name: value` lines (`sep` `:`) or `organization = department` lines (`=`) into a map, or
/// the number of the line that is not one.
fn parse_pairs(text: &str, sep: char) -> Result<Option<std::collections::BTreeMap<String, String>>, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once(sep) {
            Some((n, v)) if !n.trim().is_empty() => {
                out.insert(n.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(i + 1),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The form as the API's input (what a kind does not use is left out).
fn source_input(
    f: &NewSourceForm,
    headers: Option<std::collections::BTreeMap<String, String>>,
    mapping: Option<std::collections::BTreeMap<String, String>>,
) -> citydata_core::sources::SourceInput {
    use citydata_core::sources::{ConnectionInput, Pagination, SourceInput};
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let kind = opt(&f.kind).unwrap_or_else(|| "postgres".into());
    let mut input =
        SourceInput { name: f.name.clone(), kind: kind.clone(), schedule: opt(&f.schedule), ..Default::default() };
    match kind.as_str() {
        "ckan" | "dcat" => {
            input.url = opt(&f.url);
            input.department = opt(&f.department);
            input.theme = opt(&f.theme);
            input.departments = mapping;
            input.distributions = f.distributions.as_ref().map(|_| true);
        }
        "http" => {
            input.resource_id = opt(&f.resource);
            input.connection = Some(ConnectionInput { url: opt(&f.url), headers, ..Default::default() });
            input.mode = opt(&f.mode);
            input.format = opt(&f.format);
            input.records = opt(&f.records);
            input.pagination = opt(&f.page_kind).map(|k| Pagination {
                kind: k,
                size_param: opt(&f.size_param),
                // A size that is not a number reaches the API as none and is named below.
                size: opt(&f.size).and_then(|s| s.parse().ok()),
                next: opt(&f.next),
                ..Default::default()
            });
        }
        _ => {
            input.resource_id = opt(&f.resource);
            input.connection =
                Some(ConnectionInput { url: opt(&f.url), password: opt(&f.password), ..Default::default() });
            input.query = opt(&f.query);
            input.table = opt(&f.table);
            input.mode = opt(&f.mode);
            input.watermark = opt(&f.watermark);
            input.deleted = opt(&f.deleted);
        }
    }
    input
}

/// A field of the API's input as the form's field.
fn form_field(api: &str) -> String {
    match api {
        "connection.url" | "connection" | "url" => "url".into(),
        "connection.headers" => "headers".into(),
        "resource_id" => "resource".into(),
        f if f.starts_with("pagination") => "page_kind".into(),
        f => f.to_string(),
    }
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
    // Everything typed comes back, except the password and the headers (secrets).
    let form = json!({"name": f.name, "kind": f.kind, "resource": f.resource, "url": f.url, "table": f.table,
                      "query": f.query, "mode": f.mode, "watermark": f.watermark, "deleted": f.deleted,
                      "schedule": f.schedule, "format": f.format, "records": f.records, "page_kind": f.page_kind,
                      "size_param": f.size_param, "size": f.size, "next": f.next, "department": f.department,
                      "theme": f.theme, "departments": f.departments, "distributions": f.distributions.is_some()});
    let bad = axum::http::StatusCode::BAD_REQUEST;
    let mapping = match parse_pairs(&f.departments, '=') {
        Ok(m) => m,
        Err(line) => {
            let msg = ctx.m("src_departments_bad").replace("{line}", &line.to_string());
            return form_page(&state, &p, &ctx, &portal, form, json!({"departments": msg}), bad).await;
        }
    };
    let headers = match parse_pairs(&f.headers, ':') {
        Ok(h) => h,
        Err(line) => {
            let msg = ctx.m("src_headers_bad").replace("{line}", &line.to_string());
            return form_page(&state, &p, &ctx, &portal, form, json!({"headers": msg}), bad).await;
        }
    };
    if !f.size.trim().is_empty() && f.size.trim().parse::<u32>().is_err() {
        return form_page(&state, &p, &ctx, &portal, form, json!({"size": ctx.m("src_size_bad")}), bad).await;
    }
    match state.core.create_source(&ctx.meta, &p, source_input(&f, headers, mapping)).await {
        Ok(s) => ctx.redirect(&format!("/console/sources/{}", s.id)),
        Err(e @ citydata_core::CoreError::Validation(_)) => {
            let mut errors = serde_json::Map::new();
            if let Value::Object(o) = ctx.field_errors(&e) {
                for (k, v) in o {
                    errors.entry(form_field(&k)).or_insert(v);
                }
            }
            form_page(&state, &p, &ctx, &portal, form, Value::Object(errors), bad).await
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
