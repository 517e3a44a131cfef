//! Delta Sharing profiles (共享凭证): random bearer tokens shown once (inside the profile
//! file), stored only as SHA-256, recognisable by `cds_`, always expiring.

use crate::audit::Actor;
use crate::auth::{random_secret, sha256_hex};
use crate::tokens::TokenView;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use citydata_domain::FieldError;
use citydata_domain::principal::{AuthMethod, Principal};
use citydata_store::TokenRecord;
use uuid::Uuid;

/// The prefix of every Delta Sharing bearer token (an API token starts with `cd_`).
pub const SHARING_TOKEN_PREFIX: &str = "cds_";

/// A profile's lifetime when the request names none.
pub const DEFAULT_PROFILE_DAYS: i64 = 90;

/// A profile just created: `token` is shown only now.
#[derive(Debug)]
pub struct CreatedProfile {
    pub token: String,
    pub record: TokenView,
}

/// What a bearer token on `/delta-sharing/` is.
#[derive(Debug)]
pub enum ProfileAuth {
    /// A live profile of an enabled user: its owner, acting through it.
    Valid(Principal),
    /// Known, but revoked or expired (403).
    Revoked,
    Expired,
    /// Not a profile token at all (401).
    Unknown,
}

impl Core {
    /// Create a Delta Sharing profile for `principal`, valid `expires_in_days` (default 90,
    /// at most the configured token lifetime).
    pub async fn create_sharing_profile(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        name: &str,
        expires_in_days: Option<i64>,
    ) -> Result<CreatedProfile, CoreError> {
        let result = async {
            let name = name.trim();
            let n = name.chars().count();
            if n == 0 || n > 100 || name.chars().any(char::is_control) {
                return Err(FieldError::new(
                    "name",
                    "invalid_profile_name",
                    "凭证名称须为 1–100 个字符 / profile name must be 1–100 characters",
                )
                .into());
            }
            let max = i64::from(self.config.token_max_days).max(1);
            let days = expires_in_days.unwrap_or(DEFAULT_PROFILE_DAYS.min(max));
            if !(1..=max).contains(&days) {
                return Err(FieldError::new(
                    "expires_in_days",
                    "invalid_expiry",
                    format!("有效期须为 1–{max} 天 / expires_in_days must be between 1 and {max}"),
                )
                .into());
            }
            let now = Utc::now().trunc_subsecs(6);
            let token = format!("{SHARING_TOKEN_PREFIX}{}", random_secret(30));
            let record = TokenRecord {
                id: Uuid::now_v7(),
                user_id: principal.user_id,
                name: name.to_string(),
                prefix: token.chars().take(SHARING_TOKEN_PREFIX.len() + 6).collect(),
                secret_hash: sha256_hex(&token),
                created_at: now,
                expires_at: Some(now + Duration::days(days)),
                last_used_at: None,
                revoked_at: None,
                scopes: None,
                resources: None,
            };
            self.store.create_sharing_profile(&record).await?;
            Ok(CreatedProfile { token, record: record.into() })
        }
        .await;
        let target = result.as_ref().ok().map(|c| format!("sharing_profile:{}", c.record.id));
        self.audited(meta, Actor::Principal(principal), "sharing.profile_create", target, result).await
    }

    /// The principal's own profiles (never their tokens).
    pub async fn list_sharing_profiles(&self, principal: &Principal) -> Result<Vec<TokenView>, CoreError> {
        Ok(self.store.list_sharing_profiles(principal.user_id).await?.into_iter().map(TokenView::from).collect())
    }

    /// Revoke one of the principal's own profiles: its token is refused from the next request.
    pub async fn revoke_sharing_profile(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(), CoreError> {
        let result = async {
            if self.store.revoke_sharing_profile(principal.user_id, id, Utc::now().trunc_subsecs(6)).await? {
                Ok(())
            } else {
                Err(CoreError::NotFound(format!("共享凭证不存在或已撤销 / no such active sharing profile: {id}")))
            }
        }
        .await;
        let target = Some(format!("sharing_profile:{id}"));
        self.audited(meta, Actor::Principal(principal), "sharing.profile_revoke", target, result).await
    }

    /// What a `/delta-sharing/` bearer token is.
    pub async fn authenticate_sharing(&self, token: &str) -> Result<ProfileAuth, CoreError> {
        if !token.starts_with(SHARING_TOKEN_PREFIX) || token.len() > 200 {
            return Ok(ProfileAuth::Unknown);
        }
        let now = Utc::now();
        let Some(t) = self.store.get_sharing_profile_by_hash(&sha256_hex(token)).await? else {
            return Ok(ProfileAuth::Unknown);
        };
        if t.revoked_at.is_some() {
            return Ok(ProfileAuth::Revoked);
        }
        if t.expires_at.is_some_and(|e| e <= now) {
            return Ok(ProfileAuth::Expired);
        }
        let Some(user) = self.store.get_user(t.user_id).await?.filter(|u| !u.disabled) else {
            return Ok(ProfileAuth::Revoked);
        };
        if t.last_used_at.is_none_or(|l| now - l > Duration::minutes(1)) {
            self.store.touch_sharing_profile(t.id, now).await?;
        }
        Ok(ProfileAuth::Valid(Principal {
            user_id: user.id,
            username: user.username,
            display_name: user.display_name,
            memberships: user.memberships,
            // A profile reads data and nothing else (the gate still decides what).
            via: AuthMethod::Token {
                token_id: t.id,
                token_name: t.name.clone(),
                limits: citydata_domain::scope::TokenLimits {
                    scopes: Some([citydata_domain::scope::Scope::DataRead].into()),
                    resources: None,
                },
            },
        }))
    }
}

/// The profile file a recipient downloads (Delta Sharing's `shareCredentialsVersion` 1).
pub fn profile_file(endpoint: &str, token: &str, expires_at: Option<DateTime<Utc>>) -> serde_json::Value {
    serde_json::json!({
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": token,
        "expirationTime": expires_at.map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}
