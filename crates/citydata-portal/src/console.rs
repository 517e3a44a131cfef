//! The console for signed-in users: their department's resources (edit, publish, withdraw,
//! upload with the ingest report), requests to answer and their own, grants, tokens, the inbox,
//! applications for data, and for platform admins the audit log with the chain status.

use crate::ctx::{Ctx, urlencode};
use crate::public::{CsrfOnly, labels};
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Form, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::catalog::{ListFilter, can_edit};
use citydata_core::ingest::{IngestBody, IngestParams, ingest_view};
use citydata_core::requests::{ApproveInput, NewRequestInput};
use citydata_domain::dept::DeptCode;
use citydata_domain::user::Role;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

macro_rules! login {
    ($ctx:expr) => {
        match $ctx.require_login() {
            Ok(p) => p.clone(),
            Err(r) => return r,
        }
    };
}

macro_rules! csrf {
    ($ctx:expr, $token:expr) => {
        if let Err(r) = $ctx.check_csrf($token) {
            return r;
        }
    };
}

pub async fn home(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let core = &state.core;
    let mut resources = Vec::new();
    for m in &p.memberships {
        let filter = ListFilter { provider: Some(m.department.to_string()), ..Default::default() };
        if let Ok((_, list)) = core.list_resources(Some(&p), &filter, 200, 0).await {
            for r in list {
                if resources.iter().any(|x: &Value| x["id"] == json!(r.id)) {
                    continue;
                }
                resources.push(json!({
                    "id": r.id, "name": r.content.name, "slug": r.content.slug.as_str().to_string(), "code": r.content.code.to_string(),
                    "state": r.state.as_str(), "updated_at": r.updated_at, "editable": can_edit(&p, &r.content.provider),
                }));
            }
        }
    }
    let pending = core.list_requests(&p, false, Some("pending")).await.map(|v| v.len()).unwrap_or(0);
    let unread = core.inbox(&p, true).await.map(|v| v.len()).unwrap_or(0);
    ctx.render(
        &portal,
        "console/home.html",
        json!({"resources": resources, "pending": pending, "unread": unread, "labels": labels(ctx.lang), "done": ctx.q("done")}),
    )
}

pub async fn publish(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.publish_resource(&ctx.meta, &p, &slug).await;
    ctx.done(&portal, result, "/console?done=published")
}

pub async fn withdraw(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.withdraw_resource(&ctx.meta, &p, &slug).await;
    ctx.done(&portal, result, "/console?done=withdrawn")
}

/// The departments whose resources the caller may create (platform admins: all).
async fn editable_departments(state: &AppState, p: &citydata_domain::principal::Principal) -> Vec<Value> {
    let all = state.core.list_departments().await.unwrap_or_default();
    all.iter()
        .filter(|d| can_edit(p, &d.code))
        .map(|d| json!({"code": d.code.to_string(), "name": d.name.as_str()}))
        .collect()
}

pub async fn new_page(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let departments = editable_departments(&state, &p).await;
    if departments.is_empty() {
        return ctx.core_error(&portal, CoreError::forbidden());
    }
    ctx.render(
        &portal,
        "console/new.html",
        json!({"departments": departments, "labels": labels(ctx.lang), "errors": {},
               "v": {"update_cycle": "monthly", "share_type": "conditional", "open_type": "none", "class": "thematic", "format_category": "database"}}),
    )
}

#[derive(Deserialize, serde::Serialize, Default)]
pub struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "abstract")]
    summary: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    theme: String,
    #[serde(default)]
    format_category: String,
    #[serde(default)]
    format_type: String,
    #[serde(default)]
    update_cycle: String,
    #[serde(default)]
    share_type: String,
    #[serde(default)]
    share_conditions: String,
    #[serde(default)]
    share_method: String,
    #[serde(default)]
    open_type: String,
    #[serde(default)]
    open_conditions: String,
    #[serde(default)]
    tags: String,
    /// One item per line: `字段名,中文名,类型[,敏感级别][,主键]`.
    #[serde(default)]
    items: String,
}

/// An item line: `name,title,type[,sensitivity][,key]` (commas or 全角逗号; `主键`/`key`/`是`
/// marks a key item).
fn item_line(line: &str) -> Value {
    let parts: Vec<&str> = line.split([',', '，']).map(str::trim).collect();
    let get = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
    let key = parts.iter().skip(3).any(|p| matches!(*p, "主键" | "key" | "是" | "yes" | "true"));
    let sensitivity = get(3).filter(|s| !matches!(*s, "主键" | "key" | "是" | "yes" | "true"));
    json!({"name": get(0), "title": get(1), "data_type": get(2), "sensitivity": sensitivity, "key": key, "required": key})
}

/// A new draft resource from the form: the same validations as `POST /api/v1/resources`; every
/// problem is shown next to its field (item problems under the items, by line).
pub async fn create(State(state): State<AppState>, Extension(portal): P, ctx: Ctx, Form(f): Form<NewForm>) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let opt = |s: &str| if s.trim().is_empty() { Value::Null } else { Value::String(s.trim().to_string()) };
    let items: Vec<Value> = f.items.lines().filter(|l| !l.trim().is_empty()).map(item_line).collect();
    let tags: Vec<String> =
        f.tags.split([',', '，', '；', ';']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let body = json!({
        "name": opt(&f.name), "abstract": opt(&f.summary), "provider": opt(&f.provider),
        "classification": {"class": opt(&f.class), "theme": opt(&f.theme)},
        "format": {"category": opt(&f.format_category), "type": opt(&f.format_type)},
        "items": items, "update_cycle": opt(&f.update_cycle), "tags": tags,
        "share": {"type": opt(&f.share_type), "conditions": opt(&f.share_conditions), "method": opt(&f.share_method)},
        "open": {"type": opt(&f.open_type), "conditions": opt(&f.open_conditions)},
    });
    let result = match serde_json::from_value::<citydata_domain::resource::ResourceInput>(body) {
        Ok(input) => state.core.create_resource(&ctx.meta, &p, &input).await,
        Err(e) => {
            Err(CoreError::Validation(citydata_domain::FieldError::new("body", "invalid_field", e.to_string()).into()))
        }
    };
    match result {
        Ok(r) => ctx.redirect(&format!("/console/resources/{}/edit?created=1", urlencode(r.content.slug.as_str()))),
        Err(e @ CoreError::Validation(_)) => {
            let mut errors = Ctx::field_errors(&e);
            if let Some(o) = errors.as_object_mut() {
                let mut item_errors = Vec::new();
                let renamed: Vec<(String, Value)> = o
                    .iter()
                    .filter_map(|(k, v)| {
                        if let Some(rest) = k.strip_prefix("items[") {
                            let line = rest.split(']').next().and_then(|n| n.parse::<usize>().ok()).map(|n| n + 1);
                            item_errors.push(format!(
                                "{} {}：{}",
                                ctx.m("line"),
                                line.unwrap_or(0),
                                v.as_str().unwrap_or("")
                            ));
                            None
                        } else {
                            Some((k.replace('.', "_"), v.clone()))
                        }
                    })
                    .collect();
                o.extend(renamed);
                if let Some(v) = o.get("items").and_then(Value::as_str) {
                    item_errors.insert(0, v.to_string());
                }
                if !item_errors.is_empty() {
                    o.insert("items".into(), Value::String(item_errors.join("；")));
                }
            }
            let departments = editable_departments(&state, &p).await;
            ctx.render_status(
                &portal,
                StatusCode::BAD_REQUEST,
                "console/new.html",
                json!({"departments": departments, "labels": labels(ctx.lang), "errors": errors, "v": f}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

fn edit_values(r: &citydata_domain::resource::Resource) -> Value {
    json!({
        "name": r.content.name, "abstract": r.content.summary, "contact": r.content.contact,
        "tags": r.content.tags.join("，"), "update_cycle": r.content.update_cycle.as_str(),
        "share_type": r.content.share.kind.as_str(), "share_conditions": r.content.share.conditions,
        "open_type": r.content.open.kind.as_str(), "open_conditions": r.content.open.conditions,
    })
}

pub async fn edit_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let r = match state.core.get_resource(Some(&p), &slug).await {
        Ok(r) if can_edit(&p, &r.content.provider) => r,
        Ok(_) => return ctx.core_error(&portal, CoreError::forbidden()),
        Err(e) => return ctx.core_error(&portal, e),
    };
    ctx.render(
        &portal,
        "console/edit.html",
        json!({"r": {"slug": r.content.slug.as_str().to_string(), "code": r.content.code.to_string(), "revision": r.revision},
               "v": edit_values(&r), "errors": {}, "labels": labels(ctx.lang), "created": ctx.q("created").is_some()}),
    )
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "abstract")]
    summary: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    update_cycle: String,
    #[serde(default)]
    share_type: String,
    #[serde(default)]
    share_conditions: String,
    #[serde(default)]
    open_type: String,
    #[serde(default)]
    open_conditions: String,
}

/// The edit form as a merge patch: the same validations as `PATCH /api/v1/resources/{id}`,
/// each error shown next to its field.
pub async fn edit(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(f): Form<EditForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let opt = |s: &str| if s.trim().is_empty() { Value::Null } else { Value::String(s.trim().to_string()) };
    let tags: Vec<String> =
        f.tags.split([',', '，', '；', ';']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let patch = json!({
        "name": f.name, "abstract": f.summary, "contact": opt(&f.contact), "tags": tags, "update_cycle": f.update_cycle,
        "share": {"type": f.share_type, "conditions": opt(&f.share_conditions)},
        "open": {"type": f.open_type, "conditions": opt(&f.open_conditions)},
    });
    match state.core.update_resource(&ctx.meta, &p, &slug, &patch).await {
        Ok(r) => ctx.redirect(&format!("/datasets/{}", urlencode(r.content.slug.as_str()))),
        Err(e @ CoreError::Validation(_)) => {
            let mut errors = Ctx::field_errors(&e);
            // Nested fields (`share.type`) show next to their form field (`share_type`).
            if let Some(o) = errors.as_object_mut() {
                let renamed: Vec<(String, Value)> = o.iter().map(|(k, v)| (k.replace('.', "_"), v.clone())).collect();
                o.extend(renamed);
            }
            let v = json!({
                "name": f.name, "abstract": f.summary, "contact": f.contact, "tags": f.tags, "update_cycle": f.update_cycle,
                "share_type": f.share_type, "share_conditions": f.share_conditions,
                "open_type": f.open_type, "open_conditions": f.open_conditions,
            });
            ctx.render_status(
                &portal,
                StatusCode::BAD_REQUEST,
                "console/edit.html",
                json!({"r": {"slug": slug}, "v": v, "errors": errors, "labels": labels(ctx.lang)}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

pub async fn upload_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let r = match state.core.get_resource(Some(&p), &slug).await {
        Ok(r) if can_edit(&p, &r.content.provider) => r,
        Ok(_) => return ctx.core_error(&portal, CoreError::forbidden()),
        Err(e) => return ctx.core_error(&portal, e),
    };
    let items: Vec<Value> =
        r.content.items.iter().map(|i| json!({"name": i.name.to_string(), "title": i.title})).collect();
    ctx.render(
        &portal,
        "console/upload.html",
        json!({"r": {"slug": r.content.slug.as_str().to_string(), "name": r.content.name, "items": items}}),
    )
}

/// The upload form (multipart: its fields come before the file). The CSRF token is checked
/// before a byte of the file is read; the report shows counts, failures per rule and a sample
/// of quarantined rows.
pub async fn upload(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    request: Request,
) -> Response {
    let p = login!(ctx);
    let up = match citydata_api::v1::data::multipart_upload(request).await {
        Ok(u) => u,
        Err(e) => return ctx.error_page(&portal, e.status, &e.message),
    };
    let field = |k: &str| up.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    csrf!(ctx, &field("csrf").unwrap_or_default());
    let format = field("format")
        .or_else(|| up.file_name.as_deref().and_then(citydata_core::ingest::Format::name_from_file_name));
    let params = IngestParams {
        mode: field("mode"),
        format,
        encoding: field("encoding"),
        policy: field("policy"),
        delimiter: None,
        sheet: field("sheet"),
        header: None,
        ignore_extra: field("ignore_extra").is_some(),
        idempotency_key: None,
        erase: field("erase").is_some(),
    };
    let body = IngestBody::Stream(Box::new(citydata_api::v1::data::Limited::new(up.file, state.max_upload_bytes)));
    match state.core.ingest_data(&ctx.meta, &p, &slug, &params, body, None).await {
        Ok((record, _)) => {
            let sample = state.core.quarantine(&p, &slug, Some(&record.id.to_string()), 10).await.unwrap_or_default();
            ctx.render(
                &portal,
                "console/upload.html",
                json!({"r": {"slug": slug}, "report": ingest_view(&record), "sample": sample}),
            )
        }
        Err(e @ (CoreError::Input { .. } | CoreError::Validation(_) | CoreError::TooLarge(_))) => {
            let api = citydata_api::ApiError::from(e);
            ctx.render_status(
                &portal,
                api.status,
                "console/upload.html",
                json!({"r": {"slug": slug}, "error": api.message, "details": api.details}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

fn request_json(r: &citydata_store::RequestRecord, names: &BTreeMap<String, String>) -> Value {
    json!({
        "id": r.id, "resource_id": r.resource_id, "resource": names.get(&r.resource_id.to_string()),
        "requester": r.requester_name, "department": r.requester_department, "fields": r.fields,
        "purpose": r.purpose, "basis": r.basis, "scenario": r.scenario, "period_days": r.period_days,
        "state": r.state, "reason": r.reason, "due_at": r.due_at, "created_at": r.created_at,
        "overdue": r.state == citydata_store::RequestState::Pending && r.due_at < chrono::Utc::now(), "renews": r.renews_grant,
    })
}

/// The resources the caller may see: id → (name, provider), from one listing.
async fn visible_resources(
    state: &AppState,
    p: &citydata_domain::principal::Principal,
) -> BTreeMap<String, (String, DeptCode)> {
    let mut out = BTreeMap::new();
    if let Ok((_, list)) = state.core.list_resources(Some(p), &ListFilter::default(), 1000, 0).await {
        for r in list {
            out.insert(r.id.to_string(), (r.content.name, r.content.provider));
        }
    }
    out
}

async fn resource_names(state: &AppState, p: &citydata_domain::principal::Principal) -> BTreeMap<String, String> {
    visible_resources(state, p).await.into_iter().map(|(id, (name, _))| (id, name)).collect()
}

pub async fn requests(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let all = match state.core.list_requests(&p, false, None).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let resources = visible_resources(&state, &p).await;
    let names: BTreeMap<String, String> = resources.iter().map(|(id, (name, _))| (id.clone(), name.clone())).collect();
    let answering: Vec<DeptCode> = p
        .memberships
        .iter()
        .filter(|m| matches!(m.role, Role::Steward | Role::DeptAdmin | Role::Admin))
        .map(|m| m.department.clone())
        .collect();
    let mut incoming = Vec::new();
    let mut mine = Vec::new();
    for r in &all {
        if r.requester == p.user_id {
            mine.push(request_json(r, &names));
        } else {
            // The listing covers the first 1,000 resources; others are looked up one by one.
            let provider = match resources.get(&r.resource_id.to_string()) {
                Some((_, provider)) => Some(provider.clone()),
                None => {
                    state.core.get_resource(Some(&p), &r.resource_id.to_string()).await.ok().map(|x| x.content.provider)
                }
            };
            if provider.is_some_and(|d| answering.contains(&d) || p.is_admin()) {
                incoming.push(request_json(r, &names));
            }
        }
    }
    ctx.render(&portal, "console/requests.html", json!({"incoming": incoming, "mine": mine}))
}

pub async fn request_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let (r, resource) = match state.core.get_request(&p, &id).await {
        Ok(x) => x,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let comments = state.core.request_comments(&p, &id).await.unwrap_or_default();
    let mut names = BTreeMap::new();
    names.insert(resource.id.to_string(), resource.content.name.clone());
    let items: Vec<Value> = resource
        .content
        .items
        .iter()
        .filter(|i| r.fields.is_empty() || r.fields.contains(&i.name.to_string()))
        .map(|i| json!({"name": i.name.to_string(), "title": i.title, "sensitivity": i.sensitivity.as_str()}))
        .collect();
    ctx.render(
        &portal,
        "console/request.html",
        json!({
            "req": request_json(&r, &names), "items": items, "can_decide": can_edit(&p, &resource.content.provider),
            "comments": comments.iter().map(|c| json!({"author": c.author, "body": c.body, "created_at": c.created_at})).collect::<Vec<_>>(),
            "labels": labels(ctx.lang), "errors": {},
        }),
    )
}

/// Checkbox lists arrive as repeated fields: read them from the raw form.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

pub async fn approve(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    body: String,
) -> Response {
    let p = login!(ctx);
    let pairs = form_pairs(&body);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
    csrf!(ctx, &get("csrf").unwrap_or_default());
    let fields: Vec<String> = pairs.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.clone()).collect();
    let mut masks = BTreeMap::new();
    for (k, v) in &pairs {
        if let Some(item) = k.strip_prefix("mask_")
            && !v.trim().is_empty()
        {
            masks.insert(item.to_string(), v.trim().to_string());
        }
    }
    let expires_at = get("expires")
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .map(|d| d.and_hms_opt(23, 59, 59).expect("valid time").and_utc() - chrono::Duration::hours(8));
    let input = ApproveInput {
        fields: (!fields.is_empty()).then_some(fields),
        row_filter: get("row_filter"),
        masks,
        expires_at,
    };
    let result = state.core.approve_request(&ctx.meta, &p, &id, &input).await;
    ctx.done(&portal, result, &format!("/console/requests/{id}"))
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn reject(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<ReasonForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.reject_request(&ctx.meta, &p, &id, &f.reason).await;
    ctx.done(&portal, result, &format!("/console/requests/{id}"))
}

#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

pub async fn comment(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CommentForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.comment_request(&ctx.meta, &p, &id, &f.body).await;
    ctx.done(&portal, result, &format!("/console/requests/{id}"))
}

pub async fn apply_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let r = match state.core.get_resource(Some(&p), &slug).await {
        Ok(r) => r,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let items: Vec<Value> =
        r.content.items.iter().map(|i| json!({"name": i.name.to_string(), "title": i.title})).collect();
    ctx.render(
        &portal,
        "console/apply.html",
        json!({"r": {"slug": r.content.slug.as_str().to_string(), "name": r.content.name, "items": items},
               "public": p.memberships.is_empty(), "commitment": state.core.commitment(), "errors": {}, "v": {}}),
    )
}

pub async fn apply(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    body: String,
) -> Response {
    let p = login!(ctx);
    let pairs = form_pairs(&body);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    csrf!(ctx, &get("csrf"));
    let fields: Vec<String> = pairs.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.clone()).collect();
    let input = NewRequestInput {
        resource_id: slug.clone(),
        fields,
        purpose: get("purpose"),
        basis: get("basis"),
        scenario: get("scenario"),
        contact: get("contact"),
        period_days: get("period_days").parse().ok(),
        accept_commitment: get("accept_commitment") == "on",
        commitment_sha256: Some(get("commitment_sha256")).filter(|s| !s.is_empty()),
    };
    match state.core.create_request(&ctx.meta, &p, &input).await {
        Ok(r) => ctx.redirect(&format!("/console/requests/{}", r.id)),
        Err(e @ CoreError::Validation(_)) => {
            let r = state.core.get_resource(Some(&p), &slug).await;
            let items: Vec<Value> = r
                .as_ref()
                .map(|r| {
                    r.content.items.iter().map(|i| json!({"name": i.name.to_string(), "title": i.title})).collect()
                })
                .unwrap_or_default();
            let name = r.map(|r| r.content.name).unwrap_or_default();
            ctx.render_status(
                &portal,
                StatusCode::BAD_REQUEST,
                "console/apply.html",
                json!({"r": {"slug": slug, "name": name, "items": items}, "public": p.memberships.is_empty(),
                       "commitment": state.core.commitment(), "errors": Ctx::field_errors(&e),
                       "v": {"purpose": input.purpose, "basis": input.basis, "scenario": input.scenario, "contact": input.contact}}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

pub async fn grants(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let list = match state.core.list_grants(&p).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let names = resource_names(&state, &p).await;
    let view: Vec<Value> = list
        .iter()
        .map(|g| {
            let mut v = citydata_api::v1::grants::grant_view(g);
            v["resource"] = json!(names.get(&g.resource_id.to_string()));
            v["revocable"] = json!(
                g.revoked_at.is_none()
                    && p.memberships.iter().any(|m| matches!(m.role, Role::Steward | Role::DeptAdmin | Role::Admin))
                    && !p.memberships.iter().any(|m| m.department.as_str() == g.grantee)
            );
            v
        })
        .collect();
    ctx.render(&portal, "console/grants.html", json!({"grants": view}))
}

pub async fn revoke_grant(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.revoke_grant(&ctx.meta, &p, &id).await;
    ctx.done(&portal, result, "/console/grants")
}

pub async fn tokens(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    tokens_page(&state, &portal, &ctx, &p, None, StatusCode::OK, None).await
}

async fn tokens_page(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    created: Option<String>,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let list = state.core.list_tokens(p).await.unwrap_or_default();
    let view: Vec<Value> = list
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                        "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some()}))
        .collect();
    ctx.render_status(
        portal,
        status,
        "console/tokens.html",
        json!({"tokens": view, "created": created, "error": error}),
    )
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(f): Form<TokenForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let days = f.days.trim().parse::<i64>().ok();
    match state.core.create_token(&ctx.meta, &p, &f.name, days).await {
        // Shown once, on this answer (not a redirect), never again.
        Ok(t) => tokens_page(&state, &portal, &ctx, &p, Some(t.token), StatusCode::CREATED, None).await,
        Err(e @ CoreError::Validation(_)) => {
            let msg = citydata_api::ApiError::from(e).message_with_fields();
            tokens_page(&state, &portal, &ctx, &p, None, StatusCode::BAD_REQUEST, Some(msg)).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let Ok(uid) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let result = state.core.revoke_token(&ctx.meta, &p, uid).await;
    ctx.done(&portal, result, "/console/tokens")
}

pub async fn inbox(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let list = match state.core.inbox(&p, false).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let view: Vec<Value> = list
        .iter()
        .map(|m| {
            // Links to API paths of requests become console pages.
            let link = m.link.as_deref().map(|l| l.replace("/api/v1/requests/", "/console/requests/"));
            json!({"id": m.id, "kind": m.kind, "title": m.title, "body": m.body, "link": link, "created_at": m.created_at, "read": m.read_at.is_some()})
        })
        .collect();
    ctx.render(&portal, "console/inbox.html", json!({"messages": view}))
}

pub async fn mark_read(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.mark_read(&p, &id).await;
    ctx.done(&portal, result, "/console/inbox")
}

pub async fn audit(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    if !p.can_read_audit() {
        return ctx.core_error(&portal, CoreError::forbidden());
    }
    let filter = citydata_store::AuditFilter {
        actor: ctx.q("actor").map(str::to_string),
        action: ctx.q("action").map(str::to_string),
        target: ctx.q("target").map(str::to_string),
        outcome: ctx.q("outcome").and_then(citydata_domain::audit::Outcome::parse),
        ..Default::default()
    };
    let page: u64 = ctx.q("page").and_then(|x| x.parse().ok()).filter(|x| *x >= 1).unwrap_or(1);
    let listing = match state.core.list_audit(&p, &filter, 50, (page - 1) * 50).await {
        Ok(l) => l,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let chain = state.core.verify_audit(&p).await.ok();
    let entries: Vec<Value> = listing.entries.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
    let pages = listing.total.div_ceil(50).max(1);
    ctx.render(
        &portal,
        "console/audit.html",
        json!({"entries": entries, "total": listing.total, "page": page, "pages": pages,
               "chain": serde_json::to_value(chain).unwrap_or_default(),
               "f": {"actor": ctx.q("actor"), "action": ctx.q("action"), "target": ctx.q("target"), "outcome": ctx.q("outcome")}}),
    )
}
