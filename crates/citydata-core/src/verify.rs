//! 核验 (verification, "usable but invisible", issue #23): a department holding a
//! *verification grant* submits records (e.g. 身份证号 + 姓名) and learns per record whether the
//! provider's row found by the key items agrees — `match` / `no_match` / `not_found` /
//! `invalid` — and, for the items it asks to compare, `match` / `mismatch`; never a value.
//!
//! 1. validations: the items are the resource's and the grant's, the batch within the grant's
//!    limit, every key item given; malformed identifiers (the GB validators) answer `invalid`
//!    for their record only;
//! 2. authorization: an active verification grant to one of the caller's departments (a
//!    verification grant gives no rows: `GrantStore::grants_for_resource`, which the gate
//!    reads, never returns it, so no read path honours it);
//! 3. no enumeration: `citydata_domain::verify::enumeration` refuses batches of neighbouring
//!    keys; the grant's daily quota and the caller's (`VerifyLimits::user_daily_quota`) are
//!    taken before any lookup (429 `quota_exhausted` with the reset time);
//! 4. the lookup: one governed plan over the table with `key IN (…)` for the batch's keys
//!    (the same filter pushdown and bloom filters as `rows?key=`), the grant's row filter
//!    ANDed, reading only the submitted items; compared here, dropped here;
//! 5. audit: `data.verify` with counts, outcomes and the submitted keys as keyed hashes
//!    (the pseudonym HMAC under the server's key) — never a submitted or stored value.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use arrow::array::{Array, StringArray};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use citydata_domain::dept::DeptCode;
use citydata_domain::filter::{Filter, Literal};
use citydata_domain::principal::Principal;
use citydata_domain::resource::{InfoItem, ItemName, Resource, Validator};
use citydata_domain::verify::{enumeration, normalize_key, repeats, well_formed};
use citydata_domain::vocab::{DataType, ResourceState};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_lake::governed::GovernedRead;
use citydata_store::{GrantRecord, GranteeKind, VerifyTermsRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// The largest batch any verification grant may allow.
pub const MAX_BATCH_CEILING: u32 = 10_000;

/// Defaults and the per-user quota (settings `verify_daily_quota`, `verify_max_batch`,
/// `verify_user_daily_quota`).
#[derive(Debug, Clone)]
pub struct VerifyLimits {
    /// A new verification grant's daily quota (records) when the grant does not set one.
    pub daily_quota: u32,
    /// A new verification grant's largest batch when the grant does not set one.
    pub max_batch: u32,
    /// Records one user may verify per day, over all grants.
    pub user_daily_quota: u32,
    /// Verification requests one user may make per second, counted over all nodes (0: no
    /// limit).
    pub per_second: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        Self { daily_quota: 10_000, max_batch: 1_000, user_daily_quota: 20_000, per_second: 50 }
    }
}

/// The terms of a verification grant as clients see them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyTerms {
    /// Records the grant may verify per day (the platform's local day, `time_zone`).
    pub daily_quota: i64,
    /// Records one request may carry.
    pub max_batch: i64,
}

impl From<&VerifyTermsRecord> for VerifyTerms {
    fn from(t: &VerifyTermsRecord) -> Self {
        Self { daily_quota: t.daily_quota, max_batch: t.max_batch }
    }
}

/// A verification request.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// Records to check: item (name or title) → value; every key item of the resource is
    /// required, the other items are compared.
    pub records: Vec<BTreeMap<String, String>>,
    /// Items whose agreement each answer names (`match` / `mismatch`), as given here.
    #[serde(default)]
    pub compare: Vec<String>,
}

/// A record's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerifyStatus {
    /// The row found by the key agrees on every submitted item.
    Match,
    /// A row has the key but disagrees on at least one submitted item.
    NoMatch,
    /// No row has the key.
    NotFound,
    /// A submitted value is malformed for its item (the GB validators): not looked up.
    Invalid,
}

impl VerifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::NoMatch => "no_match",
            Self::NotFound => "not_found",
            Self::Invalid => "invalid",
        }
    }
}

/// Whether one compared item agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldMatch {
    Match,
    Mismatch,
}

/// One record's answer: the status and, for found rows, the compared items.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordResult {
    pub status: VerifyStatus,
    /// Compared item (as named in `compare`) → agreement; only for `match` and `no_match`,
    /// only for items the record submitted.
    pub fields: BTreeMap<String, FieldMatch>,
}

/// The answers, in the order of the records.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResult {
    pub results: Vec<RecordResult>,
    /// Records the caller may still verify today under this grant (the lower of the grant's
    /// and the user's quota).
    pub quota_left: i64,
}

/// Items as submitted, resolved: the item and its normalized value.
struct Submitted<'a> {
    values: Vec<(&'a InfoItem, String)>,
}

fn active(g: &GrantRecord, now: DateTime<Utc>) -> bool {
    g.revoked_at.is_none() && g.valid_from <= now && g.expires_at.is_none_or(|e| e > now)
}

fn holds(g: &GrantRecord, p: &Principal) -> bool {
    match g.grantee_kind {
        GranteeKind::Department => p.memberships.iter().any(|m| m.department.as_str() == g.grantee),
        GranteeKind::User => g.grantee == p.user_id.to_string(),
    }
}

/// The next local midnight after `now` (the platform's `time_zone`, +08:00 by default): when
/// the daily quotas reset.
fn next_reset(now: DateTime<Utc>) -> DateTime<Utc> {
    crate::licenses::local_day(now).1
}

fn quota_exhausted(now: DateTime<Utc>) -> CoreError {
    let resets_at = next_reset(now);
    CoreError::QuotaExhausted { retry_after_secs: (resets_at - now).num_seconds().max(1) as u64, resets_at }
}

/// Values compare after trimming; identifiers (and text keys) case-insensitively, dates as
/// dates whatever their spelling (2024/1/5, 2024年1月5日).
fn same(item: &InfoItem, submitted: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else { return false };
    let s = submitted.trim();
    match item.data_type {
        DataType::Date => match (citydata_domain::cast::parse_date(s), citydata_domain::cast::parse_date(stored)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ if item.key
            || matches!(
                item.validator,
                Some(Validator::IdCard | Validator::Uscc | Validator::OrgCode | Validator::Email)
            ) =>
        {
            normalize_key(s) == normalize_key(stored)
        }
        _ => s == stored.trim(),
    }
}

fn key_literal(item: &InfoItem, v: &str) -> Option<Literal> {
    match item.data_type {
        DataType::Integer => citydata_domain::cast::parse_int(v).map(Literal::Int),
        DataType::Date => citydata_domain::cast::parse_date(v).map(Literal::Date),
        _ => Some(Literal::Str(v.to_string())),
    }
}

impl Core {
    /// The terms of a grant when it is a verification grant.
    pub async fn verify_terms(&self, grant_id: Uuid) -> Result<Option<VerifyTerms>, CoreError> {
        Ok(self.store.verify_terms(grant_id).await?.as_ref().map(VerifyTerms::from))
    }

    /// Grant a department the verification of records against a resource (the provider's
    /// stewards and admins). `fields` names the items it may submit and compare and must hold
    /// every key item; allowed even on 不予共享 resources, since it hands over no data.
    pub(crate) async fn create_verify_grant(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &crate::grants::NewGrantInput,
    ) -> Result<GrantRecord, CoreError> {
        let result = self.create_verify_grant_inner(principal, input).await;
        let target = match &result {
            Ok(g) => Some(format!("grant:{}", g.id)),
            Err(_) => Some(format!("resource:{}", input.resource_id)),
        };
        let mut extra = serde_json::Map::new();
        extra.insert("kind".into(), "verify".into());
        self.audited_with(meta, Actor::Principal(principal), "grant.create", target, extra, result).await
    }

    async fn create_verify_grant_inner(
        &self,
        principal: &Principal,
        input: &crate::grants::NewGrantInput,
    ) -> Result<GrantRecord, CoreError> {
        let resource = self.get_resource(Some(principal), &input.resource_id).await?;
        if !crate::catalog::can_grant(principal, &resource.content.provider) {
            return Err(CoreError::Forbidden(
                "只有资源提供部门的数据管理员或部门管理员可以授权 / only the provider department's stewards and admins grant access to its data".into(),
            ));
        }
        let mut errs = ValidationErrors::new();
        let grantee = match (&input.grantee.department, &input.grantee.user) {
            (Some(d), None) => match DeptCode::parse(d) {
                Ok(code) if code == resource.content.provider => {
                    errs.push(FieldError::new(
                        "grantee.department",
                        "own_department",
                        "不能授权给资源提供方自身 / the provider needs no grant",
                    ));
                    String::new()
                }
                Ok(code) => {
                    if self.store.get_department(&code).await?.is_none() {
                        errs.push(FieldError::new(
                            "grantee.department",
                            "unknown_department",
                            format!("部门不存在：{code} / no such department"),
                        ));
                    }
                    code.to_string()
                }
                Err(e) => {
                    errs.push(FieldError { field: "grantee.department".into(), ..e });
                    String::new()
                }
            },
            _ => {
                errs.push(FieldError::new(
                    "grantee",
                    "invalid_grantee",
                    "核验授权须指定 department / a verification grant names a department",
                ));
                String::new()
            }
        };
        let mut fields = Vec::new();
        for (i, f) in input.fields.iter().enumerate() {
            match resource.content.item(f) {
                Some(item) if !fields.contains(&item.name.to_string()) => fields.push(item.name.to_string()),
                Some(_) => {}
                None => errs.push(FieldError::new(
                    format!("fields[{i}]"),
                    "unknown_item",
                    format!("没有信息项“{f}” / no item \"{f}\""),
                )),
            }
        }
        let keys: Vec<&InfoItem> = resource.content.items.iter().filter(|i| i.key).collect();
        if keys.is_empty() {
            errs.push(FieldError::new(
                "resource_id",
                "no_key",
                "该资源没有主键信息项，无法核验 / the resource has no key item to look records up by",
            ));
        }
        for k in &keys {
            if !fields.contains(&k.name.to_string()) {
                errs.push(FieldError::new(
                    "fields",
                    "missing_key",
                    format!(
                        "核验授权须包含主键“{}” / a verification grant must include the key item {}",
                        k.title, k.name
                    ),
                ));
            }
        }
        if !input.masks.is_empty() {
            errs.push(FieldError::new(
                "masks",
                "not_applicable",
                "核验授权不提供数据，不设脱敏 / a verification grant returns no values to mask",
            ));
        }
        let row_filter = match input.row_filter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => match Filter::parse(t, &resource.content.items) {
                Ok(f) => Some(f.to_string()),
                Err(e) => {
                    errs.push(FieldError { field: "row_filter".into(), ..e });
                    None
                }
            },
        };
        let daily_quota = input.daily_quota.unwrap_or(self.config.verify.daily_quota);
        if daily_quota == 0 || daily_quota > 10_000_000 {
            errs.push(FieldError::new(
                "daily_quota",
                "out_of_range",
                "每日额度须在 1–10,000,000 之间 / daily_quota must be 1–10,000,000",
            ));
        }
        let max_batch = input.max_batch.unwrap_or(self.config.verify.max_batch);
        if max_batch == 0 || max_batch > MAX_BATCH_CEILING {
            errs.push(FieldError::new(
                "max_batch",
                "out_of_range",
                format!("单批上限须在 1–{MAX_BATCH_CEILING} 之间 / max_batch must be 1–{MAX_BATCH_CEILING}"),
            ));
        }
        let purpose = input.purpose.trim();
        if purpose.is_empty() || purpose.chars().count() > 2000 {
            errs.push(FieldError::new("purpose", "required", "须写明用途（1–2000 字）/ the purpose is required"));
        }
        let now = Utc::now().trunc_subsecs(6);
        if input.expires_at.is_some_and(|e| e <= now) {
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
            grantee_kind: GranteeKind::Department,
            grantee,
            fields,
            row_filter,
            masks: BTreeMap::new(),
            purpose: purpose.to_string(),
            valid_from: input.valid_from.map(|v| v.trunc_subsecs(6)).unwrap_or(now),
            expires_at: input.expires_at.map(|v| v.trunc_subsecs(6)),
            granted_by: principal.username.to_string(),
            created_at: now,
            revoked_at: None,
            revoked_by: None,
        };
        // The terms first: the grant row never exists without them (it would read as access).
        let terms =
            VerifyTermsRecord { grant_id: record.id, daily_quota: daily_quota as i64, max_batch: max_batch as i64 };
        self.store.create_verify_terms(&terms).await?;
        self.store.create_grant(&record).await?;
        for old in self.store.verify_grants_for_resource(resource.id).await? {
            if old.id != record.id && old.grantee == record.grantee && old.revoked_at.is_none() {
                self.store.revoke_grant(old.id, now, "superseded").await?;
            }
        }
        Ok(record)
    }

    /// Verify records against a resource under the caller's verification grant.
    pub async fn verify_records(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
        input: &VerifyInput,
    ) -> Result<VerifyResult, CoreError> {
        let mut details = serde_json::Map::new();
        details.insert("records".into(), input.records.len().into());
        let resource = self.get_resource(Some(principal), key).await?;
        let target = Some(format!("resource:{}", resource.content.code));
        let result = self.verify_inner(principal, &resource, input, &mut details).await;
        self.audited_with(meta, Actor::Principal(principal), "data.verify", target, details, result).await
    }

    async fn verify_inner(
        &self,
        principal: &Principal,
        resource: &Resource,
        input: &VerifyInput,
        details: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<VerifyResult, CoreError> {
        let now = Utc::now();
        // Authorization: an active verification grant held by the caller.
        let grants = self.store.verify_grants_for_resource(resource.id).await?;
        let grant = grants.iter().find(|g| active(g, now) && holds(g, principal));
        let (Some(grant), ResourceState::Published) = (grant, resource.state) else {
            return Err(CoreError::Forbidden(
                "没有该资源有效的核验授权 / no active verification grant on this resource".into(),
            ));
        };
        let terms = self
            .store
            .verify_terms(grant.id)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("verification grant {} has no terms", grant.id)))?;
        details.insert("grant".into(), grant.id.to_string().into());
        // Validations: the batch, the items, the keys.
        if input.records.is_empty() {
            return Err(
                FieldError::new("records", "required", "须提交至少一条记录 / submit at least one record").into()
            );
        }
        if input.records.len() as i64 > terms.max_batch {
            return Err(CoreError::TooLarge(format!(
                "一次最多核验 {} 条记录，本次 {} 条 / at most {} records per request, got {}",
                terms.max_batch,
                input.records.len(),
                terms.max_batch,
                input.records.len()
            )));
        }
        let allowed: BTreeSet<&str> = grant.fields.iter().map(String::as_str).collect();
        let mut errs = ValidationErrors::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        let mut check_item = |field: String, name: &str, errs: &mut ValidationErrors| -> Option<&InfoItem> {
            match resource.content.item(name) {
                Some(item) if allowed.contains(item.name.as_str()) => Some(item),
                found => {
                    if refused.insert(name.to_string()) {
                        let (code, msg) = match found {
                            None => ("unknown_item", format!("没有信息项“{name}” / no item \"{name}\"")),
                            Some(_) => (
                                "item_not_allowed",
                                format!(
                                    "核验授权不包含信息项“{name}” / the verification grant does not cover \"{name}\""
                                ),
                            ),
                        };
                        errs.push(FieldError::new(field, code, msg));
                    }
                    None
                }
            }
        };
        let mut compare: Vec<(&str, &InfoItem)> = Vec::new();
        for (j, c) in input.compare.iter().enumerate() {
            if let Some(item) = check_item(format!("compare[{j}]"), c.trim(), &mut errs) {
                compare.push((c.trim(), item));
            }
        }
        let keys: Vec<&InfoItem> = resource.content.items.iter().filter(|i| i.key).collect();
        let mut submitted: Vec<Submitted<'_>> = Vec::with_capacity(input.records.len());
        for (i, rec) in input.records.iter().enumerate() {
            let mut values: Vec<(&InfoItem, String)> = Vec::new();
            for (name, value) in rec {
                let Some(item) = check_item(format!("records[{i}].{name}"), name.trim(), &mut errs) else { continue };
                if values.iter().any(|(it, _)| it.name == item.name) {
                    errs.push(FieldError::new(
                        format!("records[{i}]"),
                        "duplicate_item",
                        format!("信息项“{}”重复 / item {} given twice", item.title, item.name),
                    ));
                }
                values.push((item, value.trim().to_string()));
            }
            for k in &keys {
                if !values.iter().any(|(it, _)| it.name == k.name) && errs.0.len() < 20 {
                    errs.push(FieldError::new(
                        format!("records[{i}]"),
                        "missing_key",
                        format!("缺少主键“{}” / the key item {} is required", k.title, k.name),
                    ));
                }
            }
            submitted.push(Submitted { values });
        }
        errs.into_result()?;
        // Malformed values answer `invalid`; the others are looked up by their keys.
        let key_of = |s: &Submitted<'_>| -> Vec<String> {
            keys.iter()
                .map(|k| {
                    s.values.iter().find(|(it, _)| it.name == k.name).map(|(_, v)| normalize_key(v)).unwrap_or_default()
                })
                .collect()
        };
        let valid: Vec<bool> = submitted
            .iter()
            .map(|s| {
                s.values.iter().all(|(it, v)| well_formed(it.validator.as_ref(), v))
                    && keys.iter().all(|k| {
                        s.values
                            .iter()
                            .find(|(it, _)| it.name == k.name)
                            .is_some_and(|(_, v)| key_literal(k, v).is_some())
                    })
            })
            .collect();
        let joined: Vec<String> = submitted.iter().map(|s| key_of(s).join("\u{1f}")).collect();
        let hashes: Vec<String> =
            joined.iter().map(|k| citydata_lake::mask::pseudonym(&self.config.pseudonym_key, k)).collect();
        details.insert("keys".into(), hashes.into());
        details.insert("compare".into(), compare.iter().map(|(_, i)| i.name.to_string()).collect::<Vec<_>>().into());
        let lookup: Vec<String> = joined.iter().zip(&valid).filter(|(_, v)| **v).map(|(k, _)| k.clone()).collect();
        if let Some(size) = enumeration(&lookup) {
            details.insert("enumeration_group".into(), size.into());
            return Err(FieldError::new(
                "records",
                "enumeration_suspected",
                format!(
                    "批次中有 {size} 个仅末 {} 位不同的主键，疑似遍历，已拒绝 / {size} keys differ only in their last {} characters: the batch looks like enumeration and is refused",
                    citydata_domain::verify::NEIGHBOUR_SUFFIX,
                    citydata_domain::verify::NEIGHBOUR_SUFFIX
                ),
            )
            .into());
        }
        if let Some(n) = repeats(&lookup) {
            details.insert("repeated_key".into(), n.into());
            return Err(FieldError::new(
                "records",
                "enumeration_suspected",
                format!(
                    "同一主键在批次中出现 {n} 次（上限 {}），疑似逐项试探，已拒绝 / one key appears {n} times in the batch (at most {}): refused as guessing",
                    citydata_domain::verify::MAX_REPEATS,
                    citydata_domain::verify::MAX_REPEATS
                ),
            )
            .into());
        }
        // Requests per user and second, over all nodes.
        let per_second = self.config.verify.per_second;
        if per_second > 0 {
            let second = now.format("%Y-%m-%dT%H:%M:%S").to_string();
            let until = now + Duration::seconds(1);
            if !self.take_rate(&format!("verify:user:{}", principal.user_id), &second, until, per_second.into()).await?
            {
                details.insert("limit".into(), "per_second".into());
                return Err(CoreError::RateLimited { retry_after_secs: 1 });
            }
        }
        // Quotas: the grant's, then the user's (per local day); all or nothing.
        let n = input.records.len() as i64;
        let day = crate::licenses::local_day(now).0;
        let grant_scope = format!("grant:{}", grant.id);
        let user_scope = format!("user:{}", principal.user_id);
        let Some(grant_used) = self.store.take_verify_quota(&grant_scope, &day, n, terms.daily_quota).await? else {
            details.insert("quota".into(), "grant".into());
            return Err(quota_exhausted(now));
        };
        let user_limit = self.config.verify.user_daily_quota as i64;
        let Some(user_used) = self.store.take_verify_quota(&user_scope, &day, n, user_limit).await? else {
            self.store.return_verify_quota(&grant_scope, &day, n).await?;
            details.insert("quota".into(), "user".into());
            return Err(quota_exhausted(now));
        };
        let quota_left = (terms.daily_quota - grant_used).min(user_limit - user_used).max(0);
        // The lookup: one plan, `key IN (…)` per key item, the grant's row filter ANDed.
        let found = self.lookup(resource, grant, &keys, &submitted, &valid).await?;
        let mut results = Vec::with_capacity(submitted.len());
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (i, s) in submitted.iter().enumerate() {
            let r = if !valid[i] {
                RecordResult { status: VerifyStatus::Invalid, fields: BTreeMap::new() }
            } else {
                match found.get(&key_of(s)) {
                    None => RecordResult { status: VerifyStatus::NotFound, fields: BTreeMap::new() },
                    Some(row) => {
                        let agrees =
                            |item: &InfoItem, v: &str| same(item, v, row.get(&item.name).and_then(|x| x.as_deref()));
                        let all = s.values.iter().all(|(it, v)| agrees(it, v));
                        let mut fields = BTreeMap::new();
                        for (label, item) in &compare {
                            if let Some((_, v)) = s.values.iter().find(|(it, _)| it.name == item.name) {
                                fields.insert(
                                    label.to_string(),
                                    if agrees(item, v) { FieldMatch::Match } else { FieldMatch::Mismatch },
                                );
                            }
                        }
                        RecordResult { status: if all { VerifyStatus::Match } else { VerifyStatus::NoMatch }, fields }
                    }
                }
            };
            *counts.entry(r.status.as_str()).or_default() += 1;
            results.push(r);
        }
        details.insert("outcomes".into(), serde_json::to_value(&counts).unwrap_or_default());
        details.insert("quota_left".into(), quota_left.into());
        Ok(VerifyResult { results, quota_left })
    }

    /// The rows of the batch's keys, as text, by key: one governed plan with `IN` lists, so
    /// the lake prunes files and row groups by statistics and bloom filters (no scan).
    async fn lookup(
        &self,
        resource: &Resource,
        grant: &GrantRecord,
        keys: &[&InfoItem],
        submitted: &[Submitted<'_>],
        valid: &[bool],
    ) -> Result<HashMap<Vec<String>, HashMap<ItemName, Option<String>>>, CoreError> {
        let mut filters: Vec<Filter> = Vec::new();
        for k in keys {
            let mut values: Vec<Literal> = Vec::new();
            let mut seen = BTreeSet::new();
            for (s, ok) in submitted.iter().zip(valid) {
                if !ok {
                    continue;
                }
                if let Some((_, v)) = s.values.iter().find(|(it, _)| it.name == k.name) {
                    // The key as stored and as commonly written (an ID number's x / X).
                    for spelled in [v.clone(), normalize_key(v), v.to_lowercase()] {
                        if seen.insert(spelled.clone())
                            && let Some(l) = key_literal(k, &spelled)
                        {
                            values.push(l);
                        }
                    }
                }
            }
            if values.is_empty() {
                return Ok(HashMap::new());
            }
            filters.push(Filter::In { item: k.name.clone(), values, negated: false });
        }
        if let Some(t) = &grant.row_filter {
            // A grant filter that no longer parses finds nothing (fails closed).
            match Filter::parse(t, &resource.content.items) {
                Ok(f) => filters.push(f),
                Err(_) => return Ok(HashMap::new()),
            }
        }
        let mut fields: Vec<ItemName> = keys.iter().map(|k| k.name.clone()).collect();
        for s in submitted {
            for (it, _) in &s.values {
                if !fields.contains(&it.name) {
                    fields.push(it.name.clone());
                }
            }
        }
        let masks = BTreeMap::new();
        let read = GovernedRead {
            fields: fields.clone(),
            masks: &masks,
            filters: filters.iter().collect(),
            sort: vec![],
            offset: 0,
            limit: None,
            version: None,
            secret: &self.config.pseudonym_key,
            contains: vec![],
            order: None,
            spatial: citydata_lake::spatial::spatial_items(&resource.content.items),
            regions: None,
        };
        let code = resource.content.code.to_string();
        let batches =
            self.lake()?.read_governed(resource.id, &read).await.map_err(|e| CoreError::from(e).for_resource(&code))?;
        let mut out = HashMap::new();
        for b in &batches {
            let cols: Vec<StringArray> = fields
                .iter()
                .map(|f| {
                    let c = b
                        .column_by_name(f.as_str())
                        .ok_or_else(|| CoreError::Internal(format!("lookup lost column {f}")))?;
                    let t = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)
                        .map_err(|e| CoreError::Internal(format!("lookup cast {f}: {e}")))?;
                    t.as_any()
                        .downcast_ref::<StringArray>()
                        .cloned()
                        .ok_or_else(|| CoreError::Internal(format!("lookup cast {f}")))
                })
                .collect::<Result<_, _>>()?;
            for row in 0..b.num_rows() {
                let value = |c: &StringArray| (!c.is_null(row)).then(|| c.value(row).to_string());
                let key: Vec<String> =
                    cols[..keys.len()].iter().map(|c| normalize_key(&value(c).unwrap_or_default())).collect();
                let map: HashMap<ItemName, Option<String>> =
                    fields.iter().zip(&cols).map(|(f, c)| (f.clone(), value(c))).collect();
                out.entry(key).or_insert(map);
            }
        }
        Ok(out)
    }
}

/// A verification grant the caller holds now, with its resource and terms (the console's form).
pub struct HeldVerifyGrant {
    pub resource: Resource,
    pub grant: GrantRecord,
    pub terms: VerifyTerms,
}

impl Core {
    /// The active verification grants held by the caller's departments (or the caller).
    pub async fn held_verify_grants(&self, principal: &Principal) -> Result<Vec<HeldVerifyGrant>, CoreError> {
        let now = Utc::now();
        let mut out = Vec::new();
        for grant in self.list_grants(principal).await? {
            if !active(&grant, now) || !holds(&grant, principal) {
                continue;
            }
            let Some(t) = self.store.verify_terms(grant.id).await? else { continue };
            let Ok(resource) = self.get_resource(Some(principal), &grant.resource_id.to_string()).await else {
                continue;
            };
            out.push(HeldVerifyGrant { resource, grant, terms: VerifyTerms::from(&t) });
        }
        Ok(out)
    }
}
