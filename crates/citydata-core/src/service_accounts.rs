//! 服务账号 (service accounts): an application's identity owned by a department. It holds
//! tokens and cannot log in (no password: its stored hash is no PHC string, and `login`
//! refuses any service account). Its department's admins and platform admins create it,
//! issue and revoke its tokens; every call it makes is audited under its username with the
//! token's id and name.

use crate::audit::Actor;
use crate::tokens::{CreatedToken, TokenRequest, TokenView};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::dept::DeptCode;
use citydata_domain::principal::Principal;
use citydata_domain::user::{Membership, Role, Username, parse_display_name};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{NewUser, ServiceAccountRecord, StoreError};
use serde::Deserialize;
use uuid::Uuid;

/// The stored "hash" of a service account: not a PHC string, so no password ever matches.
const NO_PASSWORD: &str = "!service-account";

/// A new service account, as received.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewServiceAccountInput {
    /// Username, e.g. `wjw-etl`.
    pub username: String,
    /// What people see, e.g. `卫健委夜间同步`.
    pub display_name: String,
    /// The owning department's code.
    pub department: String,
    /// `analyst` (default) or `steward` (needed to upload data).
    #[serde(default)]
    pub role: Option<String>,
    /// What the application does.
    #[serde(default)]
    pub description: Option<String>,
}

/// A service account as listed.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccountView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub department: String,
    pub description: String,
    /// Who created it (a username).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

impl From<ServiceAccountRecord> for ServiceAccountView {
    fn from(r: ServiceAccountRecord) -> Self {
        Self {
            id: r.user_id,
            username: r.username,
            display_name: r.display_name,
            department: r.department,
            description: r.description,
            created_by: r.created_by,
            created_at: r.created_at,
            disabled: r.disabled,
        }
    }
}

fn may_manage(p: &Principal, department: &str) -> bool {
    DeptCode::parse(department).is_ok_and(|d| p.can_manage_members(&d, Role::Analyst))
}

fn no_such(id: Uuid) -> CoreError {
    CoreError::NotFound(format!("服务账号不存在：{id} / no such service account: {id}"))
}

impl Core {
    /// Create a service account in a department (its department admins, platform admins).
    pub async fn create_service_account(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewServiceAccountInput,
    ) -> Result<ServiceAccountView, CoreError> {
        let target = Some(format!("user:{}", input.username.trim().to_lowercase()));
        let result = async {
            let mut errs = ValidationErrors::new();
            let username = errs.check(Username::parse(&input.username));
            let display_name = errs.check(parse_display_name(&input.display_name));
            let department = errs
                .check(DeptCode::parse(&input.department).map_err(|e| FieldError { field: "department".into(), ..e }));
            let role = match input.role.as_deref().map(Role::parse).unwrap_or(Ok(Role::Analyst)) {
                Ok(r @ (Role::Analyst | Role::Steward)) => Some(r),
                Ok(_) => {
                    errs.push(FieldError::new(
                        "role",
                        "invalid_role",
                        "服务账号的角色只能是 analyst 或 steward / a service account's role is analyst or steward",
                    ));
                    None
                }
                Err(e) => {
                    errs.push(e);
                    None
                }
            };
            let description = input.description.as_deref().unwrap_or("").trim().to_string();
            if description.chars().count() > 500 || description.chars().any(char::is_control) {
                errs.push(FieldError::new(
                    "description",
                    "invalid_description",
                    "说明至多 500 个字符 / description: at most 500 characters",
                ));
            }
            errs.into_result()?;
            let (department, role) = (department.expect("checked"), role.expect("checked"));
            if !principal.can_manage_members(&department, role) {
                return Err(CoreError::forbidden());
            }
            let new = NewUser {
                id: Uuid::now_v7(),
                username: username.expect("checked"),
                display_name: display_name.expect("checked"),
                password_hash: NO_PASSWORD.into(),
                memberships: vec![Membership { department, role }],
                created_at: Utc::now().trunc_subsecs(6),
            };
            match self.store.create_service_account(&new, &description, principal.username.as_str()).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    return Err(FieldError::new(
                        "username",
                        "username_taken",
                        format!("用户名已被使用：{u} / username {u} is taken", u = new.username),
                    )
                    .into());
                }
                Err(StoreError::NotFound(_)) => {
                    return Err(
                        FieldError::new("department", "unknown_department", "部门不存在 / no such department").into()
                    );
                }
                Err(e) => return Err(e.into()),
            }
            let got = self.store.get_service_account(new.id).await?.ok_or_else(|| no_such(new.id))?;
            Ok(ServiceAccountView::from(got))
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "service_account.create", target, result).await
    }

    /// The service accounts the caller manages (every one for platform admins).
    pub async fn list_service_accounts(&self, principal: &Principal) -> Result<Vec<ServiceAccountView>, CoreError> {
        let all = self.store.list_service_accounts(None).await?;
        Ok(all.into_iter().filter(|s| may_manage(principal, &s.department)).map(Into::into).collect())
    }

    /// Whether `user_id` is a service account (login refuses them).
    pub(crate) async fn is_service_account(&self, user_id: Uuid) -> Result<bool, CoreError> {
        Ok(self.store.get_service_account(user_id).await?.is_some())
    }

    /// The service account `id` if the caller manages it; others' are `not_found`.
    async fn managed(&self, principal: &Principal, id: Uuid) -> Result<ServiceAccountRecord, CoreError> {
        match self.store.get_service_account(id).await? {
            Some(s) if may_manage(principal, &s.department) => Ok(s),
            _ => Err(no_such(id)),
        }
    }

    /// Issue a token to a service account, within the caller's own limits.
    pub async fn create_service_account_token(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: Uuid,
        req: &TokenRequest,
    ) -> Result<CreatedToken, CoreError> {
        let result = async {
            let sa = self.managed(principal, id).await?;
            self.issue_token(principal, sa.user_id, req).await
        }
        .await;
        let target = Some(format!("service_account:{id}"));
        let mut details = serde_json::Map::new();
        if let Ok(c) = &result {
            details.insert("token_id".into(), c.record.id.to_string().into());
            details.insert("token_name".into(), c.record.name.clone().into());
            details.insert("scopes".into(), serde_json::json!(c.record.scopes));
            details.insert("resources".into(), serde_json::json!(c.record.resources));
        }
        self.audited_with(meta, Actor::Principal(principal), "service_account.token_create", target, details, result)
            .await
    }

    /// A service account's tokens (never their secrets).
    pub async fn list_service_account_tokens(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Vec<TokenView>, CoreError> {
        let sa = self.managed(principal, id).await?;
        Ok(self.store.list_tokens(sa.user_id).await?.into_iter().map(TokenView::from).collect())
    }

    /// Revoke one of a service account's tokens.
    pub async fn revoke_service_account_token(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: Uuid,
        token_id: Uuid,
    ) -> Result<(), CoreError> {
        let result = async {
            let sa = self.managed(principal, id).await?;
            if self.store.revoke_token(sa.user_id, token_id, Utc::now().trunc_subsecs(6)).await? {
                Ok(())
            } else {
                Err(CoreError::NotFound(format!("令牌不存在或已撤销：{token_id} / no such active token: {token_id}")))
            }
        }
        .await;
        let target = Some(format!("token:{token_id}"));
        self.audited(meta, Actor::Principal(principal), "service_account.token_revoke", target, result).await
    }
}
