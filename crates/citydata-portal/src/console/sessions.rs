//! 登录会话 (one's sessions): where each was opened, when last used, and ending one.

use super::*;
use axum_extra::extract::CookieJar;

pub async fn sessions(State(state): State<AppState>, Extension(portal): P, jar: CookieJar, ctx: Ctx) -> Response {
    let p = login!(ctx);
    let cookie = jar.get(citydata_api::SESSION_COOKIE).map(|c| c.value().to_string());
    let list = match state.core.list_sessions(&p, None, cookie.as_deref()).await {
        Ok(v) => v,
        Err(e) => return ctx.core_error(&portal, e),
    };
    ctx.render(&portal, "console/sessions.html", json!({"sessions": list, "done": ctx.q("done")}))
}

pub async fn end_session(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let result = state.core.end_session(&ctx.meta, &p, &id).await;
    ctx.done(&portal, result, "/console/sessions?done=ended")
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    Extension(portal): P,
    jar: CookieJar,
    ctx: Ctx,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let cookie = jar.get(citydata_api::SESSION_COOKIE).map(|c| c.value().to_string());
    let result = state.core.end_other_sessions(&ctx.meta, &p, cookie.as_deref()).await;
    ctx.done(&portal, result, "/console/sessions?done=ended")
}
