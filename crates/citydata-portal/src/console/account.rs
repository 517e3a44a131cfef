//! One's own things: API tokens and the inbox; for platform admins, the audit log.

use super::*;

pub async fn tokens(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    tokens_page(&state, &portal, &ctx, &p, TokensAnswer::default()).await
}

/// How the tokens page answers a post: the new token (shown once), or a refusal with the
/// input kept.
#[derive(Default)]
struct TokensAnswer {
    created: Option<String>,
    status: Option<StatusCode>,
    error: Option<String>,
    kept: Value,
}

async fn tokens_page(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    a: TokensAnswer,
) -> Response {
    let list = state.core.list_tokens(p).await.unwrap_or_default();
    let view: Vec<Value> = list
        .iter()
        .map(|t| {
            let scopes: Option<Vec<String>> =
                t.scopes.as_ref().map(|s| s.iter().map(|x| ctx.m(&format!("scope_{}", x.as_str().replace(':', "_")))).collect());
            json!({"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                   "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some(), "scopes": scopes,
                   "limited": t.resources.as_ref().map(Vec::len)})
        })
        .collect();
    ctx.render_status(
        portal,
        a.status.unwrap_or(StatusCode::OK),
        "console/tokens.html",
        json!({"tokens": view, "created": a.created, "error": a.error, "v": a.kept, "done": ctx.q("done")}),
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
    /// One checkbox per scope (`scope_catalog_read=on`, ...): a form posts no lists.
    #[serde(flatten)]
    scopes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    resources: String,
}

impl TokenForm {
    /// The scopes ticked, as `catalog:read`, ...; none ticked is the least, `catalog:read`
    /// (the console never makes an unrestricted token).
    fn scopes(&self) -> Vec<String> {
        let ticked: Vec<String> = citydata_domain::scope::Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .filter(|s| self.scopes.contains_key(&format!("scope_{}", s.replace(':', "_"))))
            .map(String::from)
            .collect();
        if ticked.is_empty() { vec!["catalog:read".into()] } else { ticked }
    }
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
    let resources: Vec<String> =
        f.resources.split([',', '，']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    let req = citydata_core::tokens::TokenRequest {
        name: f.name.clone(),
        scopes: Some(f.scopes()),
        resources: (!resources.is_empty()).then_some(resources),
        expires_in_days: days,
    };
    match state.core.create_scoped_token(&ctx.meta, &p, &req).await {
        // Shown once, on this answer (not a redirect), never again.
        Ok(t) => {
            let a = TokensAnswer { created: Some(t.token), status: Some(StatusCode::CREATED), ..Default::default() };
            tokens_page(&state, &portal, &ctx, &p, a).await
        }
        Err(e @ CoreError::Validation(_)) => {
            let msg = citydata_api::ApiError::from(e).message_with_fields();
            let kept = json!({"name": f.name, "days": f.days, "resources": f.resources, "scopes": f.scopes()});
            let a =
                TokensAnswer { status: Some(StatusCode::BAD_REQUEST), error: Some(msg), kept, ..Default::default() };
            tokens_page(&state, &portal, &ctx, &p, a).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// The confirmation step before a token is revoked: which token, and that scripts using it stop.
pub async fn revoke_token_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let list = state.core.list_tokens(&p).await.unwrap_or_default();
    let Some(t) = list.iter().find(|t| t.id.to_string() == id && t.revoked_at.is_none()) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    super::revoke_credential_page(&ctx, &portal, "revoke_token", (&t.name, &t.prefix), "/console/tokens", &id)
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<super::ConfirmForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    if !f.confirmed() {
        return ctx.redirect(&format!("/console/tokens/{}/revoke", urlencode(&id)));
    }
    let Ok(uid) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let result = state.core.revoke_token(&ctx.meta, &p, uid).await;
    ctx.done(&portal, result, "/console/tokens?done=revoked")
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
            // Every notice links to the page of the thing it is about.
            json!({"id": m.id, "kind": m.kind, "title": crate::present::one_language(&m.title, ctx.lang),
                   "body": crate::present::one_language(&m.body, ctx.lang), "link": m.link.as_deref().map(page_link),
                   "created_at": m.created_at, "read": m.read_at.is_some()})
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
    let filter = citydata_domain::audit::AuditFilter {
        actor: ctx.q("actor").map(str::to_string),
        action: ctx.q("action").map(str::to_string),
        target: ctx.q("target").map(str::to_string),
        outcome: ctx.q("outcome").and_then(citydata_domain::audit::Outcome::parse),
        ..Default::default()
    };
    let page: u64 = ctx.q("page").and_then(|x| x.parse().ok()).filter(|x| *x >= 1).unwrap_or(1).min(1_000_000);
    let listing = match state.core.list_audit(&p, &filter, 50, (page - 1) * 50).await {
        Ok(l) => l,
        Err(e) => return ctx.core_error(&portal, e),
    };
    let chain = state.core.verify_audit(&p).await.ok();
    // People and things by name, each target linked to the thing it is about.
    let mut people: Vec<String> = listing.entries.iter().filter_map(|e| e.event.actor.clone()).collect();
    people.extend(
        listing.entries.iter().filter_map(|e| e.event.target.as_deref()?.strip_prefix("user:").map(str::to_string)),
    );
    let names = super::sharing::Names::load(&state, &p, people).await;
    let mut resources: std::collections::HashMap<String, (String, String)> = Default::default();
    if let Ok((_, list)) = state.core.list_resources(Some(&p), &ListFilter::default(), 1000, 0).await {
        for r in list {
            let v = (r.content.name.clone(), r.content.slug.as_str().to_string());
            resources.insert(r.content.code.to_string(), v.clone());
            resources.insert(r.id.to_string(), v);
        }
    }
    let entries: Vec<Value> = listing
        .entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["actor_name"] = json!(e.event.actor.as_deref().map(|a| names.person(a)));
            v["target_view"] = audit_target(e.event.target.as_deref(), &names, &resources, &ctx);
            v
        })
        .collect();
    let pages = listing.total.div_ceil(50).max(1);
    ctx.render(
        &portal,
        "console/audit.html",
        json!({"entries": entries, "total": listing.total, "page": page, "pages": pages, "actions": audit_actions(ctx.lang),
               "chain": serde_json::to_value(chain).unwrap_or_default(),
               "f": {"actor": ctx.q("actor"), "action": ctx.q("action"), "target": ctx.q("target"), "outcome": ctx.q("outcome")}}),
    )
}

/// An audit target (`kind:id`) as a label and, where there is a page, a link.
fn audit_target(
    target: Option<&str>,
    names: &super::sharing::Names,
    resources: &std::collections::HashMap<String, (String, String)>,
    ctx: &Ctx,
) -> Value {
    let Some(t) = target else { return Value::Null };
    let (kind, id) = t.split_once(':').unwrap_or(("", t));
    let (label, href) = match kind {
        "resource" => match resources.get(id) {
            Some((name, slug)) => (name.clone(), Some(format!("/datasets/{}", urlencode(slug)))),
            None => (ctx.m("target_resource"), None),
        },
        "request" => (ctx.m("target_request"), Some(format!("/console/requests/{}", urlencode(id)))),
        "grant" => (ctx.m("target_grant"), Some("/console/grants".to_string())),
        "token" => (ctx.m("target_token"), None),
        "user" => (names.person(id), None),
        "email" => (id.to_string(), None),
        "department" => (names.dept(id), Some(format!("/departments/{}", urlencode(id)))),
        "webhook" => (ctx.m("target_webhook"), None),
        "subscription" => (ctx.m("target_subscription"), None),
        _ => (t.to_string(), None),
    };
    json!({"label": label, "href": href, "code": t})
}

/// The action filter's choices, by family (the API filters by prefix).
fn audit_actions(lang: crate::i18n::Lang) -> Vec<Value> {
    let zh = lang == crate::i18n::Lang::Zh;
    [
        ("auth.", "登录与退出", "Sign-in and sign-out"),
        ("data.", "数据读取与上传", "Data reads and uploads"),
        ("resource.", "数据资源", "Resources"),
        ("request.", "共享申请", "Requests"),
        ("grant.", "授权", "Grants"),
        ("token.", "API 令牌", "API tokens"),
        ("user.", "用户", "Users"),
        ("department.", "部门", "Departments"),
        ("webhook.", "推送地址", "Webhooks"),
        ("catalog.", "目录导入", "Catalog import"),
    ]
    .iter()
    .map(|(v, z, e)| json!({"value": v, "label": if zh { z } else { e }}))
    .collect()
}

/// The page for an API path a notice names (requests, grants, resources).
fn page_link(api: &str) -> String {
    // Absolute links (under `public_base_url`) are reduced to their path first.
    let path = api.find("/api/").map(|i| &api[i..]).unwrap_or(api);
    if let Some(id) = path.strip_prefix("/api/v1/requests/") {
        format!("/console/requests/{id}")
    } else if let Some(id) = path.strip_prefix("/api/v1/tickets/") {
        format!("/console/tickets/{id}")
    } else if path.starts_with("/api/v1/grants") {
        "/console/grants".into()
    } else if let Some(id) = path.strip_prefix("/api/v1/resources/") {
        format!("/datasets/{}", id.split('/').next().unwrap_or(id))
    } else {
        path.to_string()
    }
}
