//! Sharing: requests to answer and one's own, applications for data, grants.

use super::*;

fn request_json(r: &RequestView, names: &BTreeMap<String, String>) -> Value {
    json!({
        "id": r.id, "resource_id": r.resource_id, "resource": names.get(&r.resource_id.to_string()),
        "requester": r.requester, "department": r.requester_department, "fields": r.fields,
        "purpose": r.purpose, "basis": r.basis, "scenario": r.scenario, "period_days": r.period_days,
        "state": r.state, "reason": r.reason, "due_at": r.due_at, "created_at": r.created_at,
        "overdue": r.overdue, "renews": r.renews_grant,
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
            mine.push(request_json(&RequestView::from(r), &names));
        } else {
            // The listing covers the first 1,000 resources; others are looked up one by one.
            let provider = match resources.get(&r.resource_id.to_string()) {
                Some((_, provider)) => Some(provider.clone()),
                None => {
                    state.core.get_resource(Some(&p), &r.resource_id.to_string()).await.ok().map(|x| x.content.provider)
                }
            };
            if provider.is_some_and(|d| answering.contains(&d) || p.is_admin()) {
                incoming.push(request_json(&RequestView::from(r), &names));
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
            "req": request_json(&RequestView::from(&r), &names), "items": items, "can_decide": can_edit(&p, &resource.content.provider),
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
            let mut v = serde_json::to_value(GrantView::from(g)).unwrap_or_default();
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
