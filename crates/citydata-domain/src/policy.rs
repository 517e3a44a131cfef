//! 策略闸门 (the one policy gate): who may read which rows and fields of a resource's table,
//! and how each field is masked. `decide` is pure; every read path calls it and turns its
//! `Allow` into one query plan (projection with masks, the grant's filter AND the caller's).

use crate::dept::DeptCode;
use crate::filter::Filter;
use crate::mask::MaskSpec;
use crate::resource::{InfoItem, ItemName, Resource};
use crate::vocab::{OpenType, PublicTreatment, ResourceState, Sensitivity, ShareType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authentication.
    Anonymous,
    /// A registered member of the public (no department).
    Public { user_id: Uuid },
    /// A member of departments (platform admins included: they read under the same rules).
    Department { user_id: Uuid, departments: Vec<DeptCode> },
}

/// What the caller does with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ReadRows,
    Export,
    Aggregate,
    Sql,
    Preview,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    Department(DeptCode),
    User(Uuid),
}

/// 授权: what a grantee may read of a resource, for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub grantee: Grantee,
    /// The items granted (empty: every item).
    pub fields: Vec<ItemName>,
    pub row_filter: Option<Filter>,
    /// Masks per item, overriding the defaults.
    pub masks: BTreeMap<ItemName, MaskSpec>,
    pub purpose: String,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The stored grant no longer fits the resource (an item, filter or mask that does not
    /// parse any more): it gives nothing, and a conditional resource is refused
    /// (`grant_invalid`) until the provider issues a new one. Fails closed.
    pub damaged: bool,
}

impl Grant {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.valid_from <= now && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Why a read is refused. Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The resource is a draft or withdrawn.
    NotPublished,
    /// 有条件共享/开放 without an active grant.
    GrantRequired,
    /// The only grant has expired.
    GrantExpired,
    /// The only grant was revoked.
    GrantRevoked,
    /// 不予共享.
    NotShared,
    /// 不予开放 (for the public).
    NotOpen,
    /// The action is not offered to this caller (SQL for the public).
    ActionNotAllowed,
    /// The caller's grant no longer fits the resource (its items or filter changed).
    GrantInvalid,
}

impl DenyReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotPublished => "not_published",
            Self::GrantRequired => "grant_required",
            Self::GrantExpired => "grant_expired",
            Self::GrantRevoked => "grant_revoked",
            Self::NotShared => "not_shared",
            Self::NotOpen => "not_open",
            Self::ActionNotAllowed => "action_not_allowed",
            Self::GrantInvalid => "grant_invalid",
        }
    }
    pub fn message(self) -> &'static str {
        match self {
            Self::NotPublished => "资源未发布 / the resource is not published",
            Self::GrantRequired => "有条件共享/开放的资源须先申请并获得授权 / this resource needs an approved grant",
            Self::GrantExpired => "授权已过期 / the grant has expired",
            Self::GrantRevoked => "授权已被撤销 / the grant was revoked",
            Self::NotShared => "该资源不予共享 / this resource is not shared",
            Self::NotOpen => "该资源不予开放 / this resource is not open to the public",
            Self::ActionNotAllowed => "不允许此操作 / this action is not allowed for you",
            Self::GrantInvalid => {
                "授权与资源当前的信息项不再相符，已停用，请提供方重新授权 / the grant no longer fits the resource and gives nothing until the provider issues a new one"
            }
        }
    }
}

/// What the caller may read.
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    /// The items readable, in the resource's order.
    pub fields: Vec<ItemName>,
    /// Rows outside it are never returned.
    pub row_filter: Option<Filter>,
    /// Masks applied before anything leaves the query.
    pub masks: BTreeMap<ItemName, MaskSpec>,
    /// Aggregates suppress groups smaller than this (public audience).
    pub min_group_size: Option<u32>,
    /// The grant this rests on, if any.
    pub grant_id: Option<Uuid>,
    /// The caller is the provider department.
    pub provider: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Deny(DenyReason),
    Allow(Allow),
}

/// Default small-cell suppression threshold for the public (GB/T 37964 style).
pub const DEFAULT_MIN_GROUP: u32 = 5;

fn default_masks<'a>(items: impl Iterator<Item = &'a InfoItem>) -> BTreeMap<ItemName, MaskSpec> {
    items
        .filter(|i| {
            matches!(i.sensitivity, Sensitivity::Personal | Sensitivity::SensitivePersonal | Sensitivity::Confidential)
        })
        .map(|i| {
            (
                i.name.clone(),
                if i.sensitivity == Sensitivity::Confidential { MaskSpec::Redact } else { MaskSpec::default_for(i) },
            )
        })
        .collect()
}

/// The grant that applies: the newest active one, else why the caller has none.
fn grant_for<'a>(
    grants: &'a [Grant],
    resource: Uuid,
    who: &dyn Fn(&Grantee) -> bool,
    now: DateTime<Utc>,
) -> Result<&'a Grant, DenyReason> {
    let mine: Vec<&Grant> = grants.iter().filter(|g| g.resource_id == resource && who(&g.grantee)).collect();
    if let Some(g) = mine.iter().filter(|g| g.is_active(now)).max_by_key(|g| (g.valid_from, g.id)) {
        return if g.damaged { Err(DenyReason::GrantInvalid) } else { Ok(g) };
    }
    // The most recent ended grant explains the refusal.
    let latest = mine.iter().max_by_key(|g| g.revoked_at.or(g.expires_at).unwrap_or(g.valid_from));
    match latest {
        Some(g) if g.revoked_at.is_some() => Err(DenyReason::GrantRevoked),
        Some(g) if g.expires_at.is_some_and(|e| e <= now) => Err(DenyReason::GrantExpired),
        _ => Err(DenyReason::GrantRequired),
    }
}

/// How a grant combines with what the caller's class already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantEffect {
    /// 有条件共享 for a department: the grant is the whole scope (its items, its filter); its
    /// masks override the defaults, weaker or stronger, as the provider chose.
    Scope,
    /// 无条件共享 for a department: the department already reads every row and item with the
    /// default masks, so a grant can only add: it lifts or weakens masks on its items, and
    /// never shrinks what the department had.
    Widen,
    /// 有条件开放 for the public: the grant narrows items and rows, and its masks can only be
    /// stronger than the public rules (sensitive personal items never come out in clear).
    Public,
}

/// Apply a grant to the caller class's base access.
fn with_grant(base: Allow, g: &Grant, effect: GrantEffect) -> Allow {
    let granted = |f: &ItemName| g.fields.is_empty() || g.fields.contains(f);
    match effect {
        GrantEffect::Widen => {
            let mut masks = base.masks;
            for (k, m) in &g.masks {
                if !base.fields.contains(k) || !granted(k) {
                    continue;
                }
                let current = masks.get(k).cloned().unwrap_or(MaskSpec::Clear);
                if m.strength() < current.strength() {
                    if *m == MaskSpec::Clear {
                        masks.remove(k);
                    } else {
                        masks.insert(k.clone(), m.clone());
                    }
                }
            }
            Allow { masks, grant_id: Some(g.id), ..base }
        }
        GrantEffect::Scope | GrantEffect::Public => {
            let fields: Vec<ItemName> = base.fields.into_iter().filter(granted).collect();
            let mut masks: BTreeMap<ItemName, MaskSpec> =
                base.masks.into_iter().filter(|(k, _)| fields.contains(k)).collect();
            for (k, m) in &g.masks {
                if !fields.contains(k) {
                    continue;
                }
                let current = masks.get(k).cloned().unwrap_or(MaskSpec::Clear);
                let next = if effect == GrantEffect::Public { current.stronger(m.clone()) } else { m.clone() };
                if next == MaskSpec::Clear {
                    masks.remove(k);
                } else {
                    masks.insert(k.clone(), next);
                }
            }
            Allow { fields, row_filter: g.row_filter.clone(), masks, grant_id: Some(g.id), ..base }
        }
    }
}

/// Generalize what a non-provider reads until no masked identifier can be rebuilt from the
/// rest of the response (see [`crate::linkage`]).
fn guarded(resource: &Resource, mut allow: Allow) -> Allow {
    crate::linkage::enforce(&resource.content.items, &resource.content.consistency, &allow.fields, &mut allow.masks);
    allow
}

/// Decide what `caller` may read of `resource` for `action`, given the grants on it.
pub fn decide(caller: &Caller, resource: &Resource, action: Action, grants: &[Grant], now: DateTime<Utc>) -> Decision {
    let items = &resource.content.items;
    let all: Vec<ItemName> = items.iter().map(|i| i.name.clone()).collect();
    match caller {
        Caller::Department { departments, .. } if departments.contains(&resource.content.provider) => {
            Decision::Allow(Allow {
                fields: all,
                row_filter: None,
                masks: BTreeMap::new(),
                min_group_size: None,
                grant_id: None,
                provider: true,
            })
        }
        Caller::Department { departments, .. } => {
            if resource.state != ResourceState::Published {
                return Decision::Deny(DenyReason::NotPublished);
            }
            let base = Allow {
                fields: all,
                row_filter: None,
                masks: default_masks(items.iter()),
                min_group_size: None,
                grant_id: None,
                provider: false,
            };
            let who = |g: &Grantee| matches!(g, Grantee::Department(d) if departments.contains(d));
            match resource.content.share.kind {
                ShareType::None => Decision::Deny(DenyReason::NotShared),
                // Every active grant only adds here, so all of them apply (the newest is named).
                ShareType::Unconditional => {
                    let mut active: Vec<&Grant> = grants
                        .iter()
                        .filter(|g| g.resource_id == resource.id && who(&g.grantee) && g.is_active(now) && !g.damaged)
                        .collect();
                    active.sort_by_key(|g| (g.valid_from, g.id));
                    let widened = active.into_iter().fold(base, |a, g| with_grant(a, g, GrantEffect::Widen));
                    Decision::Allow(guarded(resource, widened))
                }
                ShareType::Conditional => match grant_for(grants, resource.id, &who, now) {
                    Ok(g) => Decision::Allow(guarded(resource, with_grant(base, g, GrantEffect::Scope))),
                    Err(reason) => Decision::Deny(reason),
                },
            }
        }
        Caller::Anonymous | Caller::Public { .. } => {
            if action == Action::Sql {
                return Decision::Deny(DenyReason::ActionNotAllowed);
            }
            if resource.state != ResourceState::Published {
                return Decision::Deny(DenyReason::NotPublished);
            }
            // Public rules: sensitive personal items and items marked `excluded` are removed;
            // personal items and items marked `masked` are masked.
            let visible: Vec<&InfoItem> = items
                .iter()
                .filter(|i| {
                    i.sensitivity != Sensitivity::SensitivePersonal || i.public == Some(PublicTreatment::Masked)
                })
                .filter(|i| i.public != Some(PublicTreatment::Excluded))
                .filter(|i| i.sensitivity != Sensitivity::Confidential)
                .collect();
            let mut masks = default_masks(visible.iter().copied());
            for i in &visible {
                if i.public == Some(PublicTreatment::Masked) {
                    masks.entry(i.name.clone()).or_insert_with(|| MaskSpec::default_for(i));
                }
            }
            let base = Allow {
                fields: visible.iter().map(|i| i.name.clone()).collect(),
                row_filter: None,
                masks,
                min_group_size: Some(DEFAULT_MIN_GROUP),
                grant_id: None,
                provider: false,
            };
            match resource.content.open.kind {
                OpenType::None => Decision::Deny(DenyReason::NotOpen),
                OpenType::Unconditional => Decision::Allow(guarded(resource, base)),
                OpenType::Conditional => {
                    let Caller::Public { user_id } = caller else { return Decision::Deny(DenyReason::GrantRequired) };
                    let who = |g: &Grantee| matches!(g, Grantee::User(u) if u == user_id);
                    match grant_for(grants, resource.id, &who, now) {
                        Ok(g) => Decision::Allow(guarded(resource, with_grant(base, g, GrantEffect::Public))),
                        Err(reason) => Decision::Deny(reason),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
