//! 统一身份认证 in the browser: `/auth/oidc/{provider}/login` sends the browser to the provider
//! (binding the sign-in's state to it with a short cookie), `/auth/oidc/{provider}/callback`
//! finishes the sign-in and sets the session cookie. Both are plain redirects: no script.

use crate::ctx::{Ctx, safe_next};
use crate::i18n::Lang;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use citydata_api::AppState;
use citydata_core::oidc::OidcCallback;
use serde_json::{Value, json};
use std::sync::Arc;

/// The cookie holding the state of this browser's sign-in under way.
pub const STATE_COOKIE: &str = "citydata_oidc_state";

fn callback_url(state: &AppState, headers: &HeaderMap, provider: &str) -> String {
    format!("{}/auth/oidc/{provider}/callback", state.base_url(headers))
}

fn with_cookie(mut resp: Response, cookie: Cookie<'static>) -> Response {
    if let Ok(v) = cookie.to_string().parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The providers for the login page, titled in the page's language.
pub async fn providers(state: &AppState, lang: Lang) -> Value {
    let list = state.core.oidc_providers().await;
    Value::Array(
        list.into_iter()
            .map(|p| {
                let title = if lang == Lang::En { p.title_en } else { p.title };
                json!({"name": p.name, "title": title, "available": p.available})
            })
            .collect(),
    )
}

/// The login page again, with `error` (a sign-in that failed) and the status it deserves.
async fn login_error(state: &AppState, portal: &Portal, ctx: &Ctx, e: citydata_core::CoreError) -> Response {
    let api = citydata_api::ApiError::from(e);
    let message = crate::present::one_language(&api.message, ctx.lang);
    let providers = providers(state, ctx.lang).await;
    ctx.render_status(
        portal,
        api.status,
        "login.html",
        json!({"next": "/console", "error": message, "providers": providers, "local_login": true}),
    )
}

pub async fn login(
    State(state): State<AppState>,
    Extension(portal): Extension<Arc<Portal>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ctx: Ctx,
) -> Response {
    let next = safe_next(ctx.q("next"));
    let redirect = callback_url(&state, &headers, &provider);
    match state.core.oidc_begin(&provider, &redirect, &next).await {
        Ok(start) => {
            let cookie = Cookie::build((STATE_COOKIE, start.state))
                .path("/auth/oidc/")
                .http_only(true)
                // Lax: the provider's redirect back is a top-level GET from another site.
                .same_site(SameSite::Lax)
                .secure(state.cookie_secure)
                .max_age(time::Duration::minutes(10))
                .build();
            with_cookie(ctx.redirect(&start.authorize_url), cookie)
        }
        Err(e) => login_error(&state, &portal, &ctx, e).await,
    }
}

pub async fn callback(
    State(state): State<AppState>,
    Extension(portal): Extension<Arc<Portal>>,
    Path(provider): Path<String>,
    Query(cb): Query<OidcCallback>,
    headers: HeaderMap,
    ctx: Ctx,
) -> Response {
    let jar = CookieJar::from_headers(&headers);
    let browser_state = jar.get(STATE_COOKIE).map(|c| c.value().to_string());
    let redirect = callback_url(&state, &headers, &provider);
    let gone = Cookie::build((STATE_COOKIE, "")).path("/auth/oidc/").max_age(time::Duration::ZERO).build();
    match state.core.oidc_finish(&ctx.meta, &provider, &redirect, &cb, browser_state.as_deref()).await {
        Ok(done) => {
            let max_age = (done.session.expires_at - chrono::Utc::now()).num_seconds().max(0);
            let cookie = Cookie::build((citydata_api::SESSION_COOKIE, done.session.cookie_value))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(state.cookie_secure)
                .max_age(time::Duration::seconds(max_age))
                .build();
            let next = safe_next(Some(&done.next));
            with_cookie(with_cookie(ctx.redirect(&next), cookie), gone)
        }
        Err(e) => with_cookie(login_error(&state, &portal, &ctx, e).await, gone),
    }
}
