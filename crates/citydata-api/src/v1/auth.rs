use super::views::MeView;
use crate::error::ErrorEnvelope;
use crate::extract::{ApiJson, Auth, Meta};
use crate::{ApiError, AppState, SESSION_COOKIE};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// 动态口令: a code of the authenticator app, or a recovery code (administrators, when
    /// `totp_required_for_admins` is set).
    #[serde(default)]
    pub totp_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: MeView,
    pub expires_at: DateTime<Utc>,
    /// Recovery codes of the second factor this login enrolled: shown once, each usable once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
}

/// Log in with a username and password; sets the session cookie (HttpOnly, SameSite=Lax).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse, description = "Logged in; the session cookie is set"),
        (status = 401, body = ErrorEnvelope, description = "Wrong username or password, or a second factor is needed (`totp_required`, `totp_invalid`, `totp_enrolment_required` with `details.secret`, `details.otpauth_uri`, `details.qr_svg`)"),
        (status = 403, body = ErrorEnvelope, description = "Staff must sign in through the identity provider"),
        (status = 429, body = ErrorEnvelope, description = "Too many failed attempts"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let s = state.core.login_with_code(&meta, &body.username, &body.password, body.totp_code.as_deref()).await?;
    let max_age = (s.expires_at - Utc::now()).num_seconds().max(0);
    let cookie = Cookie::build((SESSION_COOKIE, s.cookie_value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookie_secure)
        .max_age(time_duration(max_age));
    let body =
        LoginResponse { user: MeView::from(&s.principal), expires_at: s.expires_at, recovery_codes: s.recovery_codes };
    Ok((jar.add(cookie), Json(body)))
}

fn time_duration(secs: i64) -> time::Duration {
    time::Duration::seconds(secs)
}

/// End the current session and clear the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    let value = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    state.core.logout(&meta, &p, value.as_deref()).await?;
    let removal = Cookie::build((SESSION_COOKIE, "")).path("/").http_only(true).same_site(SameSite::Lax);
    Ok((StatusCode::NO_CONTENT, jar.remove(removal)))
}

/// Who am I: the authenticated user and its roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = MeView), (status = 401, body = ErrorEnvelope)),
    security(("session" = []), ("bearer" = [])))]
pub async fn me(Auth(p): Auth) -> Json<MeView> {
    Json(MeView::from(&p))
}

/// Register as a member of the public (email and password). Limited to a few registrations per
/// client address an hour. Log in afterwards with the email as the username.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = citydata_core::accounts::RegisterInput,
    responses((status = 201, body = super::views::UserView), (status = 400, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn register(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<citydata_core::accounts::RegisterInput>,
) -> Result<(StatusCode, Json<super::views::UserView>), ApiError> {
    let u = state.core.register_public(&meta, &body).await?;
    Ok((StatusCode::CREATED, Json(u.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// How many other sessions of the user were ended.
    pub sessions_ended: u64,
}

/// Change one's own password (the current one is required); every other session of the user
/// ends, the calling session stays.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 200, body = PasswordChanged, description = "Changed; other sessions ended"),
        (status = 400, body = ErrorEnvelope, description = "Wrong current password or a new one that breaks the rules"),
        (status = 401, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope, description = "Too many wrong passwords"),
    ),
    security(("session" = []), ("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    jar: CookieJar,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let cookie = jar.get(SESSION_COOKIE).map(|c| c.value().to_string());
    let n =
        state.core.change_password(&meta, &p, cookie.as_deref(), &body.current_password, &body.new_password).await?;
    Ok(Json(PasswordChanged { sessions_ended: n }))
}
