//! 时效性 (timeliness): from each resource's 更新周期 and its last successful commit, a due
//! time and an overdue state; reminders to the provider's stewards before (a quarter cycle
//! ahead) and after the due time, each sent once per due period on whichever node claims it.

use crate::{Core, CoreError};
use chrono::{DateTime, Utc};
use citydata_domain::principal::Principal;
use citydata_domain::quality;
use citydata_domain::resource::{Audience, Resource};
use citydata_domain::vocab::{ResourceState, UpdateCycle};
use citydata_store::{IngestState, ResourceFilter};
use serde::Serialize;
use uuid::Uuid;

/// A resource whose update is overdue.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverdueResource {
    pub resource_id: Uuid,
    pub code: String,
    pub name: String,
    pub department: String,
    /// The 更新周期 code (`daily`, `weekly`, ...).
    pub cycle: String,
    pub due_at: DateTime<Utc>,
    /// `None` when nothing was ever committed (then the cycle counts from publication).
    pub last_commit_at: Option<DateTime<Utc>>,
}

impl Core {
    /// When the resource's table last committed successfully (from the ingest records), or a
    /// collection source of it last ran successfully (#18: a run that found nothing new still
    /// means the data is current).
    pub async fn last_commit_at(&self, r: &Resource) -> Result<Option<DateTime<Utc>>, CoreError> {
        let committed = self
            .store
            .list_ingests(r.id, 50)
            .await?
            .into_iter()
            .filter(|i| i.state == IngestState::Committed)
            .filter_map(|i| i.finished_at)
            .max();
        let pulled = self.store.last_source_success(r.id).await?;
        Ok(committed.max(pulled))
    }

    /// The due time of a published resource's next update; `None` for 不定期.
    pub async fn due_at(&self, r: &Resource) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), CoreError> {
        if r.state != ResourceState::Published || r.content.update_cycle == UpdateCycle::Irregular {
            return Ok((None, None));
        }
        let last = self.last_commit_at(r).await?;
        let since = last.or(r.published_at).unwrap_or(r.created_at);
        Ok((quality::due_at(r.content.update_cycle, since), last))
    }

    /// Published resources past their update's due time, optionally of one department; each
    /// caller sees those of the catalog it may see.
    pub async fn overdue_resources(
        &self,
        principal: Option<&Principal>,
        department: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OverdueResource>, CoreError> {
        let mut f = ResourceFilter::new(crate::catalog::audience(principal));
        f.state = Some("published".into());
        f.provider = department.map(str::to_string);
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let page = self.store.list_resources(&f, 500, offset).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            for r in page {
                if let (Some(due), last) = self.due_at(&r).await?
                    && due < now
                {
                    out.push(OverdueResource {
                        resource_id: r.id,
                        code: r.content.code.to_string(),
                        name: r.content.name.clone(),
                        department: r.content.provider.to_string(),
                        cycle: r.content.update_cycle.as_str().to_string(),
                        due_at: due,
                        last_commit_at: last,
                    });
                }
            }
        }
        out.sort_by_key(|o| o.due_at);
        Ok(out)
    }

    /// The timeliness part of the notice sweep: a reminder to the provider's stewards when an
    /// update is due within a quarter cycle, and an overdue notice (stewards and platform
    /// admins) after the due time — each once per due period, claimed in the store so that
    /// only one node sends it. Overdue tickets and automatic closes follow. Returns
    /// (reminders, overdue notices).
    pub async fn sweep_quality(&self, now: DateTime<Utc>) -> Result<(usize, usize), CoreError> {
        let (mut soon, mut late) = (0, 0);
        let f = ResourceFilter::new(Audience::Platform);
        let all = self.store.list_resources(&f, 10_000, 0).await?;
        let admins: Vec<Uuid> = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.memberships.iter().any(|m| m.role == citydata_domain::user::Role::Admin))
            .map(|u| u.id)
            .collect();
        for r in all {
            let (Some(due), _) = self.due_at(&r).await? else { continue };
            let Some(len) = quality::cycle_length(r.content.update_cycle) else { continue };
            let period = due.to_rfc3339();
            let kind = if now > due {
                "overdue"
            } else if now > due - len / 4 {
                "due_soon"
            } else {
                continue;
            };
            if !self.store.claim_reminder(r.id, &period, kind, now).await? {
                continue;
            }
            let mut to = self.answerers(r.content.provider.as_str()).await?;
            if kind == "overdue" {
                for a in &admins {
                    if !to.contains(a) {
                        to.push(*a);
                    }
                }
                late += 1;
            } else {
                soon += 1;
            }
            let title = if kind == "overdue" {
                format!("数据更新已超期：{} / update overdue", r.content.name)
            } else {
                format!("数据即将到期更新：{} / update due soon", r.content.name)
            };
            self.notify(
                &to,
                &format!("quality.{kind}"),
                title,
                format!(
                    "更新周期 {}，应于 {} 前更新 / due {}",
                    r.content.update_cycle.title(),
                    due.format("%Y-%m-%d %H:%M"),
                    due.to_rfc3339()
                ),
                format!("/api/v1/resources/{}/quality", r.id),
            )
            .await?;
        }
        self.sweep_tickets(now).await?;
        Ok((soon, late))
    }
}
