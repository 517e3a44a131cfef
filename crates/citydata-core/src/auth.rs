//! Login, logout and authentication of session cookies and API tokens.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use base64::Engine;
use chrono::{DateTime, Utc};
use citydata_domain::principal::{AuthMethod, Principal};
use citydata_domain::user::{User, Username};
use citydata_store::SessionRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new session: the cookie value (shown once, never stored) and when it expires.
#[derive(Debug)]
pub struct NewSession {
    pub cookie_value: String,
    pub expires_at: DateTime<Utc>,
    pub principal: Principal,
    /// Recovery codes of a second factor this login just enrolled (shown once), else empty.
    pub recovery_codes: Vec<String>,
}

/// The prefix every API token starts with, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cd_";

pub(crate) fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn principal(user: User, via: AuthMethod) -> Principal {
    Principal {
        user_id: user.id,
        username: user.username,
        display_name: user.display_name,
        memberships: user.memberships,
        via,
    }
}

fn bad_credentials() -> CoreError {
    CoreError::Unauthenticated("用户名或密码错误 / wrong username or password".into())
}

impl Core {
    /// Check a username and password and open a session. Every attempt is audited; repeated
    /// failures are refused for a while (429): per username and client, per client whatever
    /// the usernames (one client trying many accounts), and per username whatever the clients
    /// (many clients trying one account). The client is `meta.client`, which the HTTP layer
    /// takes from `X-Forwarded-For` only behind a trusted proxy.
    pub async fn login(&self, meta: &RequestMeta, username: &str, password: &str) -> Result<NewSession, CoreError> {
        self.login_with_code(meta, username, password, None).await
    }

    /// [`Core::login`] with the second step: `totp_code` is a code of the user's authenticator
    /// app or a recovery code (see [`crate::totp`]).
    pub async fn login_with_code(
        &self,
        meta: &RequestMeta,
        username: &str,
        password: &str,
        totp_code: Option<&str>,
    ) -> Result<NewSession, CoreError> {
        let now = Utc::now();
        let user_key = username.trim().to_lowercase();
        let client_key = meta.client.as_deref().unwrap_or("").to_string();
        let key = format!("{user_key}|{client_key}");
        let store = self.store.as_ref();
        let blocked = [
            self.login_limiter.blocked(store, &key, now).await?,
            self.login_client_limiter.blocked(store, &client_key, now).await?,
            self.login_user_limiter.blocked(store, &user_key, now).await?,
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after_secs) = blocked {
            let r = Err(CoreError::RateLimited { retry_after_secs });
            return self.audited(meta, Actor::Name(username), "auth.login", None, r).await;
        }
        // Public users log in with their email.
        let found = if username.contains('@') {
            self.store.get_user_by_email(username).await?
        } else {
            match Username::parse(username) {
                Ok(u) => self.store.get_user_by_username(&u).await?,
                Err(_) => None,
            }
        };
        let (user, hash) = match found {
            Some((u, h)) if !u.disabled => (Some(u), Some(h)),
            _ => (None, None),
        };
        let ok = match self.passwords.verify(password.to_string(), hash).await {
            Ok(ok) => ok,
            Err(e) => return self.audited(meta, Actor::Name(username), "auth.login", None, Err(e)).await,
        };
        // A service account holds tokens only; it never signs in, whatever its stored hash.
        let service = match &user {
            Some(u) if ok => self.is_service_account(u.id).await?,
            _ => false,
        };
        let user = match (ok && !service, user) {
            (true, Some(u)) => u,
            _ => {
                self.login_limiter.record_failure(store, &key, now).await?;
                self.login_client_limiter.record_failure(store, &client_key, now).await?;
                self.login_user_limiter.record_failure(store, &user_key, now).await?;
                return self.audited(meta, Actor::Name(username), "auth.login", None, Err(bad_credentials())).await;
            }
        };
        // With a provider configured, staff may be sent there (`oidc.local_login`).
        if !self.local_password_allowed(&user) {
            let e = CoreError::Forbidden(
                "本平台工作人员请通过统一身份认证登录 / staff sign in through the unified identity provider".into(),
            );
            return self.audited(meta, Actor::Name(username), "auth.login", None, Err(e)).await;
        }
        let recovery_codes = match self.second_factor(&user, totp_code).await {
            Ok(codes) => codes,
            Err(e) => {
                if e.code() == "totp_invalid" {
                    self.login_limiter.record_failure(store, &key, now).await?;
                    self.login_user_limiter.record_failure(store, &user_key, now).await?;
                }
                return self.audited(meta, Actor::Name(username), "auth.login", None, Err(e)).await;
            }
        };
        // Cleared only after the second factor too, so codes cannot be guessed past the limits.
        self.login_limiter.clear(store, &key).await?;
        let (mut session, _) = self.open_session(meta, user).await?;
        session.recovery_codes = recovery_codes;
        let p = &session.principal;
        self.record(
            meta,
            Actor::Principal(p),
            "auth.login",
            Some(format!("user:{}", p.username)),
            citydata_domain::audit::Outcome::Success,
            serde_json::json!({}),
        )
        .await?;
        Ok(session)
    }

    /// Open a session for `user` (not audited: the caller records how the user signed in).
    /// Returns the session and the stored hash of its cookie.
    pub(crate) async fn open_session(&self, meta: &RequestMeta, user: User) -> Result<(NewSession, String), CoreError> {
        let now = Utc::now();
        let cookie_value = random_secret(32);
        let expires_at = now + self.config.session_ttl;
        let record =
            SessionRecord { id_hash: sha256_hex(&cookie_value), user_id: user.id, created_at: now, expires_at };
        self.store.create_session(&record).await?;
        self.describe_new_session(meta, &record.id_hash).await?;
        let p = principal(user, AuthMethod::Session);
        Ok((NewSession { cookie_value, expires_at, principal: p, recovery_codes: vec![] }, record.id_hash))
    }

    /// Whether `user` may sign in with a local password: always, unless a provider is
    /// configured with `local_login = "operators"`; then only the listed operators and people
    /// without a department (the public) may.
    pub fn local_password_allowed(&self, user: &User) -> bool {
        let o = &self.config.oidc;
        o.providers.is_empty()
            || o.local_login == crate::oidc::LocalLogin::All
            || user.memberships.is_empty()
            || o.operators.iter().any(|n| n.trim().eq_ignore_ascii_case(user.username.as_str()))
    }

    /// End the session behind `cookie_value`.
    pub async fn logout(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        cookie_value: Option<&str>,
    ) -> Result<(), CoreError> {
        if let Some(v) = cookie_value {
            self.store.delete_session(&sha256_hex(v)).await?;
        }
        self.audited(
            meta,
            Actor::Principal(principal),
            "auth.logout",
            Some(format!("user:{}", principal.username)),
            Ok(()),
        )
        .await
    }

    /// Change one's own password: the current one must be right (failures count against the
    /// same limits as logins), the new one must meet the rules; every other session of the
    /// user ends (the one behind `cookie_value` stays).
    pub async fn change_password(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        cookie_value: Option<&str>,
        current: &str,
        new: &str,
    ) -> Result<u64, CoreError> {
        let result = async {
            let now = Utc::now();
            let key = principal.username.to_string();
            if let Some(retry_after_secs) = self.login_user_limiter.blocked(self.store.as_ref(), &key, now).await? {
                return Err(CoreError::RateLimited { retry_after_secs });
            }
            let hash = self.store.get_user_by_username(&principal.username).await?.map(|(_, h)| h);
            let mut errs = citydata_domain::ValidationErrors::new();
            if !self.passwords.verify(current.to_string(), hash).await? {
                self.login_user_limiter.record_failure(self.store.as_ref(), &key, now).await?;
                errs.push(citydata_domain::FieldError::new(
                    "current_password",
                    "wrong_password",
                    "当前密码不正确 / the current password is wrong",
                ));
            }
            let new = match citydata_domain::user::Password::parse(new) {
                Ok(p) => Some(p),
                Err(e) => {
                    errs.push(citydata_domain::FieldError { field: "new_password".into(), ..e });
                    None
                }
            };
            errs.into_result()?;
            let phc = self.passwords.hash(new.expect("checked").expose().to_string()).await?;
            self.store.set_password_hash(principal.user_id, &phc).await?;
            let keep = cookie_value.map(sha256_hex);
            Ok(self.store.delete_user_sessions(principal.user_id, keep.as_deref()).await?)
        }
        .await;
        self.audited(
            meta,
            Actor::Principal(principal),
            "user.password",
            Some(format!("user:{}", principal.username)),
            result,
        )
        .await
    }

    /// The principal of a live session cookie, or `None`.
    pub async fn authenticate_session(&self, cookie_value: &str) -> Result<Option<Principal>, CoreError> {
        let Some(s) = self.live_session(&sha256_hex(cookie_value)).await? else {
            return Ok(None);
        };
        let user = self.store.get_user(s.user_id).await?;
        Ok(user.filter(|u| !u.disabled).map(|u| principal(u, AuthMethod::Session)))
    }

    /// The principal of a valid API token (`cd_...`), or `None` when unknown, expired or revoked.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<Principal>, CoreError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let now = Utc::now();
        let Some(t) = self.store.get_token_by_hash(&sha256_hex(token)).await? else {
            return Ok(None);
        };
        if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let Some(user) = self.store.get_user(t.user_id).await?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        // Record use at most once a minute, to keep reads cheap.
        if t.last_used_at.is_none_or(|l| now - l > chrono::Duration::minutes(1)) {
            self.store.touch_token(t.id, now).await?;
        }
        let limits = crate::tokens::limits_of(&t);
        Ok(Some(principal(user, AuthMethod::Token { token_id: t.id, token_name: t.name, limits })))
    }

    /// A principal for the command line acting directly on the data directory.
    pub async fn cli_principal(&self, username: &str) -> Result<Principal, CoreError> {
        let u = Username::parse(username)?;
        let (user, _) = self
            .store
            .get_user_by_username(&u)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("用户不存在：{u} / no such user: {u}")))?;
        Ok(principal(user, AuthMethod::Cli))
    }
}

/// The operator at the command line of the server machine, acting on the data directory with
/// platform rights. `name` is what the audit log and revisions record (e.g. `cli`, `system`).
pub fn operator(name: &str) -> Principal {
    Principal {
        user_id: uuid::Uuid::nil(),
        username: Username::parse(name).unwrap_or_else(|_| Username::parse("cli").expect("static")),
        display_name: "命令行操作员 / operator".into(),
        memberships: vec![citydata_domain::user::Membership {
            department: citydata_domain::dept::DeptCode::parse("dsjzx").expect("static"),
            role: citydata_domain::user::Role::Admin,
        }],
        via: AuthMethod::Cli,
    }
}
