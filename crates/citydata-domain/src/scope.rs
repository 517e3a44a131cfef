//! 令牌权限范围 (token scopes): what an API token may do, and on which resources.
//!
//! A token carries a set of [`Scope`]s and optionally a resource list. A session, the command
//! line, and a token created before scopes existed carry no restriction ([`TokenLimits::full`]):
//! existing tokens keep working as they did. The HTTP layer holds the one table that names the
//! scope each route needs; the gate refuses a resource outside a token's list.

use crate::FieldError;
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

/// One permission a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// 读目录: the catalog, departments, quality reports, evaluation.
    #[serde(rename = "catalog:read")]
    CatalogRead,
    /// 编目: create, edit, publish and import catalog entries; sources and devices.
    #[serde(rename = "catalog:write")]
    CatalogWrite,
    /// 读数据: rows, exports, aggregates, SQL, the change feed, versions.
    #[serde(rename = "data:read")]
    DataRead,
    /// 写数据: uploads and API pushes.
    #[serde(rename = "data:write")]
    DataWrite,
    /// 共享申请: requests, grants, the inbox, 纠错 tickets.
    #[serde(rename = "requests")]
    Requests,
    /// 订阅: webhooks and table subscriptions.
    #[serde(rename = "webhooks")]
    Webhooks,
    /// 管理: users, departments, tokens, service accounts, the audit log, evaluation rules.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::DataRead,
        Scope::DataWrite,
        Scope::Requests,
        Scope::Webhooks,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatalogRead => "catalog:read",
            Self::CatalogWrite => "catalog:write",
            Self::DataRead => "data:read",
            Self::DataWrite => "data:write",
            Self::Requests => "requests",
            Self::Webhooks => "webhooks",
            Self::Admin => "admin",
        }
    }

    /// The Chinese name, for messages and pages.
    pub fn title_zh(self) -> &'static str {
        match self {
            Self::CatalogRead => "读目录",
            Self::CatalogWrite => "编目",
            Self::DataRead => "读数据",
            Self::DataWrite => "写数据",
            Self::Requests => "共享申请",
            Self::Webhooks => "订阅通知",
            Self::Admin => "管理",
        }
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::ALL.into_iter().find(|x| x.as_str() == s.trim()).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|x| x.as_str()).collect();
            let all = all.join(", ");
            FieldError::new(
                "scopes",
                "invalid_scope",
                format!("未知的权限范围 \"{s}\"，可选：{all} / unknown scope \"{s}\"; one of: {all}"),
            )
        })
    }

    /// Parse a stored space-separated list; unknown words are dropped (a scope removed from
    /// the code narrows the token, it never widens it).
    pub fn parse_stored(s: &str) -> BTreeSet<Scope> {
        s.split_whitespace().filter_map(|w| Self::parse(w).ok()).collect()
    }

    /// The stored form: space-separated, in a fixed order.
    pub fn to_stored(set: &BTreeSet<Scope>) -> String {
        set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }
}

/// What a caller's credential allows: `scopes: None` is every scope (sessions, the command
/// line, tokens from before scopes existed); `resources: None` is every resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TokenLimits {
    pub scopes: Option<BTreeSet<Scope>>,
    pub resources: Option<BTreeSet<Uuid>>,
}

impl TokenLimits {
    /// No restriction.
    pub fn full() -> Self {
        Self::default()
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.contains(&scope))
    }

    pub fn reaches(&self, resource: Uuid) -> bool {
        self.resources.as_ref().is_none_or(|r| r.contains(&resource))
    }

    /// Whether `other` asks for nothing beyond these limits (a token may only mint tokens
    /// within its own).
    pub fn covers(&self, other: &TokenLimits) -> bool {
        let scopes = match (&self.scopes, &other.scopes) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.is_subset(mine),
        };
        let resources = match (&self.resources, &other.resources) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.is_subset(mine),
        };
        scopes && resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()).unwrap(), s);
        }
        let e = Scope::parse("root").unwrap_err();
        assert_eq!(e.field, "scopes");
        let set: BTreeSet<Scope> = [Scope::DataRead, Scope::CatalogRead].into();
        assert_eq!(Scope::to_stored(&set), "catalog:read data:read");
        assert_eq!(Scope::parse_stored("data:read catalog:read retired:scope"), set);
    }

    #[test]
    fn limits_cover_only_narrower_limits() {
        let id = Uuid::from_u128(1);
        let full = TokenLimits::full();
        let read = TokenLimits { scopes: Some([Scope::DataRead].into()), resources: Some([id].into()) };
        assert!(full.has(Scope::Admin) && full.reaches(id));
        assert!(read.has(Scope::DataRead) && !read.has(Scope::Admin));
        assert!(read.reaches(id) && !read.reaches(Uuid::from_u128(2)));
        assert!(full.covers(&read));
        assert!(!read.covers(&full));
        let wider = TokenLimits { scopes: Some([Scope::DataRead].into()), resources: None };
        assert!(!read.covers(&wider));
        assert!(wider.covers(&read));
    }
}
