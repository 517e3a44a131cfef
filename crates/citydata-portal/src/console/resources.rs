//! A department's resources: publish, withdraw, create, edit, upload with the ingest report.

use super::*;

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

/// The confirmation step before a resource is withdrawn: it leaves the catalog and reads stop,
/// and it can be published again.
pub async fn withdraw_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let r = match editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    super::confirm_page(
        &ctx,
        &portal,
        super::Confirm {
            title: format!("{}：{}", ctx.m("confirm_withdraw"), r.content.name),
            what: ctx.m("confirm_withdraw_what"),
            undo: Some(ctx.m("confirm_withdraw_undo")),
            action: format!("/console/resources/{}/withdraw", urlencode(r.content.slug.as_str())),
            button: ctx.m("withdraw"),
            back: "/console",
            reason: false,
        },
    )
}

pub async fn withdraw(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    Form(f): Form<super::ConfirmForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    if !f.confirmed() {
        return ctx.redirect(&format!("/console/resources/{}/withdraw", urlencode(&slug)));
    }
    let result = state.core.withdraw_resource(&ctx.meta, &p, &slug).await;
    ctx.done(&portal, result, "/console?done=withdrawn")
}

/// The departments whose resources the caller may create (platform admins: all).
pub(crate) async fn editable_departments(state: &AppState, p: &citydata_domain::principal::Principal) -> Vec<Value> {
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
            let mut errors = ctx.field_errors(&e);
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
    let r = match editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
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
            let mut errors = ctx.field_errors(&e);
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
    let r = match editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    ctx.render(&portal, "console/upload.html", json!({"r": upload_resource(&r)}))
}

fn upload_resource(r: &citydata_domain::resource::Resource) -> Value {
    let items: Vec<Value> =
        r.content.items.iter().map(|i| json!({"name": i.name.to_string(), "title": i.title})).collect();
    json!({"slug": r.content.slug.as_str().to_string(), "name": r.content.name, "items": items})
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
    let resource = state.core.get_resource(Some(&p), &slug).await.ok();
    let r_json = resource.as_ref().map(upload_resource).unwrap_or_else(|| json!({"slug": slug}));
    // Replacing the table or deleting by key asks first; the file is not read until confirmed.
    let mode = field("mode").unwrap_or_default();
    if matches!(mode.as_str(), "replace" | "delete") && field("confirm").as_deref() != Some("yes") {
        return ctx.render(
            &portal,
            "console/upload.html",
            json!({"r": r_json, "confirm_mode": mode, "policy": field("policy")}),
        );
    }
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
        key_range: None,
    };
    let body = IngestBody::Stream(Box::new(citydata_api::v1::data::Limited::new(up.file, state.max_upload_bytes)));
    match state.core.ingest_data(&ctx.meta, &p, &slug, &params, body, None).await {
        Ok((record, _)) => {
            let sample = state.core.quarantine(&p, &slug, Some(&record.id.to_string()), 10).await.unwrap_or_default();
            ctx.render(
                &portal,
                "console/upload.html",
                json!({"r": r_json, "report": ingest_view(&record), "sample": sample, "mode": mode, "policy": field("policy")}),
            )
        }
        Err(e @ (CoreError::Input { .. } | CoreError::Validation(_) | CoreError::TooLarge(_))) => {
            let api = citydata_api::ApiError::from(e);
            ctx.render_status(
                &portal,
                api.status,
                "console/upload.html",
                json!({"r": r_json, "error": crate::present::one_language(&api.message, ctx.lang), "details": api.details,
                       "mode": mode, "policy": field("policy")}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
