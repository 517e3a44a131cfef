//! Explain a figure: the records an indicator of a department counts (the reads by whom, the
//! requests and their answer times, the tickets, the catalog entries), so that a department
//! that disputes its score can see why.

use super::compute::{answered_at, cataloged, completeness};
use super::*;
use citydata_domain::quality::cycle_length;
use citydata_domain::vocab::{OpenType, ShareType, UpdateCycle};
use std::collections::HashMap;

/// One record behind an indicator.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceRecord {
    /// `resource`, `read`, `request`, `ticket` or `application`.
    pub kind: String,
    /// The record's id or resource code.
    pub id: String,
    pub label: String,
    /// Whether the record counts toward the indicator's numerator (e.g. answered in time).
    pub counted: bool,
    /// A number the indicator uses (reads, working days, completeness).
    pub value: Option<f64>,
    pub at: Option<DateTime<Utc>>,
    /// Where the record is (API path).
    pub link: String,
}

/// `GET /api/v1/evaluation/departments/{code}/records`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    pub department: String,
    pub period: String,
    pub indicator: String,
    pub records: Vec<EvidenceRecord>,
}

/// A resource's name when it is in the sharing catalog now (a withdrawn or draft entry's name
/// is not shown to other departments through its old requests and tickets).
fn published_name(by_id: &HashMap<Uuid, &citydata_domain::resource::Resource>, id: &Uuid) -> String {
    by_id
        .get(id)
        .filter(|r| r.state == citydata_domain::vocab::ResourceState::Published)
        .map(|r| r.content.name.clone())
        .unwrap_or_default()
}

impl Core {
    /// The records behind `indicator` of department `code` in `period` (department members
    /// and platform admins, like the evaluation itself).
    pub async fn evaluation_records(
        &self,
        principal: Option<&Principal>,
        code: &str,
        period: &str,
        indicator_code: &str,
    ) -> Result<Evidence, CoreError> {
        may_see(principal)?;
        let now = Utc::now();
        let period = Period::parse_at(period, now).map_err(ValidationErrors::from)?;
        if indicator(indicator_code).is_none() {
            return Err(ValidationErrors::from(FieldError::new(
                "indicator",
                "unknown_indicator",
                format!("未知指标 \"{indicator_code}\" / unknown indicator"),
            ))
            .into());
        }
        let dept = self.get_department(code).await?.code.to_string();
        let (from, to) = (period.start(), period.end());
        let asof = to.min(now);
        let resources = self.all_resources().await?;
        let by_id: HashMap<Uuid, &citydata_domain::resource::Resource> = resources.iter().map(|r| (r.id, r)).collect();
        let mut records = Vec::new();
        let res_link = |code: &str| format!("/api/v1/resources/{code}");
        match indicator_code {
            "effective_share_rate"
            | "reads"
            | "downloads"
            | "consuming_departments"
            | "public_reads"
            | "public_users" => {
                for f in self.store.eval_read_flows(from, to).await? {
                    let Some(r) = by_id.get(&f.resource_id).filter(|r| r.content.provider.as_str() == dept) else {
                        continue;
                    };
                    if f.reader.as_deref() == Some(dept.as_str()) {
                        continue;
                    }
                    let code = r.content.code.to_string();
                    records.push(EvidenceRecord {
                        kind: "read".into(),
                        id: code.clone(),
                        label: format!("{} ← {}", r.content.name, f.reader.as_deref().unwrap_or("公众 / public")),
                        counted: f.reader.is_some()
                            == (indicator_code != "public_reads" && indicator_code != "public_users"),
                        value: Some(f.reads as f64),
                        at: None,
                        link: res_link(&code),
                    });
                }
            }
            "requests_received" | "requests_in_sla_rate" | "response_median_days" | "response_p90_days" => {
                for q in self.store.eval_requests(from, to).await? {
                    if q.provider != dept || q.state == "withdrawn" || q.decided_by.as_deref() == Some("system") {
                        continue;
                    }
                    let decided = q.decided_at.filter(|at| *at <= asof);
                    records.push(EvidenceRecord {
                        kind: "request".into(),
                        id: q.id.to_string(),
                        label: published_name(&by_id, &q.resource_id),
                        counted: decided.is_some_and(|at| at <= q.due_at),
                        value: decided.map(|at| f64::from(self.config.calendar.workdays_between(q.created_at, at))),
                        at: Some(q.created_at),
                        link: format!("/api/v1/requests/{}", q.id),
                    });
                }
            }
            "tickets_received" | "tickets_closed_in_sla_rate" | "ticket_median_days" => {
                for t in self.store.eval_tickets(from, to).await? {
                    if t.department != dept {
                        continue;
                    }
                    let answered = answered_at(&t.history).filter(|at| *at <= asof);
                    records.push(EvidenceRecord {
                        kind: "ticket".into(),
                        id: t.id.to_string(),
                        label: published_name(&by_id, &t.resource_id),
                        counted: answered.is_some_and(|at| at <= t.due_at),
                        value: answered.map(|at| f64::from(self.config.calendar.workdays_between(t.created_at, at))),
                        at: Some(t.created_at),
                        link: format!("/api/v1/tickets/{}", t.id),
                    });
                }
            }
            "applications" => {
                for a in self.store.list_applications().await? {
                    if a.created_at >= asof
                        || !a
                            .resources
                            .iter()
                            .any(|r| by_id.get(r).is_some_and(|r| r.content.provider.as_str() == dept))
                    {
                        continue;
                    }
                    records.push(EvidenceRecord {
                        kind: "application".into(),
                        id: a.id.to_string(),
                        label: a.name,
                        counted: a.status == "active",
                        value: None,
                        at: Some(a.created_at),
                        link: "/api/v1/applications".into(),
                    });
                }
            }
            _ => {
                let commits: HashMap<Uuid, DateTime<Utc>> =
                    self.store.eval_last_commits(asof).await?.into_iter().collect();
                for r in resources.iter().filter(|r| r.content.provider.as_str() == dept && cataloged(r, asof)) {
                    let last = commits.get(&r.id);
                    let counted = match indicator_code {
                        "data_attached_rate" => last.is_some(),
                        "timeliness_rate" => last.is_some_and(|l| match cycle_length(r.content.update_cycle) {
                            Some(len) => *l + len >= asof,
                            None => r.content.update_cycle == UpdateCycle::Irregular,
                        }),
                        "declared_share_rate" => r.content.share.kind != ShareType::None,
                        "open_rate" => r.content.open.kind != OpenType::None,
                        _ => true,
                    };
                    let code = r.content.code.to_string();
                    records.push(EvidenceRecord {
                        kind: "resource".into(),
                        id: code.clone(),
                        label: r.content.name.clone(),
                        counted,
                        value: (indicator_code == "catalog_completeness").then(|| completeness(r)),
                        at: last.copied(),
                        link: res_link(&code),
                    });
                }
            }
        }
        Ok(Evidence { department: dept, period: period.to_string(), indicator: indicator_code.to_string(), records })
    }
}
