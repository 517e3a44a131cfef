//! 应用 (applications): what a department built on shared or open data, declared by its
//! stewards with the resources it uses — each one the department may read through the gate
//! (its own, an open one, or one it holds a grant for). The dashboard counts them against the
//! plan's "20+ applications"; resource pages list the applications using them.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::dept::DeptCode;
use citydata_domain::policy::Action;
use citydata_domain::principal::Principal;
use citydata_domain::user::{Membership, Role};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::ApplicationRecord;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /api/v1/applications`.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    pub name: String,
    /// 应用场景
    pub scenario: String,
    pub url: Option<String>,
    /// Resource ids or codes the application reads.
    pub resources: Vec<String>,
    /// The owning department (default: the caller's first).
    pub department: Option<String>,
    /// `active` (default), `building` or `retired`.
    pub status: Option<String>,
    /// The username of the owning department's service account (服务账号) the application
    /// calls citydata as; absent or empty: none.
    #[serde(default)]
    pub service_account: Option<String>,
}

/// A resource an application uses, as the caller may see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppResource {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub provider: String,
}

/// An application; `resources` lists only the catalog entries the caller may see.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationView {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub scenario: String,
    pub url: Option<String>,
    pub status: String,
    pub resources: Vec<AppResource>,
    /// The service account it calls citydata as; shown only to the owning department's
    /// stewards and platform admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    pub created_at: DateTime<Utc>,
}

const STATUSES: &[&str] = &["active", "building", "retired"];

/// An application's fields after the checks.
pub(crate) struct CheckedApplication {
    pub(crate) department: DeptCode,
    pub(crate) name: String,
    pub(crate) scenario: String,
    pub(crate) url: Option<String>,
    pub(crate) status: String,
    pub(crate) resources: Vec<Uuid>,
    pub(crate) service_account: Option<String>,
}

impl Core {
    /// Register an application: stewards (and department admins, platform admins) of the
    /// owning department; every resource must be one the department reads through the gate.
    pub async fn create_application(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewApplication,
    ) -> Result<ApplicationView, CoreError> {
        let v = self.checked_application(principal, input).await?;
        let rec = ApplicationRecord {
            id: Uuid::now_v7(),
            name: v.name,
            department: v.department.to_string(),
            scenario: v.scenario,
            url: v.url,
            status: v.status,
            resources: v.resources,
            service_account: v.service_account,
            created_by: principal.username.to_string(),
            created_at: Utc::now(),
        };
        self.store.create_application(&rec).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "application.create",
            Some(format!("application:{}", rec.id)),
            Outcome::Success,
            serde_json::json!({"name": rec.name, "department": rec.department, "resources": rec.resources}),
        )
        .await?;
        Ok(self.view_application(Some(principal), rec).await)
    }

    /// An application's fields checked (400 naming each field; 403 unless the caller stewards
    /// the owning department), as registration and editing take them.
    pub(crate) async fn checked_application(
        &self,
        principal: &Principal,
        input: &NewApplication,
    ) -> Result<CheckedApplication, CoreError> {
        let mut errs = ValidationErrors::new();
        let dept = match input.department.as_deref() {
            Some(d) => match DeptCode::parse(d) {
                Ok(d) => Some(d),
                Err(_) => {
                    errs.push(FieldError::new("department", "invalid_value", "部门代码无效 / invalid department code"));
                    None
                }
            },
            None => principal.primary_department().cloned(),
        };
        let Some(dept) = dept else {
            errs.push(FieldError::new("department", "required", "须指明所属部门 / the owning department is required"));
            return Err(errs.into());
        };
        if !principal.can_steward(&dept) {
            return Err(CoreError::Forbidden(
                "仅本部门数据管理员可登记应用 / only the department's stewards register its applications".into(),
            ));
        }
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errs.push(FieldError::new(
                "name",
                "invalid_length",
                "名称须为 1–100 个字符 / name must be 1–100 characters",
            ));
        }
        let scenario = input.scenario.trim();
        if scenario.is_empty() || scenario.chars().count() > 1000 {
            errs.push(FieldError::new(
                "scenario",
                "invalid_length",
                "应用场景须为 1–1000 个字符 / scenario must be 1–1000 characters",
            ));
        }
        let url = input.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        if let Some(u) = url
            && (!(u.starts_with("https://") || u.starts_with("http://"))
                || u.len() > 500
                || u.contains(char::is_whitespace))
        {
            errs.push(FieldError::new("url", "invalid_url", "须为 http(s) 地址 / must be an http(s) URL"));
        }
        let status = input.status.as_deref().unwrap_or("active");
        if !STATUSES.contains(&status) {
            errs.push(FieldError::new(
                "status",
                "invalid_value",
                "状态须为 active、building 或 retired / status must be active, building or retired",
            ));
        }
        if input.resources.is_empty() || input.resources.len() > 100 {
            errs.push(FieldError::new("resources", "invalid_length", "须列出 1–100 个资源 / list 1–100 resources"));
        }
        // The department acts for the application: read as one of its members would.
        let acting = Principal {
            memberships: vec![Membership { department: dept.clone(), role: Role::Analyst }],
            ..principal.clone()
        };
        let mut ids: Vec<Uuid> = Vec::new();
        for (i, key) in input.resources.iter().enumerate() {
            let field = format!("resources[{i}]");
            let r = match self.get_resource(Some(&acting), key.trim()).await {
                Ok(r) => r,
                Err(CoreError::NotFound(_)) => {
                    errs.push(FieldError::new(
                        field,
                        "not_found",
                        format!("资源不存在：{key} / no such resource: {key}"),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.allow(Some(&acting), &r, Action::ReadRows).await.is_err() {
                errs.push(FieldError::new(
                    field,
                    "not_granted",
                    format!("本部门无权使用该资源：{key} / the department may not read {key}"),
                ));
                continue;
            }
            if !ids.contains(&r.id) {
                ids.push(r.id);
            }
        }
        // The identity it calls as: one of the owning department's service accounts.
        let service_account = input.service_account.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if let Some(sa) = service_account {
            let owned = self.store.list_service_accounts(Some(dept.as_str())).await?;
            if !owned.iter().any(|a| a.username == sa) {
                errs.push(FieldError::new(
                    "service_account",
                    "not_found",
                    format!("本部门没有服务账号 {sa} / the department has no service account {sa}"),
                ));
            }
        }
        errs.into_result()?;
        Ok(CheckedApplication {
            department: dept,
            name: name.to_string(),
            scenario: scenario.to_string(),
            url: url.map(str::to_string),
            status: status.to_string(),
            resources: ids,
            service_account: service_account.map(str::to_string),
        })
    }

    pub(crate) async fn view_application(
        &self,
        principal: Option<&Principal>,
        a: ApplicationRecord,
    ) -> ApplicationView {
        let mut resources = Vec::new();
        for id in &a.resources {
            if let Ok(r) = self.get_resource(principal, &id.to_string()).await {
                resources.push(AppResource {
                    id: r.id,
                    code: r.content.code.to_string(),
                    name: r.content.name.clone(),
                    provider: r.content.provider.to_string(),
                });
            }
        }
        let steward = principal.is_some_and(|p| DeptCode::parse(&a.department).is_ok_and(|d| p.can_steward(&d)));
        ApplicationView {
            service_account: a.service_account.filter(|_| steward),
            id: a.id,
            name: a.name,
            department: a.department,
            scenario: a.scenario,
            url: a.url,
            status: a.status,
            resources,
            created_at: a.created_at,
        }
    }

    /// Every application (oldest first); with `resource`, those using it. Resources the
    /// caller may not see in the catalog are left out of each entry.
    pub async fn list_applications(
        &self,
        principal: Option<&Principal>,
        resource: Option<&str>,
    ) -> Result<Vec<ApplicationView>, CoreError> {
        let only = match resource {
            Some(key) => Some(self.get_resource(principal, key).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        for a in self.store.list_applications().await? {
            if only.is_some_and(|id| !a.resources.contains(&id)) {
                continue;
            }
            out.push(self.view_application(principal, a).await);
        }
        Ok(out)
    }
}
