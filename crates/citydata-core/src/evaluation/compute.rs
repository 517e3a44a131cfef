//! The figures of one period: what the store and the audit log say, summed per department.
//! The audit log is aggregated by SQL (`EvaluationStore::eval_read_flows`); catalog entries,
//! requests and tickets are few and are read whole.

use super::*;
use citydata_domain::quality::cycle_length;
use citydata_domain::resource::{Audience, Resource};
use citydata_domain::vocab::{OpenType, ResourceState, ShareType, UpdateCycle};
use citydata_store::ResourceFilter;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Raw counts of one department in one period.
#[derive(Debug, Default, Clone)]
pub(crate) struct Raw {
    pub cataloged: i64,
    pub completeness_sum: f64,
    pub attached: i64,
    pub timely: i64,
    pub declared: i64,
    pub shared: BTreeSet<Uuid>,
    pub open: i64,
    pub public_reads: i64,
    pub quality: Vec<f64>,
    pub tickets: i64,
    pub tickets_due: i64,
    pub tickets_in_sla: i64,
    pub ticket_days: Vec<u32>,
    pub requests: i64,
    pub requests_due: i64,
    pub requests_in_sla: i64,
    pub response_days: Vec<u32>,
    pub consumers: BTreeSet<String>,
    pub public_users: i64,
    pub reads: i64,
    pub downloads: i64,
    pub applications: BTreeSet<Uuid>,
}

/// Everything measured in a period: per department, and the reads between departments.
#[derive(Debug, Default, Clone)]
pub(crate) struct Figures {
    pub raw: BTreeMap<String, Raw>,
    /// (reader, provider) → reads.
    pub flows: BTreeMap<(String, String), i64>,
    pub applications: usize,
}

/// Share of the GB/T 21063 elements beyond the mandatory ones that a catalog entry fills:
/// abstract, described items (each with a title), publication date, tags, license, regions,
/// contact.
pub(crate) fn completeness(r: &Resource) -> f64 {
    let c = &r.content;
    let filled = [
        !c.summary.trim().is_empty(),
        !c.items.is_empty() && c.items.iter().all(|i| !i.title.trim().is_empty()),
        c.publish_date.is_some(),
        !c.tags.is_empty(),
        c.license.as_deref().is_some_and(|l| !l.trim().is_empty()),
        !c.regions.is_empty(),
        c.contact.as_deref().is_some_and(|l| !l.trim().is_empty()),
    ];
    filled.iter().filter(|f| **f).count() as f64 / filled.len() as f64
}

/// A cataloged resource at `at`: published before it (and not withdrawn since).
pub(crate) fn cataloged(r: &Resource, at: DateTime<Utc>) -> bool {
    r.state == ResourceState::Published && r.published_at.is_some_and(|p| p < at)
}

/// The first provider answer (fix or reject) in a ticket's history.
pub(crate) fn answered_at(history: &serde_json::Value) -> Option<DateTime<Utc>> {
    history.as_array()?.iter().find_map(|e| {
        let action = e.get("action")?.as_str()?;
        if action == "fix" || action == "reject" { e.get("at")?.as_str()?.parse::<DateTime<Utc>>().ok() } else { None }
    })
}

impl Core {
    /// Every resource in the catalog, whatever its state (the platform's view).
    pub(crate) async fn all_resources(&self) -> Result<Vec<Resource>, CoreError> {
        Ok(self.store.list_resources(&ResourceFilter::new(Audience::Platform), u32::MAX / 2, 0).await?)
    }

    /// The figures of `period`, counted up to `min(end, now)`.
    pub(crate) async fn figures(
        &self,
        period: &Period,
        resources: &[Resource],
        depts: &[String],
        now: DateTime<Utc>,
    ) -> Result<Figures, CoreError> {
        let (from, to) = (period.start(), period.end());
        let asof = to.min(now);
        let mut f = Figures::default();
        for d in depts {
            f.raw.insert(d.clone(), Raw::default());
        }
        let by_id: HashMap<Uuid, &Resource> = resources.iter().map(|r| (r.id, r)).collect();
        let provider = |id: &Uuid| by_id.get(id).map(|r| r.content.provider.to_string());

        // Catalog, data, sharing and opening declared.
        let commits: HashMap<Uuid, DateTime<Utc>> = self.store.eval_last_commits(asof).await?.into_iter().collect();
        let reports: HashMap<Uuid, serde_json::Value> =
            self.store.eval_quality_reports(asof).await?.into_iter().collect();
        for r in resources.iter().filter(|r| cataloged(r, asof)) {
            let Some(raw) = f.raw.get_mut(r.content.provider.as_str()) else { continue };
            raw.cataloged += 1;
            raw.completeness_sum += completeness(r);
            if let Some(last) = commits.get(&r.id) {
                raw.attached += 1;
                let timely = match cycle_length(r.content.update_cycle) {
                    Some(len) => *last + len >= asof,
                    None => r.content.update_cycle == UpdateCycle::Irregular,
                };
                raw.timely += i64::from(timely);
            }
            raw.declared += i64::from(r.content.share.kind != ShareType::None);
            raw.open += i64::from(r.content.open.kind != OpenType::None);
            if let Some(s) = reports.get(&r.id).and_then(|q| q.get("score")).and_then(|s| s.as_f64()) {
                raw.quality.push(s);
            }
        }

        // Reads through the gate, summed by the database.
        for flow in self.store.eval_read_flows(from, to).await? {
            let Some(p) = provider(&flow.resource_id) else { continue };
            let Some(raw) = f.raw.get_mut(&p) else { continue };
            match &flow.reader {
                Some(reader) if *reader == p => continue,
                Some(reader) => {
                    raw.consumers.insert(reader.clone());
                    if by_id.get(&flow.resource_id).is_some_and(|r| cataloged(r, asof)) {
                        raw.shared.insert(flow.resource_id);
                    }
                    *f.flows.entry((reader.clone(), p.clone())).or_default() += flow.reads;
                }
                None => raw.public_reads += flow.reads,
            }
            raw.reads += flow.reads;
            raw.downloads += flow.downloads;
        }
        for (p, n) in self.store.eval_public_users(from, to).await? {
            if let Some(raw) = f.raw.get_mut(&p) {
                raw.public_users = n;
            }
        }

        // Service: requests a person had to answer (not withdrawn, not decided by the system).
        let cal = &self.config.calendar;
        for q in self.store.eval_requests(from, to).await? {
            if q.state == "withdrawn" || q.decided_by.as_deref() == Some("system") {
                continue;
            }
            let Some(raw) = f.raw.get_mut(&q.provider) else { continue };
            raw.requests += 1;
            match q.decided_at {
                Some(at) if at <= asof && (q.state == "approved" || q.state == "rejected") => {
                    raw.requests_due += 1;
                    raw.requests_in_sla += i64::from(at <= q.due_at);
                    raw.response_days.push(cal.workdays_between(q.created_at, at));
                }
                _ if q.due_at <= asof => raw.requests_due += 1,
                _ => {}
            }
        }

        // 纠错 tickets received, answered (fixed or rejected) in time.
        for t in self.store.eval_tickets(from, to).await? {
            let Some(raw) = f.raw.get_mut(&t.department) else { continue };
            raw.tickets += 1;
            match answered_at(&t.history).filter(|at| *at <= asof) {
                Some(at) => {
                    raw.tickets_due += 1;
                    raw.tickets_in_sla += i64::from(at <= t.due_at);
                    raw.ticket_days.push(cal.workdays_between(t.created_at, at));
                }
                None if t.due_at <= asof => raw.tickets_due += 1,
                None => {}
            }
        }

        // Applications registered by the period's end, counted for each provider they use.
        for a in self.store.list_applications().await? {
            if a.created_at >= asof || a.status != "active" {
                continue;
            }
            f.applications += 1;
            for r in &a.resources {
                if let Some(raw) = provider(r).and_then(|p| f.raw.get_mut(&p)) {
                    raw.applications.insert(a.id);
                }
            }
        }
        Ok(f)
    }
}

fn rate(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| round4(n as f64 / d as f64))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn median_days(mut v: Vec<u32>, p: f64) -> Option<f64> {
    v.sort_unstable();
    percentile(&v, p).map(f64::from)
}

/// Each indicator's value with its numerator and denominator where it is a rate.
/// Indicator code → (value, (numerator, denominator) for rates).
pub(crate) type Values = BTreeMap<&'static str, (Option<f64>, Option<(i64, i64)>)>;

pub(crate) fn values(r: &Raw) -> Values {
    let c = r.cataloged;
    let shared = r.shared.len() as i64;
    let count = |n: i64| (Some(n as f64), None);
    let ratio = |n: i64, d: i64| (rate(n, d), Some((n, d)));
    let quality = (!r.quality.is_empty()).then(|| round4(r.quality.iter().sum::<f64>() / r.quality.len() as f64));
    BTreeMap::from([
        ("catalog_resources", count(c)),
        ("catalog_completeness", ((c > 0).then(|| round4(r.completeness_sum / c as f64)), None)),
        ("data_attached_rate", ratio(r.attached, c)),
        ("timeliness_rate", ratio(r.timely, c)),
        ("declared_share_rate", ratio(r.declared, c)),
        ("effective_share_rate", ratio(shared, c)),
        ("open_rate", ratio(r.open, c)),
        ("public_reads", count(r.public_reads)),
        ("quality_score", (quality, None)),
        ("tickets_received", count(r.tickets)),
        ("tickets_closed_in_sla_rate", ratio(r.tickets_in_sla, r.tickets_due)),
        ("ticket_median_days", (median_days(r.ticket_days.clone(), 0.5), None)),
        ("requests_received", count(r.requests)),
        ("requests_in_sla_rate", ratio(r.requests_in_sla, r.requests_due)),
        ("response_median_days", (median_days(r.response_days.clone(), 0.5), None)),
        ("response_p90_days", (median_days(r.response_days.clone(), 0.9), None)),
        ("consuming_departments", count(r.consumers.len() as i64)),
        ("public_users", count(r.public_users)),
        ("reads", count(r.reads)),
        ("downloads", count(r.downloads)),
        ("applications", count(r.applications.len() as i64)),
    ])
}

/// The city's figures: rates pooled over departments (sums of numerators over sums of
/// denominators), counts summed, the quality score averaged over resources, days over all
/// answers; applications counted once.
pub(crate) fn city_raw(f: &Figures) -> Raw {
    let mut c = Raw::default();
    for r in f.raw.values() {
        c.cataloged += r.cataloged;
        c.completeness_sum += r.completeness_sum;
        c.attached += r.attached;
        c.timely += r.timely;
        c.declared += r.declared;
        c.shared.extend(r.shared.iter().copied());
        c.open += r.open;
        c.public_reads += r.public_reads;
        c.quality.extend(r.quality.iter().copied());
        c.tickets += r.tickets;
        c.tickets_due += r.tickets_due;
        c.tickets_in_sla += r.tickets_in_sla;
        c.ticket_days.extend(r.ticket_days.iter().copied());
        c.requests += r.requests;
        c.requests_due += r.requests_due;
        c.requests_in_sla += r.requests_in_sla;
        c.response_days.extend(r.response_days.iter().copied());
        c.consumers.extend(r.consumers.iter().cloned());
        c.public_users += r.public_users;
        c.reads += r.reads;
        c.downloads += r.downloads;
        c.applications.extend(r.applications.iter().copied());
    }
    c
}
