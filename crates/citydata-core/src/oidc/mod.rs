//! 统一身份认证: sign-in through OpenID Connect providers (authorization-code flow with PKCE).
//!
//! `oidc_begin` keeps the state (as its hash), the nonce and the PKCE verifier server-side for
//! ten minutes and sends the browser to the provider; `oidc_finish` takes the state back (once:
//! the row is deleted as it is read), exchanges the code, verifies the ID token against the
//! provider's keys (refetched once when the token names a key the cached set lacks, so key
//! rotation is followed), and opens a session for the account linked to (issuer, subject),
//! creating it at first sign-in. Department and roles come from configured claims at every
//! sign-in unless a department admin pinned them.

pub mod config;

use crate::audit::Actor;
use crate::auth::{NewSession, random_secret, sha256_hex};
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::user::{Membership, Role, Username};
use citydata_store::{NewUser, OidcIdentity, OidcStateRecord};
pub use config::{LocalLogin, OidcSettings, ProviderSettings, UnmappedDepartment};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, JsonWebKeySet, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a sign-in may take between the redirect to the provider and the callback.
const STATE_TTL_MINUTES: i64 = 10;
/// A discovery document is kept this long; a failed discovery is retried after `DOWN_FOR`.
const METADATA_FOR: Duration = Duration::from_secs(600);
const DOWN_FOR: Duration = Duration::from_secs(15);
/// The stored hash of an account made by a provider: no PHC string, so no password matches.
const NO_PASSWORD: &str = "!oidc";

/// The providers and what is known of them on this node.
pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone)]
enum Cached {
    Up(Box<ProviderMetadataWithLogout>, Instant),
    Down(Instant),
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("providers", &self.settings.providers.keys().collect::<Vec<_>>()).finish()
    }
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Self {
        // No redirects followed (the oauth2 crate's advice: a redirecting token endpoint could
        // send the code elsewhere); short timeouts, so that a provider that is down costs the
        // login page little.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { settings, http, cache: Mutex::default() }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    fn provider(&self, name: &str) -> Result<&ProviderSettings, CoreError> {
        self.settings
            .providers
            .get(name)
            .ok_or_else(|| CoreError::NotFound(format!("没有身份提供方 {name} / no identity provider {name}")))
    }

    /// The provider's discovery document (with its keys), from the cache when fresh.
    async fn metadata(&self, name: &str, refresh: bool) -> Result<ProviderMetadataWithLogout, CoreError> {
        let p = self.provider(name)?;
        let cached = self.cache.lock().map(|c| c.get(name).cloned()).unwrap_or(None);
        match cached {
            Some(Cached::Up(m, at)) if !refresh && at.elapsed() < METADATA_FOR => return Ok(*m),
            Some(Cached::Down(at)) if !refresh && at.elapsed() < DOWN_FOR => return Err(unavailable(p)),
            _ => {}
        }
        let issuer = IssuerUrl::new(p.issuer.clone()).map_err(|_| unavailable(p))?;
        let found = ProviderMetadataWithLogout::discover_async(issuer, &self.http).await;
        let mut cache = self.cache.lock().map_err(|_| CoreError::Internal("oidc cache poisoned".into()))?;
        match found {
            Ok(m) => {
                cache.insert(name.to_string(), Cached::Up(Box::new(m.clone()), Instant::now()));
                Ok(m)
            }
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "OpenID provider discovery failed");
                cache.insert(name.to_string(), Cached::Down(Instant::now()));
                Err(unavailable(p))
            }
        }
    }

    /// Fetch the provider's keys again (a token named a key the cached set lacks).
    async fn refetch_keys(
        &self,
        name: &str,
        meta: ProviderMetadataWithLogout,
    ) -> Result<ProviderMetadataWithLogout, CoreError> {
        let p = self.provider(name)?;
        let keys = JsonWebKeySet::fetch_async(meta.jwks_uri(), &self.http).await.map_err(|e| {
            tracing::warn!(provider = name, error = %e, "fetching the provider's keys failed");
            unavailable(p)
        })?;
        let meta = meta.set_jwks(keys);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.to_string(), Cached::Up(Box::new(meta.clone()), Instant::now()));
        }
        Ok(meta)
    }

    fn client(&self, name: &str, meta: ProviderMetadataWithLogout, redirect: &str) -> Result<Client, CoreError> {
        let p = self.provider(name)?;
        let redirect = RedirectUrl::new(redirect.to_string()).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(p.client_id.clone()),
            p.client_secret.as_ref().map(|s| openidconnect::ClientSecret::new(s.0.clone())),
        )
        .set_redirect_uri(redirect))
    }
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn unavailable(p: &ProviderSettings) -> CoreError {
    CoreError::Storage {
        code: "provider_unavailable",
        message: format!(
            "身份提供方“{}”暂时无法使用，请稍后再试或使用本地账号登录 / the identity provider {} is unavailable; try again later or sign in with a local account",
            p.name,
            p.name_en.as_deref().unwrap_or(&p.name)
        ),
        retry_after_secs: Some(DOWN_FOR.as_secs()),
    }
}

fn bad_state(reason_zh: &str, reason_en: &str) -> CoreError {
    CoreError::Input {
        code: "invalid_state",
        message: format!("登录请求无效：{reason_zh} / invalid sign-in request: {reason_en}"),
        line: None,
        column: None,
    }
}

fn bad_token(reason: impl std::fmt::Display) -> CoreError {
    CoreError::Unauthenticated(format!(
        "身份提供方的 ID 令牌未通过校验，登录被拒绝 / the provider's ID token failed verification: {reason}"
    ))
}

/// A provider as the login page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub title: String,
    pub title_en: String,
    pub available: bool,
}

/// Where to send the browser, and the state to bind to it (a cookie).
#[derive(Debug)]
pub struct OidcStart {
    pub authorize_url: String,
    pub state: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default, serde::Deserialize)]
pub struct OidcCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A finished sign-in: the session and where to go.
#[derive(Debug)]
pub struct OidcSignedIn {
    pub session: NewSession,
    pub next: String,
}

/// The claims a sign-in read, after verification.
struct Signed {
    issuer: String,
    subject: String,
    display_name: String,
    claims: Value,
    raw: String,
}

impl Core {
    /// The configured providers and whether each answers discovery now.
    pub async fn oidc_providers(&self) -> Vec<ProviderStatus> {
        let mut out = vec![];
        for (name, p) in &self.oidc.settings.providers {
            let available = self.oidc.metadata(name, false).await.is_ok();
            out.push(ProviderStatus {
                name: name.clone(),
                title: p.name.clone(),
                title_en: p.name_en.clone().unwrap_or_else(|| p.name.clone()),
                available,
            });
        }
        out
    }

    /// Whether any provider is configured.
    pub fn oidc_configured(&self) -> bool {
        !self.oidc.settings.providers.is_empty()
    }

    /// Start a sign-in: keep state, nonce and PKCE verifier, and build the provider's URL.
    pub async fn oidc_begin(&self, provider: &str, redirect_uri: &str, next: &str) -> Result<OidcStart, CoreError> {
        let p = self.oidc.provider(provider)?;
        let meta = self.oidc.metadata(provider, false).await?;
        let client = self.oidc.client(provider, meta, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_secret(32);
        let nonce = random_secret(32);
        let (s, n) = (state.clone(), nonce.clone());
        let mut req = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || CsrfToken::new(s), move || Nonce::new(n))
            .set_pkce_challenge(challenge);
        for s in p.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, _, _) = req.url();
        let now = Utc::now();
        self.store
            .put_oidc_state(&OidcStateRecord {
                state_hash: sha256_hex(&state),
                provider: provider.to_string(),
                nonce,
                pkce_verifier: verifier.secret().clone(),
                next: next.to_string(),
                created_at: now,
                expires_at: now + chrono::Duration::minutes(STATE_TTL_MINUTES),
            })
            .await?;
        Ok(OidcStart { authorize_url: url.to_string(), state })
    }

    /// Finish a sign-in at the callback. `browser_state` is the state the browser's cookie
    /// holds: a callback carrying another browser's state is refused (login CSRF).
    pub async fn oidc_finish(
        &self,
        meta: &RequestMeta,
        provider: &str,
        redirect_uri: &str,
        cb: &OidcCallback,
        browser_state: Option<&str>,
    ) -> Result<OidcSignedIn, CoreError> {
        let target = Some(format!("oidc:{provider}"));
        let result = self.oidc_finish_inner(meta, provider, redirect_uri, cb, browser_state).await;
        match result {
            Ok(r) => Ok(r),
            Err(e) => self.audited(meta, Actor::Anonymous, "auth.oidc", target, Err(e)).await,
        }
    }

    async fn oidc_finish_inner(
        &self,
        meta: &RequestMeta,
        provider: &str,
        redirect_uri: &str,
        cb: &OidcCallback,
        browser_state: Option<&str>,
    ) -> Result<OidcSignedIn, CoreError> {
        let p = self.oidc.provider(provider)?.clone();
        let Some(state) = cb.state.as_deref().filter(|s| !s.is_empty()) else {
            return Err(bad_state("缺少 state 参数", "the state parameter is missing"));
        };
        // Taken (deleted) before anything else: a replay finds nothing, whatever happens next.
        let Some(saved) = self.store.take_oidc_state(&sha256_hex(state)).await? else {
            return Err(bad_state(
                "state 未知或已使用过（请重新登录）",
                "unknown or already used state (sign in again)",
            ));
        };
        if saved.expires_at <= Utc::now() {
            return Err(bad_state("登录请求已过期（请重新登录）", "the sign-in request expired (sign in again)"));
        }
        if saved.provider != provider {
            return Err(bad_state("state 属于另一个身份提供方", "the state belongs to another provider"));
        }
        if browser_state != Some(state) {
            return Err(bad_state("state 不属于此浏览器", "the state was not issued to this browser"));
        }
        if let Some(err) = &cb.error {
            let desc = cb.error_description.as_deref().unwrap_or("");
            return Err(CoreError::Unauthenticated(format!(
                "身份提供方拒绝了登录：{err} {desc} / the provider refused the sign-in: {err} {desc}"
            )));
        }
        let Some(code) = cb.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(bad_state("缺少 code 参数", "the code parameter is missing"));
        };
        let meta_doc = self.oidc.metadata(provider, false).await?;
        let client = self.oidc.client(provider, meta_doc.clone(), redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| unavailable(&p))?
            .set_pkce_verifier(PkceCodeVerifier::new(saved.pkce_verifier.clone()))
            .request_async(&self.oidc.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider, error = %e, "OpenID token exchange failed");
                CoreError::Unauthenticated(
                    "身份提供方未能兑换授权码，请重新登录 / the provider did not redeem the code; sign in again".into(),
                )
            })?;
        let id_token = token.id_token().ok_or_else(|| bad_token("no id_token"))?.clone();
        let nonce = Nonce::new(saved.nonce.clone());
        let signed = match verify(&client, &id_token, &nonce) {
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider rotated its keys: fetch them once and check again.
                let meta_doc = self.oidc.refetch_keys(provider, meta_doc).await?;
                let client = self.oidc.client(provider, meta_doc, redirect_uri)?;
                verify(&client, &id_token, &nonce).map_err(bad_token)?
            }
            other => other.map_err(bad_token)?,
        };
        let session = self.oidc_account(meta, provider, &p, signed).await?;
        Ok(OidcSignedIn { session, next: saved.next })
    }

    /// The account linked to the signed claims (made at first sign-in), refreshed from the
    /// claims unless pinned, and a new session for it.
    async fn oidc_account(
        &self,
        meta: &RequestMeta,
        provider: &str,
        p: &ProviderSettings,
        s: Signed,
    ) -> Result<NewSession, CoreError> {
        let now = Utc::now();
        let memberships = self.oidc_memberships(meta, provider, p, &s).await?;
        let user = match self.store.find_oidc_identity(&s.issuer, &s.subject).await? {
            Some(link) => {
                let m = (!link.roles_pinned).then_some(memberships.as_slice());
                self.store.refresh_oidc_user(link.user_id, &s.display_name, m, now).await?;
                self.store
                    .get_user(link.user_id)
                    .await?
                    .ok_or_else(|| CoreError::Internal("linked user gone".into()))?
            }
            None => {
                let digest = sha256_hex(&format!("{}|{}", s.issuer, s.subject));
                let username = Username::parse(&format!("{provider}-{}", &digest[..12]))?;
                let id = uuid::Uuid::now_v7();
                let new = NewUser {
                    id,
                    username,
                    display_name: s.display_name.clone(),
                    password_hash: NO_PASSWORD.into(),
                    memberships: memberships.clone(),
                    created_at: now,
                };
                let link = OidcIdentity {
                    issuer: s.issuer.clone(),
                    subject: s.subject.clone(),
                    provider: provider.to_string(),
                    user_id: id,
                    roles_pinned: false,
                    created_at: now,
                    last_login_at: now,
                };
                self.store.create_oidc_user(&new, &link).await?;
                self.store.get_user(id).await?.ok_or_else(|| CoreError::Internal("new user gone".into()))?
            }
        };
        if user.disabled {
            return Err(CoreError::Forbidden("此账号已停用 / this account is disabled".into()));
        }
        let (session, id_hash) = self.open_session(meta, user).await?;
        self.store.put_oidc_session(&id_hash, provider, &s.raw).await?;
        self.record(
            meta,
            Actor::Principal(&session.principal),
            "auth.login",
            Some(format!("user:{}", session.principal.username)),
            Outcome::Success,
            json!({"via": "oidc", "provider": provider, "subject": s.subject}),
        )
        .await?;
        Ok(session)
    }

    /// The memberships the claims give: department from `department_claim`, roles from
    /// `roles_claim`. A department no mapping finds is audited (`auth.oidc.unmapped`), so the
    /// platform admins see it, and either leaves the account without a department or refuses.
    async fn oidc_memberships(
        &self,
        meta: &RequestMeta,
        provider: &str,
        p: &ProviderSettings,
        s: &Signed,
    ) -> Result<Vec<Membership>, CoreError> {
        let Some(claim) = &p.department_claim else {
            return Ok(vec![]);
        };
        let values = claim_values(&s.claims, claim);
        let mut dept = None;
        for v in &values {
            let code = p.department_map.get(v).cloned().unwrap_or_else(|| v.clone());
            if let Ok(c) = DeptCode::parse(&code)
                && self.store.get_department(&c).await?.is_some()
            {
                dept = Some(c);
                break;
            }
        }
        let Some(dept) = dept else {
            let refuse = p.unmapped_department == UnmappedDepartment::Refuse;
            let outcome = if refuse { Outcome::Denied } else { Outcome::Success };
            self.record(
                meta,
                Actor::Name(&format!("{provider}:{}", s.subject)),
                "auth.oidc.unmapped",
                Some(format!("oidc:{provider}")),
                outcome,
                json!({"claim": claim, "values": values, "display_name": s.display_name,
                       "result": if refuse { "refused" } else { "public" }}),
            )
            .await?;
            if refuse {
                return Err(CoreError::Forbidden(format!(
                    "您的单位（{}）未在本平台登记，请联系平台管理员 / your organization ({}) is not registered here; contact the platform administrators",
                    values.join("、"),
                    values.join(", ")
                )));
            }
            return Ok(vec![]);
        };
        let mut roles: Vec<Role> = vec![];
        if let Some(rc) = &p.roles_claim {
            for v in claim_values(&s.claims, rc) {
                let name = p.role_map.get(&v).cloned().unwrap_or(v);
                match Role::parse(&name) {
                    Ok(Role::Admin) | Err(_) => {}
                    Ok(r) if !roles.contains(&r) => roles.push(r),
                    Ok(_) => {}
                }
            }
        }
        if roles.is_empty() {
            roles.push(Role::parse(&p.default_role).unwrap_or(Role::Analyst));
        }
        Ok(roles.into_iter().map(|role| Membership { department: dept.clone(), role }).collect())
    }

    /// The provider's logout URL for the session behind `cookie_value` when a provider opened
    /// it and its discovery document has an `end_session_endpoint` (RP-initiated logout).
    pub async fn oidc_logout_url(&self, cookie_value: &str, post_logout_redirect: &str) -> Option<String> {
        let (provider, id_token) = self.store.get_oidc_session(&sha256_hex(cookie_value)).await.ok()??;
        let p = self.oidc.provider(&provider).ok()?;
        let meta = self.oidc.metadata(&provider, false).await.ok()?;
        let end = meta.additional_metadata().end_session_endpoint.clone()?;
        let hint: CoreIdToken = id_token.parse().ok()?;
        let mut req = openidconnect::LogoutRequest::from(end)
            .set_id_token_hint(&hint)
            .set_client_id(ClientId::new(p.client_id.clone()));
        if let Ok(u) = PostLogoutRedirectUrl::new(post_logout_redirect.to_string()) {
            req = req.set_post_logout_redirect_uri(u);
        }
        Some(req.http_get_url().to_string())
    }

    /// Pin (or, with no roles, unpin) the roles of an account a provider made: the account's
    /// department admins and platform admins only; sign-ins then leave the memberships alone.
    pub async fn pin_oidc_roles(
        &self,
        meta: &RequestMeta,
        principal: &citydata_domain::principal::Principal,
        user_id: uuid::Uuid,
        roles: &[String],
    ) -> Result<citydata_domain::user::User, CoreError> {
        let result = async {
            let not_found = || CoreError::NotFound("没有此统一认证账号 / no such signed-in account".into());
            let link = self.store.oidc_identity_of(user_id).await?.ok_or_else(not_found)?;
            let user = self.store.get_user(link.user_id).await?.ok_or_else(not_found)?;
            let dept = user.memberships.first().map(|m| m.department.clone());
            let allowed = principal.is_admin() || dept.as_ref().is_some_and(|d| principal.has_role(d, Role::DeptAdmin));
            if !allowed {
                // Others learn nothing of the account.
                return Err(not_found());
            }
            let mut errs = citydata_domain::ValidationErrors::new();
            let mut parsed = vec![];
            for (i, r) in roles.iter().enumerate() {
                match Role::parse(r) {
                    Ok(Role::Admin) | Err(_) => errs.push(citydata_domain::FieldError::new(
                        format!("roles[{i}]"),
                        "invalid_role",
                        "角色须为 dept_admin、steward 或 analyst / a role is dept_admin, steward or analyst",
                    )),
                    Ok(r) if !parsed.contains(&r) => parsed.push(r),
                    Ok(_) => {}
                }
            }
            if !roles.is_empty() && dept.is_none() {
                errs.push(citydata_domain::FieldError::new(
                    "roles",
                    "no_department",
                    "此账号不属于任何部门 / the account belongs to no department",
                ));
            }
            errs.into_result()?;
            let memberships: Vec<Membership> = match &dept {
                Some(d) if !parsed.is_empty() => {
                    parsed.iter().map(|r| Membership { department: d.clone(), role: *r }).collect()
                }
                _ => user.memberships.clone(),
            };
            self.store.pin_oidc_roles(user_id, &memberships, !parsed.is_empty()).await?;
            self.store.get_user(user_id).await?.ok_or_else(not_found)
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "user.pin_roles", Some(format!("user:{user_id}")), result).await
    }
}

/// Verify the ID token (signature by the provider's keys, issuer, audience, expiry, nonce) and
/// read its claims; the extra claims (organization, groups) come from the verified payload.
fn verify(
    client: &Client,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<Signed, openidconnect::ClaimsVerificationError> {
    let verifier = client.id_token_verifier();
    let c = id_token.claims(&verifier, nonce)?;
    let raw = id_token.to_string();
    use base64::Engine;
    let claims = raw
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let display_name = c
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_string())
        .or_else(|| c.preferred_username().map(|u| u.as_str().to_string()))
        .unwrap_or_else(|| c.subject().as_str().to_string());
    Ok(Signed {
        issuer: c.issuer().as_str().to_string(),
        subject: c.subject().as_str().to_string(),
        display_name: display_name.chars().take(100).collect(),
        claims,
        raw,
    })
}

/// The values of a claim: a string, a number, or an array of them.
fn claim_values(claims: &Value, name: &str) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match claims.get(name) {
        Some(Value::Array(a)) => a.iter().filter_map(one).filter(|s| !s.is_empty()).collect(),
        Some(v) => one(v).into_iter().filter(|s| !s.is_empty()).collect(),
        None => vec![],
    }
}

/// The runtime for `settings` (shared by the clones of a `Core`).
pub fn runtime(settings: OidcSettings) -> Arc<Oidc> {
    Arc::new(Oidc::new(settings))
}
