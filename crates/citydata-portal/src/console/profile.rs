//! `/console/profile`: who one is on the platform (name, sign-in name, departments and roles)
//! and changing one's password, which ends one's other sessions.

use super::P;
use super::sharing::Names;
use crate::ctx::Ctx;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use citydata_api::{AppState, SESSION_COOKIE};
use citydata_core::CoreError;
use citydata_domain::principal::Principal;
use citydata_domain::user::Role;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: String,
}

fn role_key(r: Role) -> &'static str {
    match r {
        Role::Admin => "role_admin",
        Role::DeptAdmin => "role_dept_admin",
        Role::Steward => "role_steward",
        Role::Analyst => "role_analyst",
    }
}

async fn render(
    state: &AppState,
    portal: &crate::render::Portal,
    ctx: &Ctx,
    p: &Principal,
    status: StatusCode,
    errors: Value,
) -> Response {
    let names = Names::load(state, p, Vec::new()).await;
    let memberships: Vec<Value> = p
        .memberships
        .iter()
        .map(|m| json!({"department": names.dept(m.department.as_str()), "code": m.department.as_str(), "role": ctx.m(role_key(m.role))}))
        .collect();
    // Public users sign in with their email; their generated username means nothing to them.
    let public = p.memberships.is_empty();
    ctx.render_status(
        portal,
        status,
        "console/profile.html",
        json!({"me": {"name": p.display_name, "username": (!public).then(|| p.username.to_string()), "public": public},
               "memberships": memberships, "errors": errors, "done": ctx.q("done")}),
    )
}

pub async fn profile(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    render(&state, &portal, &ctx, &p, StatusCode::OK, json!({})).await
}

/// `POST /console/profile/password`: a refusal comes back with the reason by the field (the
/// passwords themselves are never echoed back).
pub async fn change_password(
    State(state): State<AppState>,
    Extension(portal): P,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    if f.new_password != f.confirm_password {
        let errors = json!({"confirm_password": ctx.m("password_mismatch")});
        return render(&state, &portal, &ctx, &p, StatusCode::BAD_REQUEST, errors).await;
    }
    let cookie = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    match state.core.change_password(&ctx.meta, &p, cookie.as_deref(), &f.current_password, &f.new_password).await {
        Ok(_) => ctx.redirect("/console/profile?done=password"),
        Err(e @ CoreError::Validation(_)) => {
            let errors = ctx.field_errors(&e);
            render(&state, &portal, &ctx, &p, StatusCode::BAD_REQUEST, errors).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
