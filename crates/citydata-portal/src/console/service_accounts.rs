//! 服务账号 in the console: a department admin (or a platform admin) registers an application's
//! identity and gives it tokens. The token form asks what the application does and offers the
//! least scopes that work for it — read the catalog, read data, or upload data — always limited
//! to the resources named (none named: the catalog only), over the same use cases as the API.

use super::*;
use citydata_core::service_accounts::NewServiceAccountInput;
use citydata_domain::user::Role;

/// The departments the caller manages: (code, name).
async fn managed_departments(state: &AppState, p: &citydata_domain::principal::Principal) -> Vec<Value> {
    let names = state.core.department_names().await.unwrap_or_default();
    let mut codes: Vec<String> = if p.is_admin() {
        names.keys().cloned().collect()
    } else {
        p.memberships.iter().filter(|m| m.role == Role::DeptAdmin).map(|m| m.department.to_string()).collect()
    };
    codes.sort();
    codes.dedup();
    codes.into_iter().map(|c| json!({"code": c, "name": names.get(&c).cloned().unwrap_or_else(|| c.clone())})).collect()
}

fn manages_any(p: &citydata_domain::principal::Principal) -> bool {
    p.is_admin() || p.memberships.iter().any(|m| m.role == Role::DeptAdmin)
}

async fn list_page(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    status: StatusCode,
    error: Option<String>,
    kept: Value,
) -> Response {
    let list = state.core.list_service_accounts(p).await.unwrap_or_default();
    let names = state.core.department_names().await.unwrap_or_default();
    let rows: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({"id": a.id, "username": a.username, "display_name": a.display_name,
                   "department": names.get(&a.department).cloned().unwrap_or_else(|| a.department.clone()),
                   "description": a.description, "created_by": a.created_by, "created_at": a.created_at, "disabled": a.disabled})
        })
        .collect();
    ctx.render_status(
        portal,
        status,
        "console/service_accounts.html",
        json!({"accounts": rows, "departments": managed_departments(state, p).await, "error": error, "v": kept}),
    )
}

pub async fn service_accounts(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    if !manages_any(&p) {
        return ctx.error_page(&portal, StatusCode::FORBIDDEN, &ctx.m("sa_forbidden"));
    }
    list_page(&state, &portal, &ctx, &p, StatusCode::OK, None, Value::Null).await
}

#[derive(Deserialize)]
pub struct NewServiceAccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    description: String,
}

pub async fn create_service_account(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    Form(f): Form<NewServiceAccountForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let input = NewServiceAccountInput {
        username: f.username.clone(),
        display_name: f.display_name.clone(),
        department: f.department.clone(),
        role: Some(if f.role == "steward" { "steward".into() } else { "analyst".into() }),
        description: Some(f.description.clone()),
    };
    match state.core.create_service_account(&ctx.meta, &p, &input).await {
        Ok(a) => ctx.redirect(&format!("/console/service-accounts/{}", a.id)),
        Err(e @ CoreError::Validation(_)) => {
            let msg = citydata_api::ApiError::from(e).message_with_fields();
            let kept = json!({"username": f.username, "display_name": f.display_name, "department": f.department,
                              "role": f.role, "description": f.description});
            list_page(&state, &portal, &ctx, &p, StatusCode::BAD_REQUEST, Some(msg), kept).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// The scopes a stated use needs, and no more.
fn scopes_for(purpose: &str) -> Vec<String> {
    match purpose {
        "catalog" => vec!["catalog:read".into()],
        "upload" => vec!["catalog:read".into(), "data:write".into()],
        _ => vec!["catalog:read".into(), "data:read".into()],
    }
}

#[allow(clippy::too_many_arguments)]
async fn account_page(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    id: uuid::Uuid,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
    kept: Value,
) -> Response {
    let Some(a) = state.core.list_service_accounts(p).await.unwrap_or_default().into_iter().find(|a| a.id == id) else {
        return ctx.error_page(portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let tokens = match state.core.list_service_account_tokens(p, id).await {
        Ok(t) => t,
        Err(e) => return ctx.core_error(portal, e),
    };
    let view: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let scopes: Option<Vec<String>> =
                t.scopes.as_ref().map(|s| s.iter().map(|x| ctx.m(&format!("scope_{}", x.as_str().replace(':', "_")))).collect());
            json!({"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                   "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some(), "scopes": scopes,
                   "resources": t.resources})
        })
        .collect();
    let names = state.core.department_names().await.unwrap_or_default();
    // The applications registry's entries that call citydata as this account.
    let apps: Vec<Value> = state
        .core
        .list_applications(Some(p), None)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x.department == a.department && x.service_account.as_deref() == Some(a.username.as_str()))
        .map(|x| json!({"id": x.id, "name": x.name, "scenario": x.scenario}))
        .collect();
    ctx.render_status(
        portal,
        status,
        "console/service_account.html",
        json!({"a": {"id": a.id, "username": a.username, "display_name": a.display_name, "description": a.description,
                     "department": names.get(&a.department).cloned().unwrap_or_else(|| a.department.clone())},
               "tokens": view, "applications": apps, "created": created, "error": error, "v": kept, "done": ctx.q("done")}),
    )
}

pub async fn service_account(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    account_page(&state, &portal, &ctx, &p, id, StatusCode::OK, None, None, Value::Null).await
}

#[derive(Deserialize)]
pub struct ServiceTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    resources: String,
    #[serde(default)]
    days: String,
}

pub async fn create_service_account_token(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<ServiceTokenForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let resources: Vec<String> =
        f.resources.split([',', '，', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    // Data scopes need the resources they are for: without any, the token reads the catalog only.
    let scopes = if resources.is_empty() { scopes_for("catalog") } else { scopes_for(&f.purpose) };
    let req = citydata_core::tokens::TokenRequest {
        name: f.name.clone(),
        scopes: Some(scopes),
        resources: (!resources.is_empty()).then_some(resources),
        expires_in_days: f.days.trim().parse::<i64>().ok(),
    };
    match state.core.create_service_account_token(&ctx.meta, &p, id, &req).await {
        // Shown once, on this answer (not a redirect), never again.
        Ok(t) => {
            account_page(&state, &portal, &ctx, &p, id, StatusCode::CREATED, Some(t.token), None, Value::Null).await
        }
        Err(e @ CoreError::Validation(_)) => {
            let msg = citydata_api::ApiError::from(e).message_with_fields();
            let kept = json!({"name": f.name, "purpose": f.purpose, "resources": f.resources, "days": f.days});
            account_page(&state, &portal, &ctx, &p, id, StatusCode::BAD_REQUEST, None, Some(msg), kept).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

pub async fn revoke_service_account_token_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path((id, token)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let Ok(sa) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let list = state.core.list_service_account_tokens(&p, sa).await.unwrap_or_default();
    let Some(t) = list.iter().find(|t| t.id.to_string() == token && t.revoked_at.is_none()) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let back = format!("/console/service-accounts/{sa}");
    super::revoke_credential_page(&ctx, &portal, "revoke_token", (&t.name, &t.prefix), &back, &token)
}

pub async fn revoke_service_account_token(
    State(state): State<AppState>,
    Extension(portal): P,
    Path((id, token)): Path<(String, String)>,
    ctx: Ctx,
    Form(f): Form<super::ConfirmForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let (Ok(sa), Ok(tid)) = (uuid::Uuid::parse_str(&id), uuid::Uuid::parse_str(&token)) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    if !f.confirmed() {
        return ctx.redirect(&format!("/console/service-accounts/{sa}/{tid}/revoke"));
    }
    let result = state.core.revoke_service_account_token(&ctx.meta, &p, sa, tid).await;
    ctx.done(&portal, result, &format!("/console/service-accounts/{sa}?done=revoked"))
}
