//! Request middleware: request facts and the audit safety net, authentication, metrics.

use crate::extract::MaybeAuth;
use crate::{ApiError, AppState, SESSION_COOKIE};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use citydata_core::RequestMeta;
use citydata_core::audit::Actor;
use citydata_domain::audit::Outcome;
use std::net::SocketAddr;
use std::time::Instant;

fn is_mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Build the [`RequestMeta`] (request id, client address) for the handlers, and after the
/// response, audit any mutating `/api` request that no use case audited — the ones refused
/// before reaching one (malformed body, 401, 413, 415, unknown route).
pub async fn request_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect::<String>());
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| {
        citydata_core::net::client_address(c.0.ip(), forwarded.as_deref(), &state.trusted_proxies).to_string()
    });
    let mut meta = RequestMeta::new(request_id, client);
    meta.user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().filter(|c| !c.is_control()).take(200).collect());
    req.extensions_mut().insert(meta.clone());
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().chars().take(200).collect());
    let audit = is_mutating(&method) && path.starts_with("/api/");
    let resp = next.run(req).await;
    if audit && !meta.was_audited() {
        let status = resp.status();
        let outcome = match status {
            s if s.is_success() => Outcome::Success,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => Outcome::Denied,
            _ => Outcome::Failure,
        };
        let principal = resp.extensions().get::<MaybeAuth>().and_then(|m| m.0.clone());
        let actor = match &principal {
            Some(p) => Actor::Principal(p),
            None => Actor::Anonymous,
        };
        let details = serde_json::json!({ "status": status.as_u16() });
        if let Err(e) =
            state.core.record(&meta, actor, "http.rejected", Some(format!("{method} {path}")), outcome, details).await
        {
            tracing::error!(error = %e, "audit append failed");
            // `store_unavailable` stays a 503; anything else is a 500 without detail.
            return ApiError::from(e).into_response();
        }
    }
    resp
}

/// Resolve the caller from `Authorization: Bearer cd_...` (or CKAN's bare `Authorization:
/// cd_...`) or the session cookie. A presented token that is not valid is refused with 401
/// `invalid_token`; a stale cookie is ignored (the caller is anonymous).
pub async fn authenticate(State(state): State<AppState>, jar: CookieJar, mut req: Request, next: Next) -> Response {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim().to_string());
    // A CKAN client gets CKAN's envelope for these refusals too (same status and code).
    let (base, path) = (state.base_url(req.headers()), req.uri().path().to_string());
    let refuse = |e: ApiError| crate::ckan::refusal(&base, &path, e);
    let principal = if let Some(tok) = header_token {
        match state.core.authenticate_token(&tok).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                return refuse(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "API 令牌无效、已过期或已撤销 / the API token is invalid, expired or revoked",
                ));
            }
            Err(e) => return refuse(ApiError::from(e)),
        }
    } else if let Some(c) = jar.get(SESSION_COOKIE) {
        match state.core.authenticate_session(c.value()).await {
            Ok(p) => p,
            Err(e) => return refuse(ApiError::from(e)),
        }
    } else {
        None
    };
    let auth = MaybeAuth(principal);
    req.extensions_mut().insert(auth.clone());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(auth);
    resp
}

/// Headers that keep browsers from guessing content types, leaking URLs to other sites and
/// framing or scripting the pages: `X-Content-Type-Options: nosniff` and `Referrer-Policy:
/// same-origin` on every response; on HTML pages also the `Content-Security-Policy` in the
/// state (no inline script or style, no framing) and `X-Frame-Options: DENY` for old browsers.
pub async fn security_headers(State(csp): State<HeaderValue>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    if html {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}

/// The portal's `Content-Security-Policy`: everything from this origin only (images may also
/// come from `extra_img_origin`, the configured logo's), no inline script or style, no plugins,
/// forms post only here, and no other site may frame the pages.
pub fn content_security_policy(extra_img_origin: Option<&str>) -> HeaderValue {
    let img = extra_img_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'self'; img-src 'self' data:{img}; style-src 'self'; script-src 'self'; object-src 'none'; \
         base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
    })
}

/// Count requests by route, method and status; observe latency by route.
pub async fn metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(start.elapsed().as_secs_f64());
    resp
}
