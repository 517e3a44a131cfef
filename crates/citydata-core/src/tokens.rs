//! API tokens: random secrets shown once, stored only as SHA-256, recognisable by `cd_`.
//! A token carries scopes and optionally a resource list ([`citydata_domain::scope`]); a
//! token made without `scopes` (and every token from before scopes existed) keeps every
//! scope, as tokens always had. A token may only mint tokens within its own limits.

use crate::audit::Actor;
use crate::auth::{TOKEN_PREFIX, random_secret, sha256_hex};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use citydata_domain::principal::Principal;
use citydata_domain::scope::{Scope, TokenLimits};
use citydata_domain::{FieldError as FE, ValidationErrors};
use citydata_store::TokenRecord;
use std::collections::BTreeSet;
use uuid::Uuid;

/// What a new token should carry: `scopes: None` is every scope; `resources` are ids or codes.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub name: String,
    pub scopes: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub expires_in_days: Option<i64>,
}

/// A token just created: the secret is in `token` and is never shown again.
#[derive(Debug)]
pub struct CreatedToken {
    pub token: String,
    pub record: TokenView,
}

/// A token as its owner sees it (never its secret or hash).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The scopes; `null` for a token made without scopes, which has every one.
    pub scopes: Option<Vec<Scope>>,
    /// The resources the token is limited to (ids); `null` for every resource.
    pub resources: Option<Vec<Uuid>>,
}

/// A stored token's limits (unknown scope words and unparsable ids narrow, never widen).
pub fn limits_of(t: &TokenRecord) -> TokenLimits {
    TokenLimits {
        scopes: t.scopes.as_deref().map(Scope::parse_stored),
        resources: t
            .resources
            .as_deref()
            .map(|r| r.split_whitespace().filter_map(|w| Uuid::parse_str(w).ok()).collect()),
    }
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        let limits = limits_of(&t);
        Self {
            scopes: limits.scopes.map(|s| s.into_iter().collect()),
            resources: limits.resources.map(|r| r.into_iter().collect()),
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

impl Core {
    /// Create an unrestricted token acting for `principal` (the console and the command line),
    /// expiring after `expires_in_days` when given.
    pub async fn create_token(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        name: &str,
        expires_in_days: Option<i64>,
    ) -> Result<CreatedToken, CoreError> {
        let req = TokenRequest { name: name.to_string(), expires_in_days, ..Default::default() };
        self.create_scoped_token(meta, principal, &req).await
    }

    /// Create a token acting for `principal` with the scopes and resources asked for.
    pub async fn create_scoped_token(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        req: &TokenRequest,
    ) -> Result<CreatedToken, CoreError> {
        let result = self.issue_token(principal, principal.user_id, req).await;
        let target = result.as_ref().ok().map(|c| format!("token:{}", c.record.id));
        let mut details = serde_json::Map::new();
        if let Ok(c) = &result {
            details.insert("token_name".into(), c.record.name.clone().into());
            details.insert("scopes".into(), serde_json::json!(c.record.scopes));
            details.insert("resources".into(), serde_json::json!(c.record.resources));
        }
        self.audited_with(meta, Actor::Principal(principal), "token.create", target, details, result).await
    }

    /// Validate `req` and store a token for `owner`, within `caller`'s own limits.
    pub(crate) async fn issue_token(
        &self,
        caller: &Principal,
        owner: Uuid,
        req: &TokenRequest,
    ) -> Result<CreatedToken, CoreError> {
        let mut errs = ValidationErrors::new();
        let name = req.name.trim();
        let n = name.chars().count();
        if n == 0 || n > 100 || name.chars().any(char::is_control) {
            errs.push(FE::new(
                "name",
                "invalid_token_name",
                "令牌名称须为 1–100 个字符 / token name must be 1–100 characters",
            ));
        }
        let max = i64::from(self.config.token_max_days);
        if let Some(d) = req.expires_in_days
            && !(1..=max).contains(&d)
        {
            errs.push(FE::new(
                "expires_in_days",
                "invalid_expiry",
                format!("有效期须为 1–{max} 天 / expires_in_days must be between 1 and {max}"),
            ));
        }
        let scopes = match &req.scopes {
            None => None,
            Some(list) if list.is_empty() => {
                errs.push(FE::new("scopes", "invalid_scope", "至少选择一个权限范围 / choose at least one scope"));
                None
            }
            Some(list) => {
                let mut set = BTreeSet::new();
                for (i, s) in list.iter().enumerate() {
                    match Scope::parse(s) {
                        Ok(s) => {
                            set.insert(s);
                        }
                        Err(e) => errs.push(FE { field: format!("scopes[{i}]"), ..e }),
                    }
                }
                Some(set)
            }
        };
        let resources = match &req.resources {
            None => None,
            Some(list) if list.is_empty() || list.len() > 100 => {
                errs.push(FE::new(
                    "resources",
                    "invalid_resources",
                    "资源清单须有 1–100 项 / resources must list 1 to 100 resources",
                ));
                None
            }
            Some(list) => {
                let mut set = BTreeSet::new();
                for (i, key) in list.iter().enumerate() {
                    // Only a resource the caller can see in the catalog: the answer for an
                    // unknown one and a hidden one is the same.
                    match self.get_resource(Some(caller), key).await {
                        Ok(r) => {
                            set.insert(r.id);
                        }
                        Err(CoreError::NotFound(_)) => errs.push(FE::new(
                            format!("resources[{i}]"),
                            "unknown_resource",
                            format!("资源不存在：{key} / no such resource: {key}"),
                        )),
                        Err(e) => return Err(e),
                    }
                }
                Some(set)
            }
        };
        errs.into_result()?;
        let limits = TokenLimits { scopes, resources };
        if !caller.limits().covers(&limits) {
            return Err(CoreError::InsufficientScope(
                "令牌不能签发超出自身权限范围的令牌 / a token cannot issue a token beyond its own scopes and resources"
                    .into(),
            ));
        }
        let now = Utc::now().trunc_subsecs(6);
        let token = format!("{TOKEN_PREFIX}{}", random_secret(30));
        let record = TokenRecord {
            id: Uuid::now_v7(),
            user_id: owner,
            name: name.to_string(),
            prefix: token.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            secret_hash: sha256_hex(&token),
            created_at: now,
            expires_at: req.expires_in_days.map(|d| now + Duration::days(d)),
            last_used_at: None,
            revoked_at: None,
            scopes: limits.scopes.as_ref().map(Scope::to_stored),
            resources: limits.resources.as_ref().map(|r| r.iter().map(Uuid::to_string).collect::<Vec<_>>().join(" ")),
        };
        self.store.create_token(&record).await?;
        Ok(CreatedToken { token, record: record.into() })
    }

    /// The principal's own tokens (secrets are never returned).
    pub async fn list_tokens(&self, principal: &Principal) -> Result<Vec<TokenView>, CoreError> {
        Ok(self.store.list_tokens(principal.user_id).await?.into_iter().map(TokenView::from).collect())
    }

    /// Revoke one of the principal's own tokens.
    pub async fn revoke_token(&self, meta: &RequestMeta, principal: &Principal, id: Uuid) -> Result<(), CoreError> {
        let result = async {
            if self.store.revoke_token(principal.user_id, id, Utc::now().trunc_subsecs(6)).await? {
                Ok(())
            } else {
                Err(CoreError::NotFound(format!("令牌不存在或已撤销：{id} / no such active token: {id}")))
            }
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "token.revoke", Some(format!("token:{id}")), result).await
    }
}
