//! 授权 (grants): stewards of the provider give a department or a public user a scope of a
//! resource — items, a row filter, masks, a period — and may revoke it. `decision` turns the
//! stored grants into the gate's answer for a caller.

use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::dept::DeptCode;
use citydata_domain::filter::Filter;
use citydata_domain::mask::MaskSpec;
use citydata_domain::policy::{Action, Caller, Decision, Grant, Grantee, decide};
use citydata_domain::principal::Principal;
use citydata_domain::resource::{ItemName, Resource};
use citydata_domain::vocab::ShareType;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::GrantRecord;
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
}

/// The gate's caller class for a principal.
pub fn caller(p: Option<&Principal>) -> Caller {
    match p {
        None => Caller::Anonymous,
        Some(p) if p.memberships.is_empty() => Caller::Public { user_id: p.user_id },
        Some(p) => Caller::Department {
            user_id: p.user_id,
            departments: p.memberships.iter().map(|m| m.department.clone()).collect(),
        },
    }
}

/// A stored grant as the gate's `Grant`; `None` when it no longer fits the resource's items.
pub fn to_domain(r: &GrantRecord, resource: &Resource) -> Option<Grant> {
    let items = &resource.content.items;
    let grantee = match r.grantee_kind.as_str() {
        "department" => Grantee::Department(DeptCode::parse(&r.grantee).ok()?),
        _ => Grantee::User(Uuid::parse_str(&r.grantee).ok()?),
    };
    let fields = r.fields.iter().map(|f| ItemName::parse(f).ok()).collect::<Option<Vec<_>>>()?;
    let row_filter = match &r.row_filter {
        Some(t) => Some(Filter::parse(t, items).ok()?),
        None => None,
    };
    let masks = r
        .masks
        .iter()
        .map(|(k, v)| Some((ItemName::parse(k).ok()?, MaskSpec::parse(v).ok()?)))
        .collect::<Option<BTreeMap<_, _>>>()?;
    Some(Grant {
        id: r.id,
        resource_id: r.resource_id,
        grantee,
        fields,
        row_filter,
        masks,
        purpose: r.purpose.clone(),
        valid_from: r.valid_from,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
    })
}

impl Core {
    /// What `principal` may read of `resource` for `action`.
    pub async fn decision(
        &self,
        principal: Option<&Principal>,
        resource: &Resource,
        action: Action,
    ) -> Result<Decision, CoreError> {
        let records = self.store.grants_for_resource(resource.id).await?;
        let grants: Vec<Grant> = records.iter().filter_map(|r| to_domain(r, resource)).collect();
        Ok(decide(&caller(principal), resource, action, &grants, Utc::now()))
    }

    /// Grant a scope of a resource (stewards and department admins of the provider, platform admins).
    pub async fn create_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewGrantInput,
    ) -> Result<GrantRecord, CoreError> {
        let result = self.create_grant_inner(principal, input).await;
        let target = result
            .as_ref()
            .ok()
            .map(|g| format!("grant:{}", g.id))
            .or_else(|| Some(format!("resource:{}", input.resource_id)));
        self.audited(meta, Actor::Principal(principal), "grant.create", target, result).await
    }

    async fn create_grant_inner(&self, principal: &Principal, input: &NewGrantInput) -> Result<GrantRecord, CoreError> {
        let resource = self.get_resource(Some(principal), &input.resource_id).await?;
        if !can_edit(principal, &resource.content.provider) {
            return Err(CoreError::forbidden());
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
                    ("department", code.to_string())
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
                    ("department", code.to_string())
                }
                Err(e) => {
                    errs.push(FieldError { field: "grantee.department".into(), ..e });
                    ("department", String::new())
                }
            },
            (None, Some(u)) => match Uuid::parse_str(u) {
                Ok(id) => {
                    if self.store.get_user(id).await?.is_none() {
                        errs.push(FieldError::new("grantee.user", "unknown_user", "用户不存在 / no such user"));
                    }
                    ("user", id.to_string())
                }
                Err(_) => {
                    errs.push(FieldError::new(
                        "grantee.user",
                        "invalid_user",
                        "grantee.user 须为用户 ID / grantee.user must be a user id",
                    ));
                    ("user", String::new())
                }
            },
            _ => {
                errs.push(FieldError::new(
                    "grantee",
                    "invalid_grantee",
                    "须且只能指定 department 或 user 之一 / give exactly one of department or user",
                ));
                ("department", String::new())
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
        let row_filter = match input.row_filter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => match Filter::parse(t, items) {
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
            grantee_kind: kind.into(),
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
        self.store.create_grant(&record).await?;
        Ok(record)
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
            // Tell the grantee (inbox and the grantee department's webhooks).
            let users = self.grantee_users(&g).await?;
            self.notify(
                &users,
                "grant.revoked",
                format!("授权已撤销：{} / grant revoked", resource.content.name),
                format!("{} 撤销了对“{}”的授权 / the grant was revoked", principal.username, resource.content.name),
                format!("/api/v1/resources/{}", resource.id),
            )
            .await?;
            Ok(GrantRecord { revoked_at: Some(now), revoked_by: Some(principal.username.to_string()), ..g })
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "grant.revoke", Some(format!("grant:{id}")), result).await
    }
}
