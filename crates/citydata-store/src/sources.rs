//! Scheduled collection (#18): sources and their runs.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A collection source owned by a provider department. `config` is the kind's settings
/// without secrets; `secret` is the sealed secret text (never returned by the API).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub id: Uuid,
    pub department: String,
    pub name: String,
    /// `postgres`, `http`, …
    pub kind: String,
    pub resource_id: Option<Uuid>,
    pub config: serde_json::Value,
    pub secret: Option<String>,
    /// The schedule as given (`0 */6 * * *`, `every 6h`); `None`: on demand only.
    pub schedule: Option<String>,
    pub enabled: bool,
    /// Retries of a failed run before the failure stands.
    pub max_retries: i32,
    /// The incremental position reached by the last committed run.
    pub watermark: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One run of a source: `queued → running → succeeded | failed | aborted`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRunRecord {
    pub id: Uuid,
    pub source_id: Uuid,
    pub state: String,
    /// `manual`, `schedule`, `retry`.
    pub cause: String,
    /// 0 for the first attempt, then 1, 2, … for retries.
    pub attempt: i32,
    /// A queued run is not claimed before this time (retry backoff).
    pub not_before: DateTime<Utc>,
    pub node: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub abort_requested: bool,
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A local catalog entry harvested from another catalog: the source's identifier for it (a
/// CKAN package id, a DCAT dataset IRI), its page there and its last modification as the
/// source stated it.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestRecord {
    pub source_id: Uuid,
    pub identifier: String,
    pub resource_id: Uuid,
    pub url: Option<String>,
    pub modified: Option<String>,
    /// The source no longer lists it (the local entry was withdrawn).
    pub withdrawn: bool,
    pub updated_at: DateTime<Utc>,
}

/// Sources, their runs, the claim of queued runs and the settling of runs whose node died.
#[async_trait]
pub trait SourceStore: Send + Sync {
    async fn create_source(&self, s: &SourceRecord) -> Result<()>;
    async fn get_source(&self, id: Uuid) -> Result<Option<SourceRecord>>;
    /// All sources, or one department's, oldest first.
    async fn list_sources(&self, department: Option<&str>) -> Result<Vec<SourceRecord>>;
    /// Replace the editable fields (name, config, secret, schedule, enabled, retries,
    /// next run).
    async fn update_source(&self, s: &SourceRecord) -> Result<bool>;
    async fn delete_source(&self, id: Uuid) -> Result<bool>;
    /// Move the schedule on from `seen` to `next` (compare-and-set: one node wins a due time).
    async fn advance_schedule(&self, id: Uuid, seen: DateTime<Utc>, next: Option<DateTime<Utc>>) -> Result<bool>;
    /// Enabled sources whose next run is due at `now`.
    async fn due_sources(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SourceRecord>>;
    /// After a run: the watermark (only with a commit), the failure streak.
    async fn record_source_outcome(
        &self,
        id: Uuid,
        watermark: Option<&str>,
        consecutive_failures: i32,
        at: DateTime<Utc>,
    ) -> Result<()>;

    async fn create_run(&self, r: &SourceRunRecord) -> Result<()>;
    async fn get_run(&self, id: Uuid) -> Result<Option<SourceRunRecord>>;
    /// A source's runs, newest first.
    async fn list_runs(&self, source_id: Uuid, limit: u32) -> Result<Vec<SourceRunRecord>>;
    /// The queued or running run of a source, if any.
    async fn active_run(&self, source_id: Uuid) -> Result<Option<SourceRunRecord>>;
    /// Claim one due queued run for `node` (PostgreSQL: `FOR UPDATE SKIP LOCKED`); a source
    /// that already has a running run is skipped, and the unique index refuses a second.
    async fn claim_run(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SourceRunRecord>>;
    /// Renew a running run's lease held by `node`; `None` when it is no longer this node's
    /// running run, else whether an abort was asked.
    async fn renew_run_lease(&self, id: Uuid, node: &str, until: DateTime<Utc>) -> Result<Option<bool>>;
    /// Finish a run that is in `from` (compare-and-set); `lease` when given must still match.
    async fn finish_run(&self, r: &SourceRunRecord, from: &str, lease: Option<DateTime<Utc>>) -> Result<bool>;
    /// Ask a running run to stop.
    async fn request_abort(&self, id: Uuid) -> Result<bool>;
    /// When a source of the resource last finished a run successfully (a run that found
    /// nothing new still counts as the resource being up to date).
    async fn last_source_success(&self, resource_id: Uuid) -> Result<Option<DateTime<Utc>>>;
    /// Running runs whose lease ended before `now`.
    async fn stale_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SourceRunRecord>>;

    /// The entries a catalog source harvested.
    async fn harvest_records(&self, source_id: Uuid) -> Result<Vec<HarvestRecord>>;
    /// Insert or replace the record of (`source_id`, `identifier`).
    async fn put_harvest_record(&self, r: &HarvestRecord) -> Result<()>;
    /// Where a local entry was harvested from, if it was.
    async fn harvest_origin(&self, resource_id: Uuid) -> Result<Option<HarvestRecord>>;
}
