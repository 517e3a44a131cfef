//! Sharing: requests to answer and one's own, applications for data, grants. People and
//! departments appear by name, masks and filters in words; the approval form starts from safe
//! defaults, offers only masks the server accepts, builds row filters with pickers, and a
//! refused approval comes back with everything the steward chose.

use super::*;
use crate::present::{self, filter_text, mask_options};
use citydata_core::reads::AggregateParams;
use citydata_domain::resource::Resource;
use citydata_domain::vocab::{DataType, Sensitivity};
use citydata_store::{GrantRecord, RequestRecord};
use std::collections::HashMap;

/// Names for a page: people (username or id → display name) and departments (code → name).
pub(crate) struct Names {
    pub people: HashMap<String, String>,
    pub depts: HashMap<String, String>,
}

impl Names {
    pub(crate) async fn load(state: &AppState, p: &citydata_domain::principal::Principal, people: Vec<String>) -> Self {
        let people = state.core.display_names(p, &people).await.unwrap_or_default();
        let depts = state.core.department_names().await.unwrap_or_default();
        Names { people, depts }
    }
    pub(crate) fn person(&self, key: &str) -> String {
        self.people.get(key).cloned().unwrap_or_else(|| key.to_string())
    }
    pub(crate) fn dept(&self, code: &str) -> String {
        self.depts.get(code).cloned().unwrap_or_else(|| code.to_string())
    }
}

fn request_json(r: &RequestView, resource: Option<&(String, String)>, names: &Names) -> Value {
    json!({
        "id": r.id, "resource": resource.map(|x| &x.0), "slug": resource.map(|x| &x.1),
        "requester": names.person(&r.requester), "department": r.requester_department.as_deref().map(|d| names.dept(d)),
        "fields": r.fields, "purpose": r.purpose, "basis": r.basis, "scenario": r.scenario, "contact": r.contact,
        "period_days": r.period_days, "state": r.state, "reason": r.reason, "due_at": r.due_at, "created_at": r.created_at,
        "decided_by": r.decided_by.as_deref().map(|d| names.person(d)), "decided_at": r.decided_at,
        "overdue": r.overdue, "renews": r.renews_grant,
    })
}

/// The resources the caller may see: id → (name, provider, slug), from one listing.
async fn visible_resources(
    state: &AppState,
    p: &citydata_domain::principal::Principal,
) -> BTreeMap<String, (String, DeptCode, String)> {
    let mut out = BTreeMap::new();
    if let Ok((_, list)) = state.core.list_resources(Some(p), &ListFilter::default(), 1000, 0).await {
        for r in list {
            out.insert(r.id.to_string(), (r.content.name, r.content.provider, r.content.slug.as_str().to_string()));
        }
    }
    out
}

fn answering(p: &citydata_domain::principal::Principal) -> Vec<DeptCode> {
    p.memberships
        .iter()
        .filter(|m| matches!(m.role, Role::Steward | Role::DeptAdmin | Role::Admin))
        .map(|m| m.department.clone())
        .collect()
}

/// Whether the caller answers requests for some department.
pub(crate) fn answers_requests(p: &citydata_domain::principal::Principal) -> bool {
    p.is_admin() || !answering(p).is_empty()
}

pub async fn requests(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let all = match state.core.list_requests(&p, false, None).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let resources = visible_resources(&state, &p).await;
    let names = Names::load(&state, &p, all.iter().map(|r| r.requester_name.clone()).collect()).await;
    let answering = answering(&p);
    let mut incoming = Vec::new();
    let mut mine = Vec::new();
    for r in &all {
        let res = match resources.get(&r.resource_id.to_string()) {
            Some((name, provider, slug)) => Some((name.clone(), provider.clone(), slug.clone())),
            None => state
                .core
                .get_resource(Some(&p), &r.resource_id.to_string())
                .await
                .ok()
                .map(|x| (x.content.name, x.content.provider, x.content.slug.as_str().to_string())),
        };
        let named = res.as_ref().map(|(n, _, s)| (n.clone(), s.clone()));
        if r.requester == p.user_id {
            mine.push(request_json(&RequestView::from(r), named.as_ref(), &names));
        } else if res.is_some_and(|(_, d, _)| answering.contains(&d) || p.is_admin()) {
            incoming.push(request_json(&RequestView::from(r), named.as_ref(), &names));
        }
    }
    ctx.render(
        &portal,
        "console/requests.html",
        json!({"incoming": incoming, "mine": mine, "answers": answers_requests(&p)}),
    )
}

/// What the approval form shows for each item: checked or not, its masks (the chosen one
/// selected), whether it is sensitive.
fn approve_items(resource: &Resource, r: &RequestRecord, public: bool, kept: Option<&Kept>, ctx: &Ctx) -> Vec<Value> {
    resource
        .content
        .items
        .iter()
        .filter(|i| r.fields.is_empty() || r.fields.contains(&i.name.to_string()))
        .map(|i| {
            let name = i.name.to_string();
            let chosen = kept.and_then(|k| k.masks.get(&name)).map(String::as_str);
            let checked = kept.is_none_or(|k| k.fields.is_empty() || k.fields.contains(&name));
            json!({"name": name, "title": i.title, "sensitivity": i.sensitivity.as_str(), "checked": checked,
                   "masks": mask_options(i, public, chosen, ctx.lang)})
        })
        .collect()
}

/// Pickers for the row filter: the items one can filter on, with their distinct values when
/// there are few (read as the provider, who sees the table whole).
async fn filter_pickers(state: &AppState, ctx: &Ctx, resource: &Resource) -> Vec<Value> {
    let mut out = Vec::new();
    for i in &resource.content.items {
        if i.key || i.sensitivity != Sensitivity::None || !matches!(i.data_type, DataType::String | DataType::Integer) {
            continue;
        }
        let params = AggregateParams { group_by: Some(i.name.to_string()), ..Default::default() };
        let values: Vec<String> =
            match state.core.aggregate(&ctx.meta, ctx.principal.as_ref(), &resource.id.to_string(), &params).await {
                Ok(a) if a.rows.len() <= 30 => a
                    .rows
                    .iter()
                    .filter_map(|row| match &row[i.name.as_str()] {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
        if !values.is_empty() {
            out.push(json!({"name": i.name.to_string(), "title": i.title, "values": values}));
        }
        if out.len() >= 6 {
            break;
        }
    }
    out
}

/// What a steward chose in a refused approval, to show it again.
#[derive(Default)]
struct Kept {
    fields: Vec<String>,
    masks: BTreeMap<String, String>,
    row_filter: String,
    /// Picked values per item (`fv_{item}` checkboxes).
    picked: BTreeMap<String, Vec<String>>,
    expires: String,
}

async fn request_view(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    id: &str,
    refused: Option<(Kept, Value)>,
) -> Response {
    let (status, kept, errors) = match refused {
        Some((k, e)) => (StatusCode::BAD_REQUEST, Some(k), e),
        None => (StatusCode::OK, None, json!({})),
    };
    let (r, resource) = match state.core.get_request(p, id).await {
        Ok(x) => x,
        Err(e) => return ctx.core_error(portal, e),
    };
    let comments = state.core.request_comments(p, id).await.unwrap_or_default();
    let mut people: Vec<String> = comments.iter().map(|c| c.author.clone()).collect();
    people.push(r.requester_name.clone());
    people.extend(r.decided_by.clone());
    let names = Names::load(state, p, people).await;
    let title = |n: &str| resource.content.item(n).map(|i| i.title.clone()).unwrap_or_else(|| n.to_string());
    let asked: Vec<String> =
        if r.fields.is_empty() { vec![ctx.m("all_items")] } else { r.fields.iter().map(|f| title(f)).collect() };
    let can_decide = can_edit(p, &resource.content.provider) && r.state.as_str() == "pending";
    let public = r.requester_department.is_none();
    let (items, pickers) = if can_decide {
        (approve_items(&resource, &r, public, kept.as_ref(), ctx), filter_pickers(state, ctx, &resource).await)
    } else {
        (vec![], vec![])
    };
    // What was decided: the grant beside what was asked.
    let decided = match r.grant_id {
        Some(gid) => state.core.list_grants(p).await.ok().and_then(|gs| gs.into_iter().find(|g| g.id == gid)).map(|g| {
            json!({
                "items": if g.fields.is_empty() { vec![ctx.m("all_items")] } else { g.fields.iter().map(|f| title(f)).collect() },
                "masks": g.masks.iter().map(|(k, v)| json!({"item": title(k), "mask": present::mask_title(v, ctx.lang)})).collect::<Vec<_>>(),
                "filter": g.row_filter.as_deref().map(|f| filter_text(f, &resource.content.items, ctx.lang)),
                "expires_at": g.expires_at, "by": names.person(&g.granted_by),
            })
        }),
        None => None,
    };
    let k = kept.unwrap_or_default();
    ctx.render_status(
        portal,
        status,
        "console/request.html",
        json!({
            "req": request_json(&RequestView::from(&r), Some(&(resource.content.name.clone(), resource.content.slug.as_str().to_string())), &names),
            "asked": asked, "items": items, "can_decide": can_decide, "pickers": pickers, "decided": decided,
            "mine": r.requester == p.user_id, "labels": labels(ctx.lang), "sent": ctx.q("sent").is_some(),
            "comments": comments.iter().map(|c| json!({"author": names.person(&c.author), "body": c.body, "created_at": c.created_at})).collect::<Vec<_>>(),
            "errors": errors,
            "k": {"row_filter": k.row_filter, "picked": k.picked, "expires": k.expires},
        }),
    )
}

pub async fn request_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    request_view(&state, &portal, &ctx, &p, &id, None).await
}

/// Checkbox lists arrive as repeated fields: read them from the raw form.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// The row filter from the pickers: per item `item = v` or `item IN (…)`, items joined with
/// AND, quoted for the filter language; the advanced text field wins when filled.
fn picked_filter(picked: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let clauses: Vec<String> = picked
        .iter()
        .filter(|(_, vs)| !vs.is_empty())
        .map(|(item, values)| {
            let quoted: Vec<String> = values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect();
            if quoted.len() == 1 {
                format!("{item} = {}", quoted[0])
            } else {
                format!("{item} IN ({})", quoted.join(", "))
            }
        })
        .collect();
    (!clauses.is_empty()).then(|| clauses.join(" AND "))
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
            && fields.iter().any(|f| f == item)
        {
            masks.insert(item.to_string(), v.trim().to_string());
        }
    }
    // "Not masked" on an item that is not personal changes nothing: keep the grant's masks to
    // the ones that do something.
    if let Ok((_, resource)) = state.core.get_request(&p, &id).await {
        masks.retain(|item, m| {
            !(m == "none" && resource.content.item(item).is_some_and(|i| i.sensitivity == Sensitivity::None))
        });
    }
    let mut picked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &pairs {
        if let Some(item) = k.strip_prefix("fv_")
            && !v.trim().is_empty()
        {
            picked.entry(item.to_string()).or_default().push(v.clone());
        }
    }
    let row_filter = get("row_filter").or_else(|| picked_filter(&picked));
    let expires_at = get("expires")
        .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .map(|d| d.and_hms_opt(23, 59, 59).expect("valid time").and_utc() - chrono::Duration::hours(8));
    let input = ApproveInput {
        fields: (!fields.is_empty()).then_some(fields.clone()),
        row_filter,
        masks: masks.clone(),
        expires_at,
    };
    match state.core.approve_request(&ctx.meta, &p, &id, &input).await {
        Ok(_) => ctx.redirect(&format!("/console/requests/{id}")),
        Err(e @ CoreError::Validation(_)) => {
            let mut errors = ctx.field_errors(&e);
            // `masks.sfzh` → next to that item's mask; `fields[0]` → next to the items.
            if let Some(o) = errors.as_object_mut() {
                let renamed: Vec<(String, Value)> = o
                    .iter()
                    .map(|(k, v)| {
                        let k = if k.starts_with("fields") {
                            "fields".to_string()
                        } else if k == "filter" {
                            "row_filter".to_string()
                        } else {
                            k.replace('.', "_")
                        };
                        (k, v.clone())
                    })
                    .collect();
                o.extend(renamed);
            }
            let kept = Kept {
                fields,
                masks,
                row_filter: get("row_filter").unwrap_or_default(),
                picked,
                expires: get("expires").unwrap_or_default(),
            };
            request_view(&state, &portal, &ctx, &p, &id, Some((kept, errors))).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
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
    match state.core.reject_request(&ctx.meta, &p, &id, &f.reason).await {
        Ok(_) => ctx.redirect(&format!("/console/requests/{id}")),
        Err(e @ CoreError::Validation(_)) => {
            let errors = ctx.field_errors(&e);
            request_view(&state, &portal, &ctx, &p, &id, Some((Kept::default(), errors))).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
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
    match state.core.comment_request(&ctx.meta, &p, &id, &f.body).await {
        Ok(_) => ctx.redirect(&format!("/console/requests/{id}#c-h")),
        Err(e @ CoreError::Validation(_)) => {
            let mut errors = ctx.field_errors(&e);
            errors["comment_body"] = errors["body"].clone();
            request_view(&state, &portal, &ctx, &p, &id, Some((Kept::default(), errors))).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

fn apply_items(r: &Resource, chosen: &[String]) -> Vec<Value> {
    r.content
        .items
        .iter()
        .map(|i| json!({"name": i.name.to_string(), "title": i.title, "checked": chosen.contains(&i.name.to_string())}))
        .collect()
}

/// The commitment in the page's language (the accepted text and its hash stay whole).
fn commitment_json(state: &AppState, ctx: &Ctx) -> Value {
    let c = state.core.commitment();
    json!({"text": present::one_language(&c.text, ctx.lang), "sha256": c.sha256})
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
    ctx.render(
        &portal,
        "console/apply.html",
        json!({"r": {"slug": r.content.slug.as_str().to_string(), "name": r.content.name, "items": apply_items(&r, &[])},
               "public": p.memberships.is_empty(), "commitment": commitment_json(&state, &ctx), "errors": {}, "v": {}}),
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
        fields: fields.clone(),
        purpose: get("purpose"),
        basis: get("basis"),
        scenario: get("scenario"),
        contact: get("contact"),
        period_days: get("period_days").parse().ok(),
        accept_commitment: get("accept_commitment") == "on",
        commitment_sha256: Some(get("commitment_sha256")).filter(|s| !s.is_empty()),
        kind: None,
    };
    match state.core.create_request(&ctx.meta, &p, &input).await {
        Ok(r) => ctx.redirect(&format!("/console/requests/{}?sent=1", r.id)),
        Err(e @ CoreError::Validation(_)) => {
            let r = state.core.get_resource(Some(&p), &slug).await;
            let items = r.as_ref().map(|r| apply_items(r, &fields)).unwrap_or_default();
            let name = r.map(|r| r.content.name).unwrap_or_default();
            let mut errors = ctx.field_errors(&e);
            if let Some(o) = errors.as_object_mut()
                && let Some(k) = o.keys().find(|k| k.starts_with("fields[")).cloned()
            {
                let v = o[&k].clone();
                o.insert("fields".into(), v);
            }
            ctx.render_status(
                &portal,
                StatusCode::BAD_REQUEST,
                "console/apply.html",
                json!({"r": {"slug": slug, "name": name, "items": items}, "public": p.memberships.is_empty(),
                       "commitment": commitment_json(&state, &ctx), "errors": errors,
                       "v": {"purpose": input.purpose, "basis": input.basis, "scenario": input.scenario, "contact": input.contact,
                             "period_days": get("period_days"), "accepted": input.accept_commitment}}),
            )
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

fn grant_json(
    g: &GrantRecord,
    p: &citydata_domain::principal::Principal,
    resources: &BTreeMap<String, (Resource, String)>,
    names: &Names,
    ctx: &Ctx,
) -> Value {
    let mut v = serde_json::to_value(GrantView::from(g)).unwrap_or_default();
    let res = resources.get(&g.resource_id.to_string());
    let items = res.map(|(r, _)| r.content.items.as_slice()).unwrap_or(&[]);
    let title =
        |n: &str| items.iter().find(|i| i.name.as_str() == n).map(|i| i.title.clone()).unwrap_or_else(|| n.to_string());
    v["resource"] = json!(res.map(|(r, _)| &r.content.name));
    v["slug"] = json!(res.map(|(_, s)| s));
    v["grantee_name"] = json!(match g.grantee_kind.as_str() {
        "department" => names.dept(&g.grantee),
        _ => names.person(&g.grantee),
    });
    v["items"] =
        json!(if g.fields.is_empty() { vec![ctx.m("all_items")] } else { g.fields.iter().map(|f| title(f)).collect() });
    v["mask_list"] = json!(
        g.masks.iter().map(|(k, m)| format!("{}：{}", title(k), present::mask_title(m, ctx.lang))).collect::<Vec<_>>()
    );
    v["filter"] = json!(g.row_filter.as_deref().map(|f| filter_text(f, items, ctx.lang)));
    v["by"] = json!(names.person(&g.granted_by));
    v["revocable"] = json!(g.revoked_at.is_none() && res.is_some_and(|(r, _)| can_edit(p, &r.content.provider)));
    v
}

async fn grant_context(
    state: &AppState,
    p: &citydata_domain::principal::Principal,
    list: &[GrantRecord],
) -> (BTreeMap<String, (Resource, String)>, Names) {
    let mut resources = BTreeMap::new();
    for g in list {
        let key = g.resource_id.to_string();
        if !resources.contains_key(&key)
            && let Ok(r) = state.core.get_resource(Some(p), &key).await
        {
            let slug = r.content.slug.as_str().to_string();
            resources.insert(key, (r, slug));
        }
    }
    let people: Vec<String> = list
        .iter()
        .flat_map(|g| {
            let mut v = vec![g.granted_by.clone()];
            if g.grantee_kind.as_str() != "department" {
                v.push(g.grantee.clone());
            }
            v
        })
        .collect();
    (resources, Names::load(state, p, people).await)
}

pub async fn grants(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let list = match state.core.list_grants(&p).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let (resources, names) = grant_context(&state, &p, &list).await;
    let view: Vec<Value> = list.iter().map(|g| grant_json(g, &p, &resources, &names, &ctx)).collect();
    ctx.render(&portal, "console/grants.html", json!({"grants": view, "done": ctx.q("done")}))
}

/// The confirmation step before a grant is revoked: who loses what, and a reason for them.
pub async fn revoke_grant_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let list = state.core.list_grants(&p).await.unwrap_or_default();
    let Some(g) = list.iter().find(|g| g.id.to_string() == id && g.revoked_at.is_none()) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let (resources, names) = grant_context(&state, &p, std::slice::from_ref(g)).await;
    let v = grant_json(g, &p, &resources, &names, &ctx);
    if v["revocable"] != true {
        return ctx.core_error(&portal, CoreError::forbidden());
    }
    super::confirm_page(
        &ctx,
        &portal,
        super::Confirm {
            title: ctx.m("confirm_revoke_grant"),
            what: ctx
                .m("confirm_revoke_grant_what")
                .replace("{grantee}", v["grantee_name"].as_str().unwrap_or(""))
                .replace("{resource}", v["resource"].as_str().unwrap_or("")),
            undo: Some(ctx.m("confirm_revoke_grant_undo")),
            action: format!("/console/grants/{id}/revoke"),
            button: ctx.m("revoke"),
            back: "/console/grants",
            reason: true,
        },
    )
}

pub async fn revoke_grant(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<super::ConfirmForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    if !f.confirmed() {
        return ctx.redirect(&format!("/console/grants/{}/revoke", urlencode(&id)));
    }
    let result = state.core.revoke_grant_because(&ctx.meta, &p, &id, Some(&f.reason)).await;
    ctx.done(&portal, result, "/console/grants?done=revoked")
}

#[cfg(test)]
mod picker_tests {
    use super::*;

    #[test]
    fn picked_values_on_several_items_make_one_and_filter() {
        let mut picked = BTreeMap::new();
        assert_eq!(picked_filter(&picked), None, "nothing ticked: all rows");
        picked.insert("qx".to_string(), vec!["海陵区".to_string(), "高港区".to_string()]);
        picked.insert("xb".to_string(), vec!["男".to_string()]);
        picked.insert("hy".to_string(), vec![]);
        assert_eq!(picked_filter(&picked).as_deref(), Some("qx IN ('海陵区', '高港区') AND xb = '男'"));
        picked.insert("mc".to_string(), vec!["O'Brien".to_string()]);
        assert_eq!(
            picked_filter(&picked).as_deref(),
            Some("mc = 'O''Brien' AND qx IN ('海陵区', '高港区') AND xb = '男'"),
            "quotes doubled"
        );
    }
}
