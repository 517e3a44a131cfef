//! `/console/applications`: the applications registry's editor (issue #17) — a department's
//! stewards list, register and edit the applications (应用) built on the data they read; the
//! same use cases as `POST /api/v1/applications` (`create_application`) and
//! `update_application` (409 on a stale form, 403 for other departments).

use crate::ctx::Ctx;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::evaluation::applications::NewApplication;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

const STATUSES: [&str; 3] = ["active", "building", "retired"];

#[derive(Deserialize, Default)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scenario: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    status: String,
    /// Resource codes, one a line (or separated by commas).
    #[serde(default)]
    resources: String,
    #[serde(default)]
    revision: String,
    /// The username of the department's service account the application calls as.
    #[serde(default)]
    service_account: String,
}

fn status_word(ctx: &Ctx, s: &str) -> String {
    ctx.m(&format!("app_status_{s}"))
}

fn statuses(ctx: &Ctx, chosen: &str) -> Vec<Value> {
    STATUSES.iter().map(|s| json!({"value": s, "label": status_word(ctx, s), "selected": *s == chosen})).collect()
}

fn input_of(f: &AppForm) -> NewApplication {
    NewApplication {
        name: f.name.clone(),
        scenario: f.scenario.clone(),
        url: Some(f.url.clone()).filter(|u| !u.trim().is_empty()),
        resources: f
            .resources
            .split(['\n', ',', '，'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        department: None,
        status: Some(f.status.clone()).filter(|s| !s.is_empty()),
        service_account: Some(f.service_account.clone()).filter(|s| !s.trim().is_empty()),
    }
}

fn form_page(ctx: &Ctx, portal: &Portal, status: StatusCode, action: &str, f: &AppForm, errors: Value) -> Response {
    let chosen = if f.status.is_empty() { "active" } else { f.status.as_str() };
    ctx.render_status(
        portal,
        status,
        "console/applications.html",
        json!({"form": {"action": action, "name": f.name, "scenario": f.scenario, "url": f.url,
                        "resources": f.resources, "revision": f.revision, "service_account": f.service_account, "statuses": statuses(ctx, chosen),
                        "edit": !f.revision.is_empty()},
               "errors": errors}),
    )
}

/// The caller's departments' applications.
pub async fn list(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let apps = match state.core.list_applications(Some(&p), None).await {
        Ok(a) => a,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let names = state.core.department_names().await.unwrap_or_default();
    let rows: Vec<Value> = apps
        .iter()
        .filter(|a| p.is_admin() || p.memberships.iter().any(|m| m.department.as_str() == a.department))
        .map(|a| {
            let editable = citydata_domain::dept::DeptCode::parse(&a.department).is_ok_and(|d| p.can_steward(&d));
            json!({"id": a.id.to_string(), "name": a.name, "scenario": a.scenario,
                   "department": names.get(&a.department).cloned().unwrap_or_else(|| a.department.clone()),
                   "status": status_word(&ctx, &a.status), "editable": editable,
                   "resources": a.resources.iter().map(|r| r.name.clone()).collect::<Vec<_>>().join("、")})
        })
        .collect();
    let steward = p.is_admin() || p.memberships.iter().any(|m| p.can_steward(&m.department));
    ctx.render(&portal, "console/applications.html", json!({"apps": rows, "steward": steward}))
}

/// The registration form.
pub async fn new_page(Extension(portal): P, ctx: Ctx) -> Response {
    if let Err(r) = ctx.require_login() {
        return r;
    }
    form_page(&ctx, &portal, StatusCode::OK, "/console/applications/new", &AppForm::default(), json!({}))
}

fn failed(ctx: &Ctx, portal: &Portal, action: &str, f: &AppForm, e: CoreError) -> Response {
    match e {
        e @ CoreError::Validation(_) => {
            let errors = ctx.field_errors(&e);
            form_page(ctx, portal, StatusCode::BAD_REQUEST, action, f, errors)
        }
        e => ctx.core_error(portal, e),
    }
}

/// Register.
pub async fn create(State(state): State<AppState>, Extension(portal): P, ctx: Ctx, Form(f): Form<AppForm>) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&f.csrf) {
        return r;
    }
    match state.core.create_application(&ctx.meta, &p, &input_of(&f)).await {
        Ok(_) => ctx.redirect("/console/applications"),
        Err(e) => failed(&ctx, &portal, "/console/applications/new", &f, e),
    }
}

/// The edit form, filled in.
pub async fn edit_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    match state.core.application_for_edit(&p, &id).await {
        Ok(e) => {
            let f = AppForm {
                name: e.view.name,
                scenario: e.view.scenario,
                url: e.view.url.unwrap_or_default(),
                status: e.view.status,
                resources: e.resource_codes.join("\n"),
                service_account: e.view.service_account.unwrap_or_default(),
                revision: e.revision,
                ..Default::default()
            };
            form_page(&ctx, &portal, StatusCode::OK, &format!("/console/applications/{id}/edit"), &f, json!({}))
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// Save an edit.
pub async fn edit(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<AppForm>,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&f.csrf) {
        return r;
    }
    match state.core.update_application(&ctx.meta, &p, &id, &input_of(&f), &f.revision).await {
        Ok(_) => ctx.redirect("/console/applications"),
        Err(e) => failed(&ctx, &portal, &format!("/console/applications/{id}/edit"), &f, e),
    }
}
