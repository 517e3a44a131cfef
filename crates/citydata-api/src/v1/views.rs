//! Response shapes of the v1 API.

use citydata_domain::dept::Department;
use citydata_domain::principal::{AuthMethod, Principal};
use citydata_domain::user::{Membership, User};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct DepartmentView {
    pub code: String,
    pub name: String,
    pub region_code: String,
    /// 行政区划名称, when known.
    pub region_name: Option<String>,
    /// `city` or `district`.
    pub level: String,
    pub parent: Option<String>,
}

impl From<Department> for DepartmentView {
    fn from(d: Department) -> Self {
        Self {
            region_name: d.region.name().map(str::to_string),
            code: d.code.to_string(),
            name: d.name.as_str().to_string(),
            region_code: d.region.to_string(),
            level: d.level.as_str().to_string(),
            parent: d.parent.map(|p| p.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub department: String,
    /// `admin`, `dept_admin`, `steward` or `analyst`.
    pub role: String,
    /// The role's Chinese title.
    pub role_title: String,
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        Self {
            department: m.department.to_string(),
            role: m.role.as_str().into(),
            role_title: m.role.title_zh().into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub memberships: Vec<MembershipView>,
    pub disabled: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username.to_string(),
            display_name: u.display_name,
            memberships: u.memberships.iter().map(Into::into).collect(),
            disabled: u.disabled,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub memberships: Vec<MembershipView>,
    pub is_admin: bool,
    /// `session` or `token`.
    pub authenticated_by: String,
    /// The token's scopes; `null` for a session or a token with every scope.
    pub scopes: Option<Vec<citydata_domain::scope::Scope>>,
    /// The resources the token is limited to; `null` for every resource.
    pub resources: Option<Vec<Uuid>>,
}

impl From<&Principal> for MeView {
    fn from(p: &Principal) -> Self {
        Self {
            id: p.user_id,
            username: p.username.to_string(),
            display_name: p.display_name.clone(),
            memberships: p.memberships.iter().map(Into::into).collect(),
            is_admin: p.is_admin(),
            scopes: p.limits().scopes.map(|s| s.into_iter().collect()),
            resources: p.limits().resources.map(|r| r.into_iter().collect()),
            authenticated_by: match p.via {
                AuthMethod::Session => "session",
                AuthMethod::Token { .. } => "token",
                AuthMethod::Cli => "cli",
            }
            .into(),
        }
    }
}

pub use citydata_core::tokens::TokenView;
