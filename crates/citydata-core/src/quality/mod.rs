//! 数据质量 (data quality): rule targets checked against the gate, the quality report of each
//! table version (computed from the converter's counters during ingest, stored per version),
//! its trend, 纠错 tickets ([`tickets`]) and timeliness against the 更新周期 ([`timeliness`]).
//!
//! Visibility: a report's counts and rates go to whoever sees the catalog entry; failing
//! values (cells) only to [`crate::ingest::sees_cells`], the provider's stewards.

use crate::ingest::sees_cells;
use crate::{Core, CoreError};
use chrono::{DateTime, Utc};
use citydata_domain::policy::{Action, Caller, Decision, decide};
use citydata_domain::principal::Principal;
use citydata_domain::quality::{self, Dimensions, QualityRule, RuleKind};
use citydata_domain::resource::{Resource, ResourceContent};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_lake::ingest::IngestReport;
use citydata_lake::quality::{QualityCounts, References};
use citydata_store::QualityReportRecord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub mod io;
pub mod profile;
pub mod tickets;
pub mod timeliness;

/// One item's rates in a report (0–1; `None` where no check of that kind applies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemQuality {
    pub name: String,
    pub title: String,
    /// Cells present / rows.
    pub completeness: f64,
    /// Present cells passing type, validator and validity rules / present cells.
    pub validity: f64,
    /// For key items and `unique` rules: 1 − repeated values / present cells.
    pub uniqueness: Option<f64>,
    /// For items in cross-item rules: 1 − disagreeing cells / present cells.
    pub consistency: Option<f64>,
    /// For `reference` rules: 1 − values missing from the target / present cells.
    pub reference: Option<f64>,
    /// For `freshness` rules: 1 − stale cells / present cells.
    pub timeliness: Option<f64>,
    pub present: u64,
    pub invalid: u64,
    pub duplicate: u64,
    pub inconsistent: u64,
    pub unreferenced: u64,
    pub stale: u64,
}

/// A failing value and how often it failed (the provider only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailingValue {
    pub value: String,
    pub count: u64,
}

/// One quality rule's outcome in a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleOutcome {
    /// The rule's spec, e.g. `range(nl, 0, 150)`; built-in checks are named by their code
    /// (`id_card`, `mobile`, `required`, `unique_key`, `id_card_sex`, ...).
    pub rule: String,
    pub item: Option<String>,
    /// `reject`, `warn` or `info`; built-in checks reject.
    pub severity: String,
    /// Failing rows (cells); `None` when the rule could not be evaluated (a reference whose
    /// target the provider may no longer read).
    pub failed: Option<u64>,
    /// The most frequent failing values: for the provider only, absent for everyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_values: Option<Vec<FailingValue>>,
}

/// The quality report of one table version (GB/T 36344 dimensions).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityReport {
    pub resource_id: Uuid,
    pub version: i64,
    /// 0–100: the dimensions weighted by `quality_weights`.
    pub score: f64,
    pub dimensions: Dimensions,
    /// Rows the version's ingest read (append: the upload; replace: the whole table).
    pub rows: u64,
    /// Rows quarantined by `reject` checks.
    pub rows_quarantined: u64,
    pub items: Vec<ItemQuality>,
    pub rules: Vec<RuleOutcome>,
    pub ingest_id: Option<Uuid>,
    pub computed_at: DateTime<Utc>,
    /// Confirmed 纠错 tickets (accuracy), as of `computed_at` or of this reading for the
    /// newest version.
    pub confirmed_tickets: u64,
    /// A full profile of the stored version (on demand), not the ingest's counters.
    #[serde(default)]
    pub profile: bool,
}

/// One point of the quality trend.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityPoint {
    pub version: i64,
    pub score: f64,
    pub dimensions: Dimensions,
    pub rows: u64,
    pub computed_at: DateTime<Utc>,
}

fn rate(bad: u64, of: u64) -> f64 {
    if of == 0 { 1.0 } else { 1.0 - bad.min(of) as f64 / of as f64 }
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, s) = xs.fold((0u32, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f64)
}

/// Build the report (public part, samples) from an ingest's counters.
pub(crate) fn build_report(
    resource: &Resource,
    counts: &QualityCounts,
    ingest: &IngestReport,
    version: i64,
    weights: &quality::QualityWeights,
    now: DateTime<Utc>,
) -> (QualityReport, serde_json::Value) {
    let c = &resource.content;
    let rows = counts.rows;
    let rules = &c.quality_rules;
    let has = |name: &str, f: &dyn Fn(&QualityRule) -> bool| rules.iter().any(|r| r.item.as_str() == name && f(r));
    let in_consistency = |name: &str| {
        c.consistency.iter().any(|r| r.to_spec().contains(&format!(", {name})")))
            || rules.iter().any(|r| r.other_item().is_some_and(|o| o.as_str() == name))
    };
    let items: Vec<ItemQuality> = c
        .items
        .iter()
        .zip(&counts.items)
        .map(|(it, k)| {
            let name = it.name.as_str();
            let unique = it.key || has(name, &|r| matches!(r.kind, RuleKind::Unique));
            ItemQuality {
                name: name.to_string(),
                title: it.title.clone(),
                completeness: if rows == 0 { 1.0 } else { k.present as f64 / rows as f64 },
                validity: rate(k.invalid, k.present),
                uniqueness: unique.then(|| rate(k.duplicate, k.present)),
                consistency: in_consistency(name).then(|| rate(k.inconsistent, k.present)),
                reference: has(name, &|r| matches!(r.kind, RuleKind::Reference { .. }))
                    .then(|| rate(k.unreferenced, k.present)),
                timeliness: has(name, &|r| matches!(r.kind, RuleKind::Freshness { .. }))
                    .then(|| rate(k.stale, k.present)),
                present: k.present,
                invalid: k.invalid,
                duplicate: k.duplicate,
                inconsistent: k.inconsistent,
                unreferenced: k.unreferenced,
                stale: k.stale,
            }
        })
        .collect();
    let required: Vec<&ItemQuality> = c
        .items
        .iter()
        .zip(&items)
        .filter(|(it, _)| it.required || has(it.name.as_str(), &|r| matches!(r.kind, RuleKind::NotNull)))
        .map(|(_, q)| q)
        .collect();
    let completeness = if required.is_empty() {
        mean(items.iter().map(|q| q.completeness))
    } else {
        mean(required.iter().map(|q| q.completeness))
    };
    let cycle = quality::timeliness(c.update_cycle, Some(now), now);
    let freshness = mean(items.iter().filter_map(|q| q.timeliness));
    let dims = Dimensions {
        completeness: completeness.unwrap_or(1.0),
        validity: mean(items.iter().filter(|q| q.present > 0).map(|q| q.validity)).unwrap_or(1.0),
        uniqueness: mean(items.iter().filter_map(|q| q.uniqueness)).unwrap_or(1.0),
        consistency: mean(items.iter().flat_map(|q| [q.consistency, q.reference]).flatten()).unwrap_or(1.0),
        timeliness: freshness.map_or(cycle, |f| f.min(cycle)),
        accuracy: 1.0,
    };
    // Built-in checks (validators, required, keys, consistency) as the ingest counted them,
    // then the quality rules in their order.
    let mut outcomes: Vec<RuleOutcome> = ingest
        .failures
        .iter()
        .filter(|f| !rules.iter().any(|r| r.kind.code() == f.rule && f.item.as_deref() == Some(r.item.as_str())))
        .map(|f| RuleOutcome {
            rule: f.rule.clone(),
            item: f.item.clone(),
            severity: "reject".into(),
            failed: Some(f.count),
            top_values: None,
        })
        .collect();
    let mut samples = serde_json::Map::new();
    for (i, (r, k)) in rules.iter().zip(&counts.rules).enumerate() {
        let shown_item = match &r.kind {
            RuleKind::IdCardBirthDate { date } => date.to_string(),
            RuleKind::IdCardSex { sex } => sex.to_string(),
            _ => r.item.to_string(),
        };
        outcomes.push(RuleOutcome {
            rule: r.spec(),
            item: Some(shown_item),
            severity: r.severity.as_str().into(),
            failed: k.evaluated.then_some(k.failed),
            top_values: None,
        });
        let top: Vec<FailingValue> = k.top(5).into_iter().map(|(value, count)| FailingValue { value, count }).collect();
        samples.insert(i.to_string(), serde_json::to_value(top).unwrap_or_default());
    }
    let report = QualityReport {
        resource_id: resource.id,
        version,
        score: weights.score(&dims),
        dimensions: dims,
        rows,
        rows_quarantined: ingest.rows_quarantined,
        items,
        rules: outcomes,
        ingest_id: Some(ingest.ingest_id),
        computed_at: now,
        confirmed_tickets: 0,
        profile: false,
    };
    let samples = serde_json::json!({
        "top_values": samples,
        "sample": serde_json::to_value(&ingest.sample).unwrap_or_default(),
    });
    (report, samples)
}

impl Core {
    /// Checks of quality rules that need the catalog: a `reference` names an existing
    /// resource, a key item of it, and one the provider department reads whole and unmasked
    /// (otherwise the failure counts would tell the provider which values exist there).
    pub(crate) async fn check_rule_targets(
        &self,
        content_provider: &citydata_domain::dept::DeptCode,
        rules: &[QualityRule],
        own_id: Option<Uuid>,
        own_code: Option<&citydata_domain::resource::ResourceCode>,
        errs: &mut ValidationErrors,
    ) -> Result<(), CoreError> {
        for (i, r) in rules.iter().enumerate() {
            let RuleKind::Reference { resource, item } = &r.kind else { continue };
            let field = format!("quality_rules[{i}]");
            if own_id.is_none() && own_code == Some(resource) {
                continue; // the resource itself, being created: its own items (checked by parse)
            }
            let Some(target) = self.store.find_resource(resource.as_str()).await? else {
                errs.push(FieldError::new(
                    &field,
                    "unknown_resource",
                    format!("reference 的目标资源不存在：{resource} / the referenced resource does not exist"),
                ));
                continue;
            };
            match target.content.items.iter().find(|it| &it.name == item) {
                Some(it) if it.key => {}
                Some(_) => {
                    errs.push(FieldError::new(
                        &field,
                        "not_a_key",
                        format!("{item} 不是 {resource} 的主键信息项 / {item} is not a key item of {resource}"),
                    ));
                    continue;
                }
                None => {
                    errs.push(FieldError::new(
                        &field,
                        "unknown_item",
                        format!("{resource} 没有信息项 {item} / {resource} has no item {item}"),
                    ));
                    continue;
                }
            }
            if Some(target.id) != own_id && !self.department_reads_whole(content_provider, &target, item).await? {
                errs.push(FieldError::new(
                    &field,
                    "reference_not_readable",
                    format!(
                        "提供部门无权完整读取 {resource} 的 {item}，不能引用（失败计数会泄露其内容）/ the provider department may not read {item} of {resource} whole and unmasked, so it cannot reference it (counts would leak its values)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Does the gate let `dept` read `item` of `target` unmasked, on every row?
    async fn department_reads_whole(
        &self,
        dept: &citydata_domain::dept::DeptCode,
        target: &Resource,
        item: &citydata_domain::resource::ItemName,
    ) -> Result<bool, CoreError> {
        let records = self.store.grants_for_resource(target.id).await?;
        let regions = self.grant_regions(&records).await?;
        let grants: Vec<_> =
            records.iter().filter_map(|g| crate::gate::to_domain(g, target, regions.as_deref())).collect();
        let caller = Caller::Department { user_id: Uuid::nil(), departments: vec![dept.clone()] };
        Ok(match decide(&caller, target, Action::ReadRows, &grants, Utc::now()) {
            Decision::Allow(a) => a.row_filter.is_none() && a.fields.contains(item) && !a.masks.contains_key(item),
            Decision::Deny(_) => false,
        })
    }

    /// The key sets of a resource's `reference` rules, for an ingest. A target the provider
    /// may no longer read (a grant revoked since the rule was written) is left out: the rule is
    /// reported as not evaluated.
    pub(crate) async fn reference_keys(
        &self,
        content: &ResourceContent,
        own_id: Uuid,
    ) -> Result<References, CoreError> {
        let mut out: References = HashMap::new();
        for (i, r) in content.quality_rules.iter().enumerate() {
            let RuleKind::Reference { resource, item } = &r.kind else { continue };
            let Some(target) = self.store.find_resource(resource.as_str()).await? else { continue };
            if target.id != own_id && !self.department_reads_whole(&content.provider, &target, item).await? {
                tracing::info!(rule = %r.spec(), "reference target no longer readable by the provider: rule skipped");
                continue;
            }
            let keys = self.lake()?.key_hashes(target.id, &[item.to_string()], None).await?;
            out.insert(i, Arc::new(keys));
        }
        Ok(out)
    }

    /// After an erasure: the failing values (`top_values`) and row samples of every stored
    /// report of the resource go, the counts stay. They quote cells of rows the erasure made
    /// unrecoverable (and the erasing commit's own report quotes the rows it deleted).
    pub(crate) async fn forget_quality_samples(&self, resource_id: Uuid) -> Result<(), CoreError> {
        for mut r in self.store.list_quality_reports(resource_id, u32::MAX).await? {
            if r.samples != serde_json::json!({}) {
                r.samples = serde_json::json!({});
                self.store.put_quality_report(&r).await?;
            }
        }
        Ok(())
    }

    /// Compute and store the quality report of the version an ingest committed.
    pub(crate) async fn record_quality(&self, resource: &Resource, report: &IngestReport) -> Result<(), CoreError> {
        let (Some(counts), Some(version)) = (&report.quality, report.table_version) else { return Ok(()) };
        if report.rejected || report.already_applied || report.rows_committed == 0 && report.rows_quarantined == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let (q, samples) = build_report(resource, counts, report, version, &self.config.quality_weights, now);
        let rec = QualityReportRecord {
            resource_id: resource.id,
            version,
            ingest_id: Some(report.ingest_id),
            report: serde_json::to_value(&q).map_err(|e| CoreError::Internal(e.to_string()))?,
            samples,
            created_at: now,
        };
        self.store.put_quality_report(&rec).await?;
        Ok(())
    }

    /// The quality report of a version (the newest by default), for whoever sees the resource:
    /// failing values only for the provider. The newest version's timeliness and accuracy are
    /// as of now.
    pub async fn quality_report(
        &self,
        principal: Option<&Principal>,
        key: &str,
        version: Option<i64>,
    ) -> Result<QualityReport, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        if let Some(v) = version
            && v < 0
        {
            return Err(FieldError::new("version", "invalid_version", "version 须为非负整数 / must be ≥ 0").into());
        }
        let newest = self.store.get_quality_report(resource.id, None).await?;
        let rec = match version {
            None => newest.clone(),
            Some(v) => self.store.get_quality_report(resource.id, Some(v)).await?,
        }
        .ok_or_else(|| {
            CoreError::NotFound(match version {
                Some(v) => format!("版本 {v} 没有质量报告 / no quality report for version {v}"),
                None => "此资源还没有质量报告（尚无数据导入）/ no quality report yet (no data ingested)".into(),
            })
        })?;
        let mut report: QualityReport = serde_json::from_value(rec.report.clone())
            .map_err(|e| CoreError::Internal(format!("stored quality report: {e}")))?;
        if newest.as_ref().is_some_and(|n| n.version == rec.version) {
            self.refresh_live(&resource, &mut report).await?;
        }
        if sees_cells(principal, &resource.content.provider) {
            let tops = rec.samples.get("top_values");
            let builtin = report.rules.len() - resource.content.quality_rules.len().min(report.rules.len());
            for (i, r) in report.rules.iter_mut().enumerate().skip(builtin) {
                let v = tops.and_then(|t| t.get((i - builtin).to_string()));
                r.top_values = v.and_then(|v| serde_json::from_value(v.clone()).ok()).or(Some(vec![]));
            }
        }
        Ok(report)
    }

    /// Timeliness (the cycle, from the last commit) and accuracy (confirmed tickets) now.
    async fn refresh_live(&self, resource: &Resource, report: &mut QualityReport) -> Result<(), CoreError> {
        let last = self.last_commit_at(resource).await?;
        let cycle = quality::timeliness(resource.content.update_cycle, last, Utc::now());
        let fresh = mean(report.items.iter().filter_map(|q| q.timeliness));
        report.dimensions.timeliness = fresh.map_or(cycle, |f| f.min(cycle));
        let confirmed = self.store.count_confirmed_tickets(resource.id).await?.max(0) as u64;
        report.confirmed_tickets = confirmed;
        report.dimensions.accuracy = quality::accuracy(confirmed, report.rows);
        report.score = self.config.quality_weights.score(&report.dimensions);
        Ok(())
    }

    /// The score and dimensions of the newest `limit` versions (oldest first).
    pub async fn quality_history(
        &self,
        principal: Option<&Principal>,
        key: &str,
    ) -> Result<Vec<QualityPoint>, CoreError> {
        let resource = self.get_resource(principal, key).await?;
        let recs = self.store.list_quality_reports(resource.id, 100).await?;
        Ok(recs
            .iter()
            .filter_map(|r| serde_json::from_value::<QualityReport>(r.report.clone()).ok())
            .map(|q| QualityPoint {
                version: q.version,
                score: q.score,
                dimensions: q.dimensions,
                rows: q.rows,
                computed_at: q.computed_at,
            })
            .collect())
    }
}
