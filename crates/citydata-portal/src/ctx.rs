//! What every page knows about its request: the language, the caller, the CSRF token, the
//! request facts for the audit log; and the answers pages give (pages, redirects, errors).

use crate::i18n::Lang;
use crate::render::Portal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use citydata_api::ApiError;
use citydata_api::extract::MaybeAuth;
use citydata_core::{CoreError, RequestMeta};
use citydata_domain::principal::Principal;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;

/// The CSRF cookie: `<random hex>.<HMAC of it under the server secret>`; forms echo it.
pub const CSRF_COOKIE: &str = "citydata_csrf";
const LANG_COOKIE: &str = "citydata_lang";

pub struct Ctx {
    pub lang: Lang,
    pub principal: Option<Principal>,
    pub csrf: String,
    pub meta: RequestMeta,
    /// Path and query of this request (for the language switch and `next=`).
    pub path: String,
    query: Vec<(String, String)>,
    set_cookies: Vec<Cookie<'static>>,
    portal: Arc<Portal>,
}

fn sign(secret: &[u8], nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"csrf:");
    mac.update(nonce.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `token` is one this server issued.
pub fn csrf_valid(secret: &[u8], token: &str) -> bool {
    let Some((nonce, sig)) = token.split_once('.') else { return false };
    let Ok(sig) = hex::decode(sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"csrf:");
    mac.update(nonce.as_bytes());
    nonce.len() == 32 && mac.verify_slice(&sig).is_ok()
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let portal = parts
            .extensions
            .get::<Arc<Portal>>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let jar = CookieJar::from_request_parts(parts, state).await.unwrap_or_default();
        let principal = parts.extensions.get::<MaybeAuth>().and_then(|a| a.0.clone());
        let citydata_api::extract::Meta(meta) =
            citydata_api::extract::Meta::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let mut set_cookies = Vec::new();
        let from_query = query.iter().find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::parse(v));
        let lang = if let Some(l) = from_query {
            set_cookies.push(
                Cookie::build((LANG_COOKIE, l.code()))
                    .path("/")
                    .same_site(SameSite::Lax)
                    .max_age(time::Duration::days(365))
                    .build(),
            );
            l
        } else if let Some(l) = jar.get(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
            l
        } else {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
                .unwrap_or(Lang::Zh)
        };
        let csrf = match jar.get(CSRF_COOKIE).map(|c| c.value().to_string()) {
            Some(t) if csrf_valid(&portal.secret, &t) => t,
            _ => {
                let nonce = hex::encode(rand::random::<[u8; 16]>());
                let t = format!("{nonce}.{}", sign(&portal.secret, &nonce));
                set_cookies.push(
                    Cookie::build((CSRF_COOKIE, t.clone()))
                        .path("/")
                        .http_only(true)
                        .same_site(SameSite::Strict)
                        .secure(portal.cookie_secure)
                        .build(),
                );
                t
            }
        };
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        Ok(Ctx { lang, principal, csrf, meta, path, query, set_cookies, portal })
    }
}

impl Ctx {
    /// A message of the catalog in this request's language.
    pub fn m(&self, key: &str) -> String {
        self.portal.message(self.lang, key)
    }

    /// A query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    /// The signed-in caller, or a redirect to the login page that comes back here.
    // The error is the page to answer with; it is built only on that path, so boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn require_login(&self) -> Result<&Principal, Response> {
        self.principal.as_ref().ok_or_else(|| self.redirect(&format!("/login?next={}", urlencode(&self.path))))
    }

    /// A form's token must be the one in the cookie, and one this server issued.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, form_token: &str) -> Result<(), Response> {
        if !form_token.is_empty() && form_token == self.csrf && csrf_valid(&self.portal.secret, form_token) {
            Ok(())
        } else {
            Err(self.error_page(&self.portal, StatusCode::FORBIDDEN, &self.m("error_csrf")))
        }
    }

    fn finish(&self, mut resp: Response) -> Response {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    /// The context every template gets, merged with the page's own values.
    pub fn context(&self, page: Value) -> Value {
        let p = &self.portal;
        let (switch_path, switch_query) = match self.path.split_once('?') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (self.path.clone(), String::new()),
        };
        let kept: Vec<String> = url::form_urlencoded::parse(switch_query.as_bytes())
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| format!("{}={}", urlencode(&k), urlencode(&v)))
            .chain(std::iter::once(format!("lang={}", self.lang.other().code())))
            .collect();
        let mut base = json!({
            "m": p.catalog(self.lang),
            "lang": self.lang.tag(),
            "lang_code": self.lang.code(),
            "switch_url": format!("{switch_path}?{}", kept.join("&")),
            "csrf": self.csrf,
            "path": self.path,
            "page_path": switch_path,
            "site": {
                "name": if self.lang == Lang::En { &p.config.site_name_en } else { &p.config.site_name },
                "logo": p.config.logo_url,
                "primary": p.config.primary_color,
            },
            "css": p.css_path,
            "options": crate::present::options(self.lang),
            "user": self.principal.as_ref().map(|u| json!({
                "name": u.display_name, "username": u.username.to_string(), "admin": u.is_admin(),
                "member": !u.memberships.is_empty(),
                "steward": u.is_admin() || u.memberships.iter().any(|m| matches!(m.role,
                    citydata_domain::user::Role::Steward | citydata_domain::user::Role::DeptAdmin | citydata_domain::user::Role::Admin)),
                "departments": u.memberships.iter().map(|m| m.department.to_string()).collect::<Vec<_>>(),
                "manager": u.is_admin() || u.memberships.iter().any(|m| m.role == citydata_domain::user::Role::DeptAdmin),
            })),
        });
        if let (Some(b), Value::Object(extra)) = (base.as_object_mut(), page) {
            b.extend(extra);
        }
        base
    }

    /// Render `template` with the page's values.
    pub fn render(&self, portal: &Portal, template: &str, page: Value) -> Response {
        self.render_status(portal, StatusCode::OK, template, page)
    }

    pub fn render_status(&self, portal: &Portal, status: StatusCode, template: &str, page: Value) -> Response {
        match portal.render(template, self.context(page)) {
            Ok(html) => self.finish(
                (
                    status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
                    html,
                )
                    .into_response(),
            ),
            Err(e) => {
                tracing::error!(template, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    pub fn error_page(&self, portal: &Portal, status: StatusCode, message: &str) -> Response {
        self.render_status(portal, status, "error.html", json!({"status": status.as_u16(), "message": message}))
    }

    /// A use case's error as a page: the API's status and message (never internals).
    pub fn core_error(&self, portal: &Portal, e: CoreError) -> Response {
        if matches!(e, CoreError::Unauthenticated(_)) {
            return self.redirect(&format!("/login?next={}", urlencode(&self.path)));
        }
        let api = ApiError::from(e);
        self.error_page(portal, api.status, &crate::present::one_language(&api.message, self.lang))
    }

    /// The answer to a form post: on success 303 to `to`; a validation failure as a 400 page
    /// naming each field; any other error as its page.
    pub fn done<T>(&self, portal: &Portal, result: Result<T, CoreError>, to: &str) -> Response {
        match result {
            Ok(_) => self.redirect(to),
            Err(e @ CoreError::Validation(_)) => {
                let api = ApiError::from(e);
                self.error_page(
                    portal,
                    StatusCode::BAD_REQUEST,
                    &crate::present::one_language(&api.message_with_fields(), self.lang),
                )
            }
            Err(e) => self.core_error(portal, e),
        }
    }

    /// 303 See Other to `to` (after a form post).
    pub fn redirect(&self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response())
    }

    /// Field errors of a validation failure, by field name, in the page's language, for
    /// showing next to the fields.
    pub fn field_errors(&self, e: &CoreError) -> Value {
        let mut out = serde_json::Map::new();
        if let CoreError::Validation(v) = e {
            for f in &v.0 {
                out.insert(f.field.clone(), Value::String(crate::present::one_language(&f.message, self.lang)));
            }
        }
        Value::Object(out)
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only paths on this site may be `next=` targets (no open redirects): a single leading `/`,
/// not `//` or `/\` (which browsers read as another host), no backslash, no control character
/// (browsers drop tabs and newlines, so `/\t/evil` becomes `//evil`; CR/LF would split the
/// `Location` header), at most 2,000 characters. Anything else goes to `/console`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2000 =>
        {
            n.to_string()
        }
        _ => "/console".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_is_a_path_on_this_site() {
        use super::safe_next;
        assert_eq!(safe_next(Some("/datasets?q=a")), "/datasets?q=a");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\r\nSet-Cookie: x=1",
            "/\t/evil.example",
            "https://evil",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
