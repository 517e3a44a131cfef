//! One's own things: API tokens and the inbox; for platform admins, the audit log.

use super::*;

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
