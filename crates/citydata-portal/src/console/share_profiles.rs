//! 共享凭证 (Delta Sharing profiles) in the console: create one and download its profile file
//! (the token is in the file, shown only in that download), list and revoke them.

use super::*;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;

pub async fn share_profiles(State(state): State<AppState>, Extension(portal): P, ctx: Ctx) -> Response {
    let p = login!(ctx);
    share_profiles_page(&state, &portal, &ctx, &p, StatusCode::OK, None, json!({})).await
}

async fn share_profiles_page(
    state: &AppState,
    portal: &Portal,
    ctx: &Ctx,
    p: &citydata_domain::principal::Principal,
    status: StatusCode,
    error: Option<String>,
    kept: Value,
) -> Response {
    let list = state.core.list_sharing_profiles(p).await.unwrap_or_default();
    let view: Vec<Value> = list
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at, "expires_at": t.expires_at,
                        "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some()}))
        .collect();
    let share = citydata_core::sharing::protocol::share_name(p);
    ctx.render_status(
        portal,
        status,
        "console/share_profiles.html",
        json!({"profiles": view, "error": error, "v": kept, "done": ctx.q("done"), "share": share}),
    )
}

#[derive(Deserialize)]
pub struct ShareProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
}

/// Create a profile and answer with its file as a download (`config.share`).
pub async fn create_share_profile(
    State(state): State<AppState>,
    Extension(portal): P,
    headers: HeaderMap,
    ctx: Ctx,
    Form(f): Form<ShareProfileForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    let days = f.days.trim().parse::<i64>().ok();
    match state.core.create_sharing_profile(&ctx.meta, &p, &f.name, days).await {
        Ok(c) => {
            let file = citydata_api::v1::sharing::profile_file(&state, &headers, c.token, c.record.expires_at);
            let body = serde_json::to_string_pretty(&file).unwrap_or_default();
            let mut r = (StatusCode::OK, body).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
            h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"config.share\""));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e @ CoreError::Validation(_)) => {
            let msg = citydata_api::ApiError::from(e).message_with_fields();
            let kept = json!({"name": f.name, "days": f.days});
            share_profiles_page(&state, &portal, &ctx, &p, StatusCode::BAD_REQUEST, Some(msg), kept).await
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// The confirmation step before a profile is revoked.
pub async fn revoke_share_profile_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Response {
    let p = login!(ctx);
    let list = state.core.list_sharing_profiles(&p).await.unwrap_or_default();
    let Some(t) = list.iter().find(|t| t.id.to_string() == id && t.revoked_at.is_none()) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    super::revoke_credential_page(
        &ctx,
        &portal,
        "revoke_share_profile",
        (&t.name, &t.prefix),
        "/console/sharing-profiles",
        &id,
    )
}

pub async fn revoke_share_profile(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(id): Path<String>,
    ctx: Ctx,
    Form(f): Form<super::ConfirmForm>,
) -> Response {
    let p = login!(ctx);
    csrf!(ctx, &f.csrf);
    if !f.confirmed() {
        return ctx.redirect(&format!("/console/sharing-profiles/{}/revoke", urlencode(&id)));
    }
    let Ok(uid) = uuid::Uuid::parse_str(&id) else {
        return ctx.error_page(&portal, StatusCode::NOT_FOUND, &ctx.m("error_not_found"));
    };
    let result = state.core.revoke_sharing_profile(&ctx.meta, &p, uid).await;
    ctx.done(&portal, result, "/console/sharing-profiles?done=revoked")
}
