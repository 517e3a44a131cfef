//! API tokens: random secrets shown once, stored only as SHA-256, recognisable by `cd_`.

use crate::audit::Actor;
use crate::auth::{TOKEN_PREFIX, random_secret, sha256_hex};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use citydata_domain::FieldError;
use citydata_domain::principal::Principal;
use citydata_store::TokenRecord;
use uuid::Uuid;

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
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
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
    /// Create a token acting for `principal`, expiring after `expires_in_days` when given.
    pub async fn create_token(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        name: &str,
        expires_in_days: Option<i64>,
    ) -> Result<CreatedToken, CoreError> {
        let result = async {
            let name = name.trim();
            let n = name.chars().count();
            if n == 0 || n > 100 || name.chars().any(char::is_control) {
                return Err(FieldError::new(
                    "name",
                    "invalid_token_name",
                    "令牌名称须为 1–100 个字符 / token name must be 1–100 characters",
                )
                .into());
            }
            let max = i64::from(self.config.token_max_days);
            if let Some(d) = expires_in_days
                && !(1..=max).contains(&d)
            {
                return Err(FieldError::new(
                    "expires_in_days",
                    "invalid_expiry",
                    format!("有效期须为 1–{max} 天 / expires_in_days must be between 1 and {max}"),
                )
                .into());
            }
            let now = Utc::now().trunc_subsecs(6);
            let token = format!("{TOKEN_PREFIX}{}", random_secret(30));
            let record = TokenRecord {
                id: Uuid::now_v7(),
                user_id: principal.user_id,
                name: name.to_string(),
                prefix: token.chars().take(TOKEN_PREFIX.len() + 6).collect(),
                secret_hash: sha256_hex(&token),
                created_at: now,
                expires_at: expires_in_days.map(|d| now + Duration::days(d)),
                last_used_at: None,
                revoked_at: None,
            };
            self.store.create_token(&record).await?;
            Ok(CreatedToken { token, record: record.into() })
        }
        .await;
        let target = result.as_ref().ok().map(|c| format!("token:{}", c.record.id));
        self.audited(meta, Actor::Principal(principal), "token.create", target, result).await
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
