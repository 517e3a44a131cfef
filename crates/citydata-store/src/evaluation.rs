//! 评估考核 (evaluation): the per-period aggregates the indicators are computed from (the
//! audit log is summed by SQL, never loaded), the center's versioned rules, the rules version
//! each closed period was scored with, and the applications registry (应用).

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The audit actions that read a table's data through the gate.
pub const READ_ACTIONS: &[&str] = &["data.read_rows", "data.export", "data.aggregate", "data.read_changes"];

/// Successful reads of one resource by one reader department (`None`: the public) in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFlow {
    pub resource_id: Uuid,
    pub reader: Option<String>,
    pub reads: i64,
    /// Of which `data.export`.
    pub downloads: i64,
}

/// A sharing request as the service indicators need it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub provider: String,
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A 纠错 ticket as the quality indicators need it (`history` is its JSON step list).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalTicket {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub department: String,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub history: serde_json::Value,
}

/// One version of the center's rules (JSON of `citydata_domain::evaluation::Rules`).
#[derive(Debug, Clone, PartialEq)]
pub struct RulesRecord {
    pub version: i64,
    pub rules: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The rules version a closed period is scored with.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodPin {
    pub period: String,
    pub rules_version: i64,
    pub scored_by: String,
    pub scored_at: DateTime<Utc>,
}

/// An application (应用) and the resources it declares it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRecord {
    pub id: Uuid,
    pub name: String,
    pub department: String,
    pub scenario: String,
    pub url: Option<String>,
    pub status: String,
    pub resources: Vec<Uuid>,
    /// The service account (username) the application calls citydata as.
    pub service_account: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait EvaluationStore: Send + Sync {
    /// Successful gate reads in `[from, to)` grouped by resource and reader department: one
    /// aggregate over the audit log's `(action, at)` index.
    async fn eval_read_flows(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ReadFlow>>;
    /// Distinct signed-in public readers (no department) per provider department in `[from, to)`.
    async fn eval_public_users(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>>;
    /// The newest committed ingest before `before`, per resource.
    async fn eval_last_commits(&self, before: DateTime<Utc>) -> Result<Vec<(Uuid, DateTime<Utc>)>>;
    /// The report (JSON) of each resource's newest version reported before `before`.
    async fn eval_quality_reports(&self, before: DateTime<Utc>) -> Result<Vec<(Uuid, serde_json::Value)>>;
    /// Requests created in `[from, to)`, with the provider department of their resource.
    async fn eval_requests(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<EvalRequest>>;
    /// Tickets filed in `[from, to)`.
    async fn eval_tickets(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<EvalTicket>>;
    /// Add a rules version; `Conflict` when the version exists (two admins at once).
    async fn add_evaluation_rules(&self, r: &RulesRecord) -> Result<()>;
    /// The given version, or the newest when `None`.
    async fn evaluation_rules(&self, version: Option<i64>) -> Result<Option<RulesRecord>>;
    async fn period_pin(&self, period: &str) -> Result<Option<PeriodPin>>;
    /// Insert or replace the pin of `pin.period`.
    async fn pin_period(&self, pin: &PeriodPin) -> Result<()>;
    async fn create_application(&self, a: &ApplicationRecord) -> Result<()>;
    /// Every application, oldest first.
    async fn list_applications(&self) -> Result<Vec<ApplicationRecord>>;
    /// Replace `old`'s name, scenario, URL, status and resources with `new`'s, in one
    /// transaction, only while the row still holds `old`'s values: `false` (nothing written)
    /// when someone changed it meanwhile.
    async fn update_application(&self, old: &ApplicationRecord, new: &ApplicationRecord) -> Result<bool>;
}
