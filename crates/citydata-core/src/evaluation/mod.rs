//! 评估考核 (evaluation): indicators per department and period from what the platform
//! records, scored against the center's rules (targets and weights, versioned), ranked, with
//! the change since the previous period and the city's totals against the plan's targets.
//!
//! Deterministic: the same store gives the same figures. A closed period keeps the rules
//! version it was first scored with (`evaluation_periods`); rescoring it with the current
//! rules needs `rescore` from a platform admin and is audited (`evaluation.rescore`).

pub mod applications;
pub mod applications_edit;
mod compute;
pub mod export;
pub mod records;
mod rules_edit;

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::evaluation::{
    INDICATORS, Period, Rules, department_score, indicator, indicator_score, percentile,
};
use citydata_domain::principal::Principal;
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{PeriodPin, RulesRecord};
use compute::{Figures, city_raw, values};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// How long the public table of a period is reused on a node.
pub const PUBLIC_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Periods whose public table is kept at once.
pub const PUBLIC_PERIODS: usize = 16;
/// The public tables per period, with when each was computed.
pub(crate) type PublicCache = Arc<tokio::sync::Mutex<HashMap<String, (std::time::Instant, Arc<Evaluation>)>>>;

/// One indicator of one department: its value, the target and the score 0–100 (each `null`
/// when there is nothing to measure or no target), its weight, and where its records are.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndicatorResult {
    pub value: Option<f64>,
    pub target: Option<f64>,
    pub score: Option<f64>,
    pub weight: f64,
    /// For rates: the counted records over the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerator: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<i64>,
    /// The records behind the figure (`GET` it).
    pub explain: String,
}

/// A department's standing in a period.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartmentResult {
    pub code: String,
    pub name: String,
    /// 0–100; `null` when no weighted indicator has a value.
    pub score: Option<f64>,
    /// 1 = best; equal scores share a rank.
    pub rank: Option<u32>,
    /// Score minus the previous period's score.
    pub change: Option<f64>,
    pub indicators: BTreeMap<String, IndicatorResult>,
}

/// A plan target (规划目标) and how far the city is.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanProgress {
    pub indicator: String,
    pub value: Option<f64>,
    pub target: f64,
    /// 0–100.
    pub progress: Option<f64>,
}

/// Reads of one department's data by another in the period.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flow {
    pub reader: String,
    pub provider: String,
    pub reads: i64,
}

/// The city as a whole.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CityResult {
    pub departments: usize,
    /// Every indicator over the whole city (rates pooled).
    pub indicators: BTreeMap<String, Option<f64>>,
    pub plan: Vec<PlanProgress>,
    pub flows: Vec<Flow>,
}

/// `GET /api/v1/evaluation?period=`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    pub period: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The period is over (its figures no longer move).
    pub closed: bool,
    pub rules_version: i64,
    pub rules: Rules,
    pub departments: Vec<DepartmentResult>,
    pub city: CityResult,
}

/// A rules version as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesVersion {
    pub version: i64,
    pub rules: Rules,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// Who may see the evaluation: members of a department and platform admins (the public sees
/// the openness and service table on the portal only).
fn may_see(p: Option<&Principal>) -> Result<&Principal, CoreError> {
    match p {
        None => Err(CoreError::Unauthenticated("请先登录 / sign in first".into())),
        Some(p) if p.is_admin() || !p.memberships.is_empty() => Ok(p),
        Some(_) => {
            Err(CoreError::Forbidden("评估结果仅对部门用户开放 / the evaluation is for department members".into()))
        }
    }
}

impl Core {
    /// The rules of `version` (the newest when `None`; version 0 = the defaults).
    pub async fn evaluation_rules(&self, version: Option<i64>) -> Result<RulesVersion, CoreError> {
        if version == Some(0) {
            return Ok(RulesVersion {
                version: 0,
                rules: Rules::defaults(),
                created_by: "system".into(),
                created_at: None,
            });
        }
        match self.store.evaluation_rules(version).await? {
            Some(r) => Ok(RulesVersion {
                version: r.version,
                rules: serde_json::from_value(r.rules)
                    .map_err(|e| CoreError::Internal(format!("evaluation_rules: {e}")))?,
                created_by: r.created_by,
                created_at: Some(r.created_at),
            }),
            None if version.is_none() => Box::pin(self.evaluation_rules(Some(0))).await,
            None => Err(CoreError::NotFound(format!(
                "评估规则版本 {} / rules version {}",
                version.unwrap_or(0),
                version.unwrap_or(0)
            ))),
        }
    }

    /// Set new rules (platform admins): checked whole, stored as the next version, audited.
    pub async fn set_evaluation_rules(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        rules: Rules,
    ) -> Result<RulesVersion, CoreError> {
        if !principal.is_admin() {
            return Err(CoreError::Forbidden("仅平台管理员可设置评估规则 / only platform admins set the rules".into()));
        }
        let rules = Rules::parse(rules)?;
        let current = self.evaluation_rules(None).await?.version;
        let rec = RulesRecord {
            version: current + 1,
            rules: serde_json::to_value(&rules).map_err(|e| CoreError::Internal(e.to_string()))?,
            created_by: principal.username.to_string(),
            created_at: Utc::now(),
        };
        self.store.add_evaluation_rules(&rec).await?;
        self.record(
            meta,
            Actor::Principal(principal),
            "evaluation.rules",
            Some(format!("evaluation_rules:{}", rec.version)),
            Outcome::Success,
            serde_json::json!({"version": rec.version, "rules": rec.rules}),
        )
        .await?;
        self.evaluation_rules(Some(rec.version)).await
    }

    /// The rules `period` is scored with: the current ones while it runs; for a closed period
    /// the version pinned when it was first scored (pinned now if never), or — with `rescore`,
    /// platform admins only, audited — the current version.
    async fn period_rules(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        period: &Period,
        rescore: bool,
        now: DateTime<Utc>,
    ) -> Result<RulesVersion, CoreError> {
        let current = self.evaluation_rules(None).await?;
        if !period.is_closed(now) {
            if rescore {
                return Err(ValidationErrors::from(FieldError::new(
                    "rescore",
                    "period_open",
                    "本期尚未结束，无需重新评分 / the period is still open",
                ))
                .into());
            }
            return Ok(current);
        }
        let label = period.to_string();
        let pinned = self.store.period_pin(&label).await?;
        if rescore {
            let p = principal.filter(|p| p.is_admin()).ok_or_else(|| {
                CoreError::Forbidden(
                    "仅平台管理员可重新评分已结束的期间 / only platform admins rescore a closed period".into(),
                )
            })?;
            let before = pinned.as_ref().map(|x| x.rules_version);
            self.store
                .pin_period(&PeriodPin {
                    period: label.clone(),
                    rules_version: current.version,
                    scored_by: p.username.to_string(),
                    scored_at: now,
                })
                .await?;
            self.record(
                meta,
                Actor::Principal(p),
                "evaluation.rescore",
                Some(format!("evaluation:{label}")),
                Outcome::Success,
                serde_json::json!({"period": label, "rules_version": current.version, "previous_rules_version": before}),
            )
            .await?;
            return Ok(current);
        }
        match pinned {
            Some(pin) => self.evaluation_rules(Some(pin.rules_version)).await,
            // An anonymous visitor does not decide when a closed period's rules are fixed (the
            // center may still be adjusting them): the public table uses the current rules
            // until someone who may see the evaluation scores the period.
            None if principal.is_none() => Ok(current),
            None => {
                self.store
                    .pin_period(&PeriodPin {
                        period: label,
                        rules_version: current.version,
                        scored_by: principal.map_or_else(|| "system".to_string(), |p| p.username.to_string()),
                        scored_at: now,
                    })
                    .await?;
                Ok(current)
            }
        }
    }

    /// `GET /api/v1/evaluation?period=`: every department's indicators, score, rank and change.
    pub async fn evaluate(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        period: &str,
        rescore: bool,
    ) -> Result<Evaluation, CoreError> {
        may_see(principal)?;
        self.evaluate_unchecked(meta, principal, period, rescore).await
    }

    /// The evaluation without the caller check: for the public table (which shows only the
    /// openness and service columns) and the operator's command line.
    pub async fn evaluate_unchecked(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        period: &str,
        rescore: bool,
    ) -> Result<Evaluation, CoreError> {
        let now = Utc::now();
        let period = Period::parse_at(period, now).map_err(ValidationErrors::from)?;
        let rules = self.period_rules(meta, principal, &period, rescore, now).await?;
        let depts = self.store.list_departments().await?;
        let codes: Vec<String> = depts.iter().map(|d| d.code.to_string()).collect();
        let resources = self.all_resources().await?;
        let figures = self.figures(&period, &resources, &codes, now).await?;
        let mut departments = Vec::new();
        for d in &depts {
            let code = d.code.to_string();
            let raw = figures.raw.get(&code).cloned().unwrap_or_default();
            departments.push(DepartmentResult {
                name: d.name.as_str().to_string(),
                indicators: score_indicators(&rules.rules, &values(&raw), &code, &period),
                score: None,
                rank: None,
                change: None,
                code,
            });
        }
        for d in &mut departments {
            let scores = d.indicators.iter().map(|(k, v)| (k.clone(), v.score)).collect();
            d.score = department_score(&rules.rules, &scores);
        }
        rank(&mut departments);
        // The change since the previous period, scored with that period's own rules.
        let prev = period.previous();
        {
            let prev_rules = match self.store.period_pin(&prev.to_string()).await? {
                Some(pin) => self.evaluation_rules(Some(pin.rules_version)).await?.rules,
                None => rules.rules.clone(),
            };
            let pf = self.figures(&prev, &resources, &codes, now).await?;
            for d in &mut departments {
                let raw = pf.raw.get(&d.code).cloned().unwrap_or_default();
                let ind = score_indicators(&prev_rules, &values(&raw), &d.code, &prev);
                let prev_score =
                    department_score(&prev_rules, &ind.iter().map(|(k, v)| (k.clone(), v.score)).collect());
                d.change = d.score.zip(prev_score).map(|(a, b)| citydata_domain::evaluation::round2(a - b));
            }
        }
        let city = city(&rules.rules, &figures);
        Ok(Evaluation {
            period: period.to_string(),
            start: period.start(),
            end: period.end(),
            closed: period.is_closed(now),
            rules_version: rules.version,
            rules: rules.rules,
            departments,
            city,
        })
    }

    /// The evaluation behind the public table (`/evaluation`): the same figures, reused for
    /// [`PUBLIC_TTL`] per period on this node, so anonymous requests cannot make the server
    /// recompute every department's indicators over the audit log at will. Concurrent requests
    /// wait for one computation; at most [`PUBLIC_PERIODS`] periods are kept.
    pub async fn public_evaluation(&self, meta: &RequestMeta, period: &str) -> Result<Arc<Evaluation>, CoreError> {
        let label = Period::parse_at(period, Utc::now()).map_err(ValidationErrors::from)?.to_string();
        let mut cache = self.public_evaluation.lock().await;
        if let Some((at, e)) = cache.get(&label)
            && at.elapsed() < PUBLIC_TTL
        {
            return Ok(e.clone());
        }
        let e = Arc::new(self.evaluate_unchecked(meta, None, &label, false).await?);
        cache.retain(|_, (at, _)| at.elapsed() < PUBLIC_TTL);
        if cache.len() < PUBLIC_PERIODS {
            cache.insert(label, (std::time::Instant::now(), e.clone()));
        }
        Ok(e)
    }

    /// One department's evaluation (the same figures as the whole table).
    pub async fn evaluate_department(
        &self,
        meta: &RequestMeta,
        principal: Option<&Principal>,
        code: &str,
        period: &str,
    ) -> Result<DepartmentResult, CoreError> {
        let e = self.evaluate(meta, principal, period, false).await?;
        e.departments
            .into_iter()
            .find(|d| d.code == code)
            .ok_or_else(|| CoreError::NotFound(format!("部门 {code} / department {code}")))
    }
}

fn score_indicators(
    rules: &Rules,
    vals: &compute::Values,
    dept: &str,
    period: &Period,
) -> BTreeMap<String, IndicatorResult> {
    INDICATORS
        .iter()
        .map(|ind| {
            let (value, frac) = vals.get(ind.code).cloned().unwrap_or((None, None));
            let target = rules.targets.get(ind.code).copied();
            let score = value.zip(target).map(|(v, t)| indicator_score(ind, v, t));
            (
                ind.code.to_string(),
                IndicatorResult {
                    value,
                    target,
                    score,
                    weight: rules.weights.get(ind.code).copied().unwrap_or(0.0),
                    numerator: frac.map(|f| f.0),
                    denominator: frac.map(|f| f.1),
                    explain: format!(
                        "/api/v1/evaluation/departments/{dept}/records?period={period}&indicator={}",
                        ind.code
                    ),
                },
            )
        })
        .collect()
}

/// Competition ranking (1, 1, 3) by score; departments without a score are not ranked. The
/// list is ordered by rank, then code.
fn rank(ds: &mut [DepartmentResult]) {
    ds.sort_by(|a, b| b.score.unwrap_or(-1.0).total_cmp(&a.score.unwrap_or(-1.0)).then_with(|| a.code.cmp(&b.code)));
    let mut prev: Option<(f64, u32)> = None;
    for (i, d) in ds.iter_mut().enumerate() {
        d.rank = d.score.map(|s| match prev {
            Some((ps, r)) if ps == s => r,
            _ => i as u32 + 1,
        });
        if let (Some(s), Some(r)) = (d.score, d.rank) {
            prev = Some((s, r));
        }
    }
}

fn city(rules: &Rules, f: &Figures) -> CityResult {
    let mut raw = city_raw(f);
    raw.applications = (0..f.applications).map(|i| Uuid::from_u128(i as u128)).collect();
    let vals = values(&raw);
    let indicators: BTreeMap<String, Option<f64>> = vals.iter().map(|(k, v)| (k.to_string(), v.0)).collect();
    let plan = rules
        .plan
        .iter()
        .filter_map(|(k, t)| {
            let ind = indicator(k)?;
            let value = indicators.get(k).copied().flatten();
            Some(PlanProgress {
                indicator: k.clone(),
                value,
                target: *t,
                progress: value.map(|v| indicator_score(ind, v, *t)),
            })
        })
        .collect();
    let flows = f
        .flows
        .iter()
        .map(|((reader, provider), reads)| Flow { reader: reader.clone(), provider: provider.clone(), reads: *reads })
        .collect();
    CityResult { departments: f.raw.len(), indicators, plan, flows }
}
