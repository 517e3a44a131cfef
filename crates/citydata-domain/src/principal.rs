//! Who is calling: the authenticated principal and the permission rules over it.

use crate::dept::DeptCode;
use crate::scope::{Scope, TokenLimits};
use crate::user::{Membership, Role, Username};
use serde::Serialize;
use uuid::Uuid;

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthMethod {
    /// A browser session cookie.
    Session,
    /// An API token (`Authorization: Bearer cd_...`), with its name and what it may do.
    Token { token_id: Uuid, token_name: String, limits: TokenLimits },
    /// The command line, acting directly on the data directory.
    Cli,
}

/// An authenticated caller.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub user_id: Uuid,
    pub username: Username,
    pub display_name: String,
    pub memberships: Vec<Membership>,
    pub via: AuthMethod,
}

impl Principal {
    /// What the credential allows: a token's limits, or none for a session or the CLI.
    pub fn limits(&self) -> TokenLimits {
        match &self.via {
            AuthMethod::Token { limits, .. } => limits.clone(),
            _ => TokenLimits::full(),
        }
    }
    /// Whether the credential carries `scope` (sessions and unscoped tokens carry every one).
    pub fn has_scope(&self, scope: Scope) -> bool {
        match &self.via {
            AuthMethod::Token { limits, .. } => limits.has(scope),
            _ => true,
        }
    }
    /// Whether the credential may touch resource `id` (a token limited to a resource list).
    pub fn reaches_resource(&self, id: Uuid) -> bool {
        match &self.via {
            AuthMethod::Token { limits, .. } => limits.reaches(id),
            _ => true,
        }
    }
    /// 平台管理员: holds the `admin` role in any department.
    pub fn is_admin(&self) -> bool {
        self.memberships.iter().any(|m| m.role == Role::Admin)
    }
    pub fn has_role(&self, dept: &DeptCode, role: Role) -> bool {
        self.memberships.iter().any(|m| &m.department == dept && m.role == role)
    }
    /// The department the principal acts for: the first membership's.
    pub fn primary_department(&self) -> Option<&DeptCode> {
        self.memberships.first().map(|m| &m.department)
    }
    pub fn is_member_of(&self, dept: &DeptCode) -> bool {
        self.memberships.iter().any(|m| &m.department == dept)
    }
    /// Who looks after a department's data (its resources, uploads, webhooks): the
    /// department's stewards and department admins, and platform admins.
    pub fn can_steward(&self, dept: &DeptCode) -> bool {
        self.is_admin() || self.has_role(dept, Role::Steward) || self.has_role(dept, Role::DeptAdmin)
    }
    /// Who may create departments: platform admins only.
    pub fn can_manage_departments(&self) -> bool {
        self.is_admin()
    }
    /// Who may create users in `dept`: platform admins, and department admins of `dept`
    /// (who may not hand out the platform `admin` role).
    pub fn can_manage_members(&self, dept: &DeptCode, role: Role) -> bool {
        self.is_admin() || (role != Role::Admin && self.has_role(dept, Role::DeptAdmin))
    }
    /// Who may read the audit log: platform admins.
    pub fn can_read_audit(&self) -> bool {
        self.is_admin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ms: &[(&str, Role)]) -> Principal {
        Principal {
            user_id: Uuid::nil(),
            username: Username::parse("u1").unwrap(),
            display_name: "U".into(),
            memberships: ms
                .iter()
                .map(|(d, r)| Membership { department: DeptCode::parse(d).unwrap(), role: *r })
                .collect(),
            via: AuthMethod::Session,
        }
    }

    #[test]
    fn permission_table() {
        let gaj = DeptCode::parse("gaj").unwrap();
        let wjw = DeptCode::parse("wjw").unwrap();
        let admin = p(&[("dsjzx", Role::Admin)]);
        let dadmin = p(&[("gaj", Role::DeptAdmin)]);
        let steward = p(&[("gaj", Role::Steward)]);
        let analyst = p(&[("wjw", Role::Analyst)]);
        assert!(admin.can_manage_departments());
        for other in [&dadmin, &steward, &analyst] {
            assert!(!other.can_manage_departments());
            assert!(!other.can_read_audit());
        }
        assert!(dadmin.can_manage_members(&gaj, Role::Steward));
        assert!(!dadmin.can_manage_members(&gaj, Role::Admin));
        assert!(!dadmin.can_manage_members(&wjw, Role::Steward));
        assert!(!steward.can_manage_members(&gaj, Role::Analyst));
        assert!(admin.can_manage_members(&wjw, Role::Admin));
    }
}
