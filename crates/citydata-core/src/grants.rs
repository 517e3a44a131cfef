//! 授权 (grants): stewards of the provider give a department or a public user a scope of a
//! resource — items, a row filter, masks, a period — and may revoke it. `decision` turns the
//! stored grants into the gate's answer for a caller.

use crate::audit::Actor;
use crate::catalog::{can_edit, can_grant};
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::dept::DeptCode;
use citydata_domain::filter::Filter;
use citydata_domain::mask::MaskSpec;
use citydata_domain::policy::{Action, Caller, Decision, Grant, Grantee, decide};
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use citydata_domain::vocab::ShareType;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{GrantRecord, GranteeKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who receives a grant, as received: exactly one of the two.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GranteeInput {
    /// A department code.
    pub department: Option<String>,
    /// A user id (public users applying for 有条件开放 data).
    pub user: Option<String>,
}

/// A new grant, as received.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewGrantInput {
    /// Resource UUID, code or slug.
    pub resource_id: String,
    pub grantee: GranteeInput,
    /// Items by name or Chinese title; empty grants every item.
    #[serde(default)]
    pub fields: Vec<String>,
    /// e.g. `区县 = '海陵区'`.
    #[serde(default)]
    pub row_filter: Option<String>,
    /// Item (name or title) → mask, overriding the defaults; `none` lifts a default mask.
    #[serde(default)]
    pub masks: BTreeMap<String, String>,
    /// 用途
    pub purpose: String,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// `read` (the default: rows under the scope) or `verify` (核验: match answers only,
    /// no rows; see `POST /api/v1/resources/{id}/verify`).
    #[serde(default)]
    pub kind: Option<String>,
    /// `verify` grants: records per day (default: the setting `verify_daily_quota`).
    #[serde(default)]
    pub daily_quota: Option<u32>,
    /// `verify` grants: records per request (default: the setting `verify_max_batch`).
    #[serde(default)]
    pub max_batch: Option<u32>,
}

pub use crate::gate::{caller, to_domain};

/// Who a grant is for, as clients see it: exactly one of the two.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GranteeView {
    /// A department code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// A (public) user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A grant as clients see it, with its state now.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub grantee: GranteeView,
    /// Items granted (names); empty: every item.
    pub fields: Vec<String>,
    pub row_filter: Option<String>,
    /// Item → mask.
    pub masks: BTreeMap<String, String>,
    pub purpose: String,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who or what ended it (a username, `superseded`, `renewal`, `policy_change`).
    pub revoked_by: Option<String>,
    /// `pending`, `active`, `expired` or `revoked`.
    pub state: &'static str,
    /// Present for verification grants (核验): their quota and batch limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::VerifyTerms>,
}

impl From<&citydata_store::GrantRecord> for GrantView {
    fn from(g: &citydata_store::GrantRecord) -> Self {
        let now = Utc::now();
        let state = if g.revoked_at.is_some() {
            "revoked"
        } else if g.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if g.valid_from > now {
            "pending"
        } else {
            "active"
        };
        let grantee = if g.grantee_kind == GranteeKind::User {
            GranteeView { department: None, user: Some(g.grantee.clone()) }
        } else {
            GranteeView { department: Some(g.grantee.clone()), user: None }
        };
        Self {
            id: g.id,
            resource_id: g.resource_id,
            grantee,
            fields: g.fields.clone(),
            row_filter: g.row_filter.clone(),
            masks: g.masks.clone(),
            purpose: g.purpose.clone(),
            valid_from: g.valid_from,
            expires_at: g.expires_at,
            granted_by: g.granted_by.clone(),
            created_at: g.created_at,
            revoked_at: g.revoked_at,
            revoked_by: g.revoked_by.clone(),
            state,
            verify: None,
        }
    }
}

/// On whose word a grant is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssuedBy {
    /// A steward or admin of the provider department.
    Provider,
    /// The platform, applying the resource's own policy (a request on a 无条件共享 resource).
    Policy,
    /// A provider's approval of a renewal: the grant it renews is closed as `renewal`.
    Renewal,
}

impl Core {
    /// Grant a scope of a resource (the provider department's stewards and admins).
    pub async fn create_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewGrantInput,
    ) -> Result<GrantRecord, CoreError> {
        match input.kind.as_deref().map(str::trim) {
            None | Some("read") => self.issue_grant(meta, principal, input, IssuedBy::Provider).await,
            Some("verify") => self.create_verify_grant(meta, principal, input).await,
            Some(_) => {
                let e =
                    FieldError::new("kind", "invalid_kind", "kind 须为 read 或 verify / kind must be read or verify");
                let target = Some(format!("resource:{}", input.resource_id));
                self.audited(meta, Actor::Principal(principal), "grant.create", target, Err(e.into())).await
            }
        }
    }

    /// Grants as clients see them, verification grants with their terms.
    pub async fn grant_views(&self, grants: &[GrantRecord]) -> Result<Vec<GrantView>, CoreError> {
        let mut out = Vec::with_capacity(grants.len());
        for g in grants {
            let mut v = GrantView::from(g);
            v.verify = self.verify_terms(g.id).await?;
            out.push(v);
        }
        Ok(out)
    }

    pub(crate) async fn issue_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewGrantInput,
        by: IssuedBy,
    ) -> Result<GrantRecord, CoreError> {
        let result = self.create_grant_inner(principal, input, by).await;
        let target = result
            .as_ref()
            .ok()
            .map(|g| format!("grant:{}", g.id))
            .or_else(|| Some(format!("resource:{}", input.resource_id)));
        self.audited(meta, Actor::Principal(principal), "grant.create", target, result).await
    }

    async fn create_grant_inner(
        &self,
        principal: &Principal,
        input: &NewGrantInput,
        by: IssuedBy,
    ) -> Result<GrantRecord, CoreError> {
        let resource = self.get_resource(Some(principal), &input.resource_id).await?;
        if by != IssuedBy::Policy && !can_grant(principal, &resource.content.provider) {
            return Err(CoreError::Forbidden(
                "只有资源提供部门的数据管理员或部门管理员可以授权 / only the provider department's stewards and admins grant access to its data".into(),
            ));
        }
        let items = &resource.content.items;
        let mut errs = ValidationErrors::new();
        let (kind, grantee) = match (&input.grantee.department, &input.grantee.user) {
            (Some(d), None) => match DeptCode::parse(d) {
                Ok(code) if code == resource.content.provider => {
                    errs.push(FieldError::new(
                        "grantee.department",
                        "own_department",
                        "不能授权给资源提供方自身 / the provider needs no grant",
                    ));
                    (GranteeKind::Department, code.to_string())
                }
                Ok(code) => {
                    if self.store.get_department(&code).await?.is_none() {
                        errs.push(FieldError::new(
                            "grantee.department",
                            "unknown_department",
                            format!("部门不存在：{code} / no such department"),
                        ));
                    }
                    if resource.content.share.kind == ShareType::None {
                        errs.push(FieldError::new(
                            "resource_id",
                            "not_shared",
                            "该资源不予共享，不能授权给部门 / this resource is not shared",
                        ));
                    }
                    (GranteeKind::Department, code.to_string())
                }
                Err(e) => {
                    errs.push(FieldError { field: "grantee.department".into(), ..e });
                    (GranteeKind::Department, String::new())
                }
            },
            (None, Some(u)) => match Uuid::parse_str(u) {
                Ok(id) => {
                    if self.store.get_user(id).await?.is_none() {
                        errs.push(FieldError::new("grantee.user", "unknown_user", "用户不存在 / no such user"));
                    }
                    (GranteeKind::User, id.to_string())
                }
                Err(_) => {
                    errs.push(FieldError::new(
                        "grantee.user",
                        "invalid_user",
                        "grantee.user 须为用户 ID / grantee.user must be a user id",
                    ));
                    (GranteeKind::User, String::new())
                }
            },
            _ => {
                errs.push(FieldError::new(
                    "grantee",
                    "invalid_grantee",
                    "须且只能指定 department 或 user 之一 / give exactly one of department or user",
                ));
                (GranteeKind::Department, String::new())
            }
        };
        let mut fields = Vec::new();
        for (i, f) in input.fields.iter().enumerate() {
            match resource.content.item(f) {
                Some(item) => fields.push(item.name.to_string()),
                None => errs.push(FieldError::new(
                    format!("fields[{i}]"),
                    "unknown_item",
                    format!("没有信息项“{f}” / no item \"{f}\""),
                )),
            }
        }
        // A row filter may limit the grant to a district of the boundary resource.
        let regions = self.regions_for(input.row_filter.as_deref()).await?;
        let row_filter = match input.row_filter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => match Filter::parse_in(t, items, regions.as_deref()) {
                Ok(f) => Some(f.to_string()),
                Err(e) => {
                    errs.push(FieldError { field: "row_filter".into(), ..e });
                    None
                }
            },
        };
        let mut masks = BTreeMap::new();
        for (k, v) in &input.masks {
            let field = format!("masks.{k}");
            match (resource.content.item(k), MaskSpec::parse(v)) {
                (None, _) => {
                    errs.push(FieldError::new(field, "unknown_item", format!("没有信息项“{k}” / no item \"{k}\"")))
                }
                (_, Err(e)) => errs.push(FieldError { field, ..e }),
                (Some(item), Ok(m)) if !m.fits(item.data_type) => errs.push(FieldError::new(
                    field,
                    "mask_type_mismatch",
                    format!(
                        "脱敏方式 {} 不适用于 {} 类型 / {} does not apply to {}",
                        m.to_spec(),
                        item.data_type.title(),
                        m.to_spec(),
                        item.data_type.as_str()
                    ),
                )),
                (Some(item), Ok(m)) => {
                    masks.insert(item.name.to_string(), m.to_spec());
                }
            }
        }
        let purpose = input.purpose.trim();
        if purpose.is_empty() || purpose.chars().count() > 2000 {
            errs.push(FieldError::new("purpose", "required", "须写明用途（1–2000 字）/ the purpose is required"));
        }
        let now = Utc::now().trunc_subsecs(6);
        if let Some(e) = input.expires_at
            && e <= now
        {
            errs.push(FieldError::new(
                "expires_at",
                "in_the_past",
                "到期时间须晚于现在 / expires_at must be in the future",
            ));
        }
        errs.into_result()?;
        let record = GrantRecord {
            id: Uuid::now_v7(),
            resource_id: resource.id,
            grantee_kind: kind,
            grantee,
            fields,
            row_filter,
            masks,
            purpose: purpose.to_string(),
            valid_from: input.valid_from.map(|v| v.trunc_subsecs(6)).unwrap_or(now),
            expires_at: input.expires_at.map(|v| v.trunc_subsecs(6)),
            granted_by: principal.username.to_string(),
            created_at: now,
            revoked_at: None,
            revoked_by: None,
        };
        // The grant never gives more than the resource's policy allows the grantee, and no
        // mask it asks for may be undone by the rest of what it releases: what the gate would
        // not honour is refused here, naming the item.
        self.check_grant_effect(&resource, &record, regions.as_deref())?;
        self.store.create_grant(&record).await?;
        // At most one active grant per resource and grantee: the new one supersedes the others
        // (a grant the platform issues on a 无条件共享 request only adds, so it supersedes none).
        for old in self.store.grants_for_resource(resource.id).await? {
            if by != IssuedBy::Policy
                && old.id != record.id
                && old.grantee_kind == record.grantee_kind
                && old.grantee == record.grantee
                && old.revoked_at.is_none()
            {
                let label = if by == IssuedBy::Renewal { "renewal" } else { "superseded" };
                self.store.revoke_grant(old.id, now, label).await?;
            }
        }
        Ok(record)
    }

    /// Refuse a grant whose masks the gate would not honour: a public grant asking to lift a
    /// mask the open rules require, or a lifted mask that would let a masked identifier be
    /// rebuilt from the rest of the release (e.g. 出生日期 in clear beside a masked 身份证号).
    fn check_grant_effect(
        &self,
        resource: &Resource,
        record: &GrantRecord,
        regions: Option<&citydata_domain::geo::Regions>,
    ) -> Result<(), CoreError> {
        let Some(grant) = crate::gate::to_domain(record, resource, regions) else { return Ok(()) };
        let caller = match &grant.grantee {
            Grantee::Department(d) => Caller::Department { user_id: Uuid::nil(), departments: vec![d.clone()] },
            Grantee::User(u) => Caller::Public { user_id: *u },
        };
        // Judge the grant as if it were already valid.
        let grant = Grant { valid_from: Utc::now() - chrono::Duration::seconds(1), expires_at: None, ..grant };
        let Decision::Allow(allow) =
            decide(&caller, resource, Action::ReadRows, std::slice::from_ref(&grant), Utc::now())
        else {
            return Ok(());
        };
        let mut errs = ValidationErrors::new();
        for (item, asked) in &grant.masks {
            if !allow.fields.contains(item) {
                continue;
            }
            let got = allow.masks.get(item).cloned().unwrap_or(MaskSpec::Clear);
            if got.strength() > asked.strength() {
                let title =
                    resource.content.items.iter().find(|i| &i.name == item).map(|i| i.title.as_str()).unwrap_or("");
                errs.push(FieldError::new(
                    format!("masks.{item}"),
                    "mask_not_allowed",
                    format!(
                        "“{title}”不能以 {} 提供：按开放规则或与其他信息项组合后可重新识别个人，须至少为 {} / {item} cannot be given as {}: the open rules or the other items released with it would re-identify people; at least {} is needed",
                        asked.to_spec(),
                        got.to_spec(),
                        asked.to_spec(),
                        got.to_spec()
                    ),
                ));
            }
        }
        errs.into_result().map_err(Into::into)
    }

    /// Grants the principal is concerned with: on its departments' resources and to its
    /// departments or itself; platform admins see all.
    pub async fn list_grants(&self, principal: &Principal) -> Result<Vec<GrantRecord>, CoreError> {
        if principal.is_admin() {
            return Ok(self.store.list_grants(None, None, None).await?);
        }
        let mut out: Vec<GrantRecord> = Vec::new();
        for m in &principal.memberships {
            for g in self.store.list_grants(Some(m.department.as_str()), Some(m.department.as_str()), None).await? {
                if !out.iter().any(|x| x.id == g.id) {
                    out.push(g);
                }
            }
        }
        for g in self.store.list_grants(None, None, Some(principal.user_id)).await? {
            if !out.iter().any(|x| x.id == g.id) {
                out.push(g);
            }
        }
        out.sort_by_key(|g| std::cmp::Reverse(g.created_at));
        Ok(out)
    }

    /// Revoke a grant (stewards of the provider, platform admins).
    pub async fn revoke_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
    ) -> Result<GrantRecord, CoreError> {
        self.revoke_grant_because(meta, principal, id, None).await
    }

    /// [`Core::revoke_grant`] with the provider's reason, which the grantee's notice carries.
    pub async fn revoke_grant_because(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
        reason: Option<&str>,
    ) -> Result<GrantRecord, CoreError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty()).map(|r| r.chars().take(500).collect::<String>());
        let result = async {
            let not_found = || CoreError::NotFound(format!("授权不存在：{id} / no such grant"));
            let gid = Uuid::parse_str(id).map_err(|_| not_found())?;
            let g = self.store.get_grant(gid).await?.ok_or_else(not_found)?;
            let resource = self.store.get_resource(g.resource_id).await?.ok_or_else(not_found)?;
            if !can_edit(principal, &resource.content.provider) {
                return Err(if principal.is_member_of(&resource.content.provider) {
                    CoreError::forbidden()
                } else {
                    not_found()
                });
            }
            let now = Utc::now().trunc_subsecs(6);
            if !self.store.revoke_grant(gid, now, principal.username.as_str()).await? {
                return Err(CoreError::Conflict("授权已撤销 / the grant was already revoked".into()));
            }
            // Its shared tables (Delta Sharing) go with it.
            self.drop_shared_for_grant(g.resource_id, gid).await;
            // Tell the grantee (inbox and the grantee department's webhooks).
            let users = self.grantee_users(&g).await?;
            self.notify(
                &users,
                "grant.revoked",
                format!("授权已撤销：{} / grant revoked", resource.content.name),
                match &reason {
                    Some(r) => format!(
                        "{} 撤销了对“{}”的授权，理由：{r} / the grant was revoked: {r}",
                        principal.display_name, resource.content.name
                    ),
                    None => format!(
                        "{} 撤销了对“{}”的授权 / the grant was revoked",
                        principal.display_name, resource.content.name
                    ),
                },
                format!("/api/v1/resources/{}", resource.id),
            )
            .await?;
            Ok(GrantRecord { revoked_at: Some(now), revoked_by: Some(principal.username.to_string()), ..g })
        }
        .await;
        let mut extra = serde_json::Map::new();
        if let Some(r) = reason {
            extra.insert("reason".into(), serde_json::Value::String(r));
        }
        self.audited_with(meta, Actor::Principal(principal), "grant.revoke", Some(format!("grant:{id}")), extra, result)
            .await
    }
}

impl Core {
    /// After a resource's policy changed: tell the holders of active grants when their access
    /// shrank (not shared or not open any more, withdrawn, items removed). The gate already
    /// applies the new policy at their next read; this only tells them why.
    pub(crate) async fn notify_tightened(&self, before: &Resource, after: &Resource) -> Result<(), CoreError> {
        use citydata_domain::vocab::{OpenType, ResourceState};
        let removed: Vec<&str> = before
            .content
            .items
            .iter()
            .filter(|i| !after.content.items.iter().any(|j| j.name == i.name))
            .map(|i| i.title.as_str())
            .collect();
        let unshared = before.content.share.kind != ShareType::None && after.content.share.kind == ShareType::None;
        let unopened = before.content.open.kind != OpenType::None && after.content.open.kind == OpenType::None;
        let withdrawn = before.state == ResourceState::Published && after.state != ResourceState::Published;
        // Grants issued while a resource was shared or open unconditionally only added to what
        // everyone had (many were issued by the platform without the provider's review); once
        // it needs an application they would become whole scopes, so they end here and the
        // grantees apply again.
        let share_tightened = before.content.share.kind == ShareType::Unconditional
            && after.content.share.kind != ShareType::Unconditional;
        let open_tightened =
            before.content.open.kind == OpenType::Unconditional && after.content.open.kind != OpenType::Unconditional;
        if removed.is_empty() && !unshared && !unopened && !withdrawn && !share_tightened && !open_tightened {
            return Ok(());
        }
        let now = Utc::now();
        for g in self.store.grants_for_resource(after.id).await? {
            let active = g.revoked_at.is_none() && g.expires_at.is_none_or(|e| e > now);
            let department = g.grantee_kind == GranteeKind::Department;
            if active && ((department && share_tightened) || (!department && open_tightened)) {
                self.store.revoke_grant(g.id, now.trunc_subsecs(6), "policy_change").await?;
                let users = self.grantee_users(&g).await?;
                self.notify(
                    &users,
                    "grant.revoked",
                    format!("授权已终止：{} / grant ended", after.content.name),
                    "资源改为须申请后使用，原授权终止，请重新申请 / the resource now needs an application: apply again"
                        .into(),
                    format!("/api/v1/resources/{}", after.id),
                )
                .await?;
                continue;
            }
            let affected = withdrawn
                || (g.grantee_kind == GranteeKind::Department && unshared)
                || (g.grantee_kind != GranteeKind::Department && unopened)
                || g.fields.is_empty() && !removed.is_empty()
                || after.content.items.len() < before.content.items.len()
                    && g.fields.iter().any(|f| !after.content.items.iter().any(|i| i.name.as_str() == f));
            if !active || !affected {
                continue;
            }
            let users = self.grantee_users(&g).await?;
            let why = if withdrawn {
                "资源已撤回 / the resource was withdrawn".to_string()
            } else if unshared || unopened {
                "资源已改为不予共享/开放 / the resource is no longer shared or open".to_string()
            } else {
                format!("已移除信息项：{} / items removed", removed.join("、"))
            };
            self.notify(
                &users,
                "grant.narrowed",
                format!("授权范围已缩小：{} / your access was narrowed", after.content.name),
                why,
                format!("/api/v1/resources/{}", after.id),
            )
            .await?;
        }
        Ok(())
    }
}
