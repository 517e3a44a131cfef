use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::audit::{AuditCheckpoint, AuditEntry, AuditEvent};
use citydata_domain::dept::{Department, DeptCode};
use citydata_domain::resource::{Audience, FieldChange, Resource};
use citydata_domain::user::{Membership, User, Username};
use uuid::Uuid;

pub use crate::states::{DeliveryState, GranteeKind, IngestState, RequestState, RevisionAction};

pub use crate::error::StoreResult as Result;

#[async_trait]
pub trait DepartmentStore: Send + Sync {
    /// Insert; `Conflict` when the code exists, `NotFound` when the parent does not.
    async fn create_department(&self, d: &Department) -> Result<()>;
    async fn get_department(&self, code: &DeptCode) -> Result<Option<Department>>;
    /// All departments ordered by code.
    async fn list_departments(&self) -> Result<Vec<Department>>;
}

/// A user to create. `password_hash` is an argon2id PHC string.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub username: Username,
    pub display_name: String,
    pub password_hash: String,
    pub memberships: Vec<Membership>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert with memberships in one transaction; `Conflict` when the username exists,
    /// `NotFound` when a membership names an unknown department.
    async fn create_user(&self, u: &NewUser) -> Result<User>;
    async fn get_user(&self, id: Uuid) -> Result<Option<User>>;
    /// The user and its password hash, for login.
    async fn get_user_by_username(&self, username: &Username) -> Result<Option<(User, String)>>;
    /// All users ordered by username.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> Result<()>;
    /// Set a user's email; `Conflict` when another user has it.
    async fn set_user_email(&self, id: Uuid, email: &str) -> Result<()>;
    /// The user with this email (lower-cased) and its password hash.
    async fn get_user_by_email(&self, email: &str) -> Result<Option<(User, String)>>;
}

/// A login session. Only the SHA-256 of the cookie value is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    /// The session when it exists and has not expired at `now`.
    async fn get_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Remove sessions expired at `now`; returns how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64>;
    /// End every session of a user except `keep` (a session's id hash); returns how many.
    async fn delete_user_sessions(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64>;
}

/// An API token. Only the SHA-256 of the secret is stored; `prefix` is its first characters,
/// shown in listings so that a user can recognise it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Space-separated scopes; `None` (tokens made before scopes existed) is every scope.
    pub scopes: Option<String>,
    /// Space-separated resource ids the token is limited to; `None` is every resource.
    pub resources: Option<String>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, t: &TokenRecord) -> Result<()>;
    async fn get_token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;
    /// A user's tokens, newest first, revoked ones included.
    async fn list_tokens(&self, user_id: Uuid) -> Result<Vec<TokenRecord>>;
    /// Revoke the user's token; `false` when the user has no such unrevoked token.
    async fn revoke_token(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
    async fn touch_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
}

pub use citydata_domain::audit::AuditFilter;

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append one event at the end of the chain. Appends serialize across tasks and across
    /// processes sharing the database: the chain never forks.
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry>;
    /// Entries matching `filter`, newest first.
    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u64) -> Result<Vec<AuditEntry>>;
    async fn count_audit(&self, filter: &AuditFilter) -> Result<u64>;
    /// Entries with `seq > after` in ascending `seq` order, at most `limit`, as stored (for verify).
    async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// The recorded chain head: last sequence number and hash.
    async fn audit_head(&self) -> Result<Option<(i64, String)>>;
    /// Keep a signed checkpoint of the chain; a second one for the same `seq` is ignored.
    async fn add_audit_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// Every kept checkpoint, ascending by `seq`.
    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>>;
}

/// Pool statistics for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// The whole metadata store.
#[async_trait]
pub trait Store:
    DepartmentStore
    + UserStore
    + SessionStore
    + TokenStore
    + AuditStore
    + ResourceStore
    + IngestStore
    + GrantStore
    + RequestStore
    + InboxStore
    + WebhookStore
    + QualityStore
    + crate::EvaluationStore
    + crate::SourceStore
    + crate::IotStore
    + crate::SharingStore
    + crate::ServiceAccountStore
    + crate::SessionInfoStore
    + crate::FileStore
    + crate::VerifyStore
    + crate::RateStore
    + crate::OidcStore
    + crate::TotpStore
    + Send
    + Sync
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// `true` when the database answers and every migration is applied.
    async fn ready(&self) -> Result<bool>;
    fn pool_stats(&self) -> PoolStats;
    async fn close(&self);
    /// Write a consistent copy of the whole database into the new file `path` while the
    /// database stays in use (SQLite: `VACUUM INTO`). PostgreSQL answers `Backend`: its copy is
    /// `pg_dump`, run by `citydata backup`.
    async fn backup_to(&self, path: &std::path::Path) -> Result<()>;
    /// `true` when the database holds no table at all: a fresh target for a restore.
    async fn is_blank(&self) -> Result<bool>;
}

/// Filters for listing resources; `audience` always applies.
#[derive(Debug, Clone)]
pub struct ResourceFilter {
    pub audience: Audience,
    pub provider: Option<String>,
    pub theme: Option<String>,
    pub class: Option<String>,
    pub share: Option<String>,
    pub open: Option<String>,
    pub cycle: Option<String>,
    pub state: Option<String>,
    pub region: Option<String>,
    pub code: Option<String>,
}

impl ResourceFilter {
    pub fn new(audience: Audience) -> Self {
        Self {
            audience,
            provider: None,
            theme: None,
            class: None,
            share: None,
            open: None,
            cycle: None,
            state: None,
            region: None,
            code: None,
        }
    }
}

/// One kept revision of a resource: who changed what, when.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RevisionRecord {
    pub resource_id: Uuid,
    pub revision: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: RevisionAction,
    pub changes: Vec<FieldChange>,
}

/// A catalog change, for nodes catching their search index up.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogChange {
    pub seq: i64,
    pub resource_id: Uuid,
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Insert a new resource with its first revision; `Conflict` names the code or slug taken.
    async fn insert_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()>;
    /// Replace a resource whose stored revision is `r.revision - 1`; `Conflict` when someone
    /// else changed it first, or the new code or slug is taken.
    async fn update_resource(&self, r: &Resource, rev: &RevisionRecord) -> Result<()>;
    async fn get_resource(&self, id: Uuid) -> Result<Option<Resource>>;
    /// By UUID, code or slug.
    async fn find_resource(&self, key: &str) -> Result<Option<Resource>>;
    /// Newest first.
    async fn list_resources(&self, f: &ResourceFilter, limit: u32, offset: u64) -> Result<Vec<Resource>>;
    async fn count_resources(&self, f: &ResourceFilter) -> Result<u64>;
    /// Delete a resource and its revisions; `false` when it did not exist.
    async fn delete_resource(&self, id: Uuid) -> Result<bool>;
    /// Oldest first.
    async fn list_revisions(&self, id: Uuid) -> Result<Vec<RevisionRecord>>;
    /// The largest sequence number used under a classification prefix (0 when none).
    async fn max_code_sequence(&self, prefix: &str) -> Result<u32>;
    async fn slug_taken(&self, slug: &str) -> Result<bool>;
    /// Changes after `seq`, oldest first.
    async fn catalog_changes_after(&self, seq: i64, limit: u32) -> Result<Vec<CatalogChange>>;
    async fn last_catalog_change(&self) -> Result<i64>;
}

/// An ingest as recorded in the metadata store: who sent what, how it ended, its report.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub idempotency_key: Option<String>,
    pub actor: String,
    pub mode: String,
    pub policy: String,
    pub state: IngestState,
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The node running it (while `running`).
    pub node: Option<String>,
    /// Until when the running node holds it; renewed by its heartbeat. Past it, any node may
    /// settle the ingest.
    pub lease_until: Option<DateTime<Utc>>,
    /// SHA-256 of the uploaded bytes, known once the upload was read whole.
    pub body_sha256: Option<String>,
}

/// How an ingest ended (the columns `finish_ingest` writes).
#[derive(Debug, Clone, Copy)]
pub struct IngestOutcome<'a> {
    pub state: IngestState,
    pub report: Option<&'a serde_json::Value>,
    pub error: Option<&'a str>,
    pub body_sha256: Option<&'a str>,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Record a starting ingest; `Conflict` when the resource already has an ingest with the
    /// same idempotency key.
    async fn create_ingest(&self, r: &IngestRecord) -> Result<()>;
    /// Record how an ingest ended (whatever its state: the node that ran it knows best).
    async fn finish_ingest(&self, id: Uuid, outcome: IngestOutcome<'_>) -> Result<()>;
    /// Record the SHA-256 of a running ingest's upload, once read whole (before its commit).
    async fn record_ingest_body(&self, id: Uuid, sha256: &str) -> Result<()>;
    /// Extend a running ingest's lease; `false` when it is no longer running.
    async fn renew_ingest_lease(&self, id: Uuid, until: DateTime<Utc>) -> Result<bool>;
    /// Running ingests whose lease ended before `now` (or that have none), and, when `node` is
    /// given, every running ingest of that node (a restarted node's leftovers). Oldest first.
    async fn stale_ingests(&self, now: DateTime<Utc>, node: Option<&str>, limit: u32) -> Result<Vec<IngestRecord>>;
    /// Settle a running ingest found stale, only if it is still running with the lease that was
    /// seen (`seen_lease`): `false` when its node renewed it or someone settled it meanwhile.
    async fn settle_ingest(
        &self,
        id: Uuid,
        seen_lease: Option<DateTime<Utc>>,
        outcome: IngestOutcome<'_>,
    ) -> Result<bool>;
    async fn get_ingest(&self, id: Uuid) -> Result<Option<IngestRecord>>;
    async fn find_ingest_by_key(&self, resource_id: Uuid, key: &str) -> Result<Option<IngestRecord>>;
    /// Newest first.
    async fn list_ingests(&self, resource_id: Uuid, limit: u32) -> Result<Vec<IngestRecord>>;
    /// Forget a failed attempt's key so that the same key can be retried.
    async fn delete_ingest(&self, id: Uuid) -> Result<()>;
}

/// A grant as stored: the filter as text, masks as specs (parsed by the use cases against the
/// resource's current items).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub grantee_kind: GranteeKind,
    /// Department code or user id.
    pub grantee: String,
    pub fields: Vec<String>,
    pub row_filter: Option<String>,
    pub masks: std::collections::BTreeMap<String, String>,
    pub purpose: String,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn create_grant(&self, g: &GrantRecord) -> Result<()>;
    async fn get_grant(&self, id: Uuid) -> Result<Option<GrantRecord>>;
    /// Every access grant on a resource, newest first (verification grants excepted: they give
    /// no rows; see `VerifyStore`).
    async fn grants_for_resource(&self, resource_id: Uuid) -> Result<Vec<GrantRecord>>;
    /// Grants on resources provided by `provider`, or to `grantee_department`, or to
    /// `grantee_user`; all grants when every filter is `None`. Newest first.
    async fn list_grants(
        &self,
        provider: Option<&str>,
        grantee_department: Option<&str>,
        grantee_user: Option<Uuid>,
    ) -> Result<Vec<GrantRecord>>;
    /// Revoke; `false` when already revoked or unknown.
    async fn revoke_grant(&self, id: Uuid, at: DateTime<Utc>, by: &str) -> Result<bool>;
}

/// 共享申请: a request for a resource by a department member or a public user.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    /// The requesting user.
    pub requester: Uuid,
    pub requester_name: String,
    /// The requesting department (`None` for a public applicant).
    pub requester_department: Option<String>,
    /// Item names asked for (empty: all).
    pub fields: Vec<String>,
    pub purpose: String,
    pub basis: String,
    pub scenario: String,
    pub contact: String,
    pub period_days: i64,
    pub state: RequestState,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub grant_id: Option<Uuid>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The grant this request asks to renew (续期).
    pub renews_grant: Option<Uuid>,
    /// SHA-256 (hex) of the 安全承诺书 text a public applicant accepted.
    pub commitment: Option<String>,
}

/// A comment on a request.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    pub id: Uuid,
    pub request_id: Uuid,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A message in a user's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `request.new`, `request.decided`, `request.comment`, `grant.expiring`, `grant.revoked`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// An API path about the subject, e.g. `/api/v1/requests/<id>`.
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait RequestStore: Send + Sync {
    async fn create_request(&self, r: &RequestRecord) -> Result<()>;
    async fn get_request(&self, id: Uuid) -> Result<Option<RequestRecord>>;
    /// Requests by `requester`, or by members of `department`, or for resources provided by
    /// `provider`; all when every filter is `None`. Newest first.
    async fn list_requests(
        &self,
        requester: Option<Uuid>,
        department: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<RequestRecord>>;
    /// Move a request from `from` to the state in `r` (decision fields included); `false`
    /// when it was no longer in `from`.
    async fn transition_request(&self, r: &RequestRecord, from: RequestState) -> Result<bool>;
    async fn add_comment(&self, c: &CommentRecord) -> Result<()>;
    /// Oldest first.
    async fn list_comments(&self, request_id: Uuid) -> Result<Vec<CommentRecord>>;
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    async fn push_inbox(&self, m: &InboxRecord) -> Result<()>;
    /// Whether any inbox entry of `kind` about `link` exists (for notices sent once).
    async fn inbox_notice_exists(&self, kind: &str, link: &str) -> Result<bool>;
    /// Newest first.
    async fn list_inbox(&self, user_id: Uuid, unread_only: bool, limit: u32) -> Result<Vec<InboxRecord>>;
    /// `false` when the message is not the user's or already read.
    async fn mark_read(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
}

/// A department's webhook: events are POSTed to `url`, signed with `secret`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub id: Uuid,
    pub department: String,
    pub url: String,
    /// The HMAC-SHA256 key; shown to its creator once.
    pub secret: String,
    /// Event kinds delivered; empty: all.
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One event on its way to one webhook, with the outcome of its latest attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    /// The JSON body sent.
    pub payload: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status of the latest attempt.
    pub last_status: Option<i32>,
    /// Why the latest attempt failed (connection error, non-2xx status).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A department's subscription to a resource's new table versions, delivered to a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub department: String,
    pub webhook_id: Uuid,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// Webhooks, their delivery queue and log, and change subscriptions.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, w: &WebhookRecord) -> Result<()>;
    async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>>;
    /// Oldest first; of one department when given.
    async fn list_webhooks(&self, department: Option<&str>) -> Result<Vec<WebhookRecord>>;
    /// Removes the webhook with its deliveries and subscriptions. `false` when absent.
    async fn delete_webhook(&self, id: Uuid) -> Result<bool>;
    async fn enqueue_delivery(&self, d: &DeliveryRecord) -> Result<()>;
    /// Take up to `limit` pending deliveries due at `now`, moving their `next_attempt_at` to
    /// `lease_until` in the same statement so that no other node takes them meanwhile.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>>;
    /// Store the outcome of an attempt: state, attempts, next attempt and the `last_*` fields.
    async fn finish_attempt(&self, d: &DeliveryRecord) -> Result<()>;
    /// Newest first.
    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryRecord>>;
    async fn create_subscription(&self, s: &SubscriptionRecord) -> Result<()>;
    /// Oldest first, filtered by resource and/or department.
    async fn list_subscriptions(
        &self,
        resource_id: Option<Uuid>,
        department: Option<&str>,
    ) -> Result<Vec<SubscriptionRecord>>;
    async fn delete_subscription(&self, id: Uuid) -> Result<bool>;
}

/// The quality report of one table version: `report` (counts and rates, for whoever sees the
/// catalog entry) and `samples` (failing values per rule: the provider's eyes only).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReportRecord {
    pub resource_id: Uuid,
    pub version: i64,
    pub ingest_id: Option<Uuid>,
    pub report: serde_json::Value,
    pub samples: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A 纠错 ticket. `history` is the JSON list of its steps and comments.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    /// The provider department when it was filed.
    pub department: String,
    pub title: String,
    pub description: String,
    pub record_key: Option<String>,
    pub item: Option<String>,
    /// The reporter's user id; `None` for an anonymous reporter.
    pub reporter_id: Option<Uuid>,
    pub reporter: String,
    pub state: String,
    pub fixed_version: Option<i64>,
    /// When the provider's answer is due (the SLA on the working-day calendar).
    pub due_at: DateTime<Utc>,
    /// When the overdue notice went out (once).
    pub overdue_notified_at: Option<DateTime<Utc>>,
    /// The provider's steward answering it (username), when assigned.
    pub assignee: Option<String>,
    pub history: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters for listing tickets.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub resource_id: Option<Uuid>,
    pub state: Option<String>,
    pub department: Option<String>,
    pub reporter_id: Option<Uuid>,
    /// Only tickets waiting for the provider past their due time at this moment.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only tickets assigned to this username.
    pub assignee: Option<String>,
}

/// Quality reports per table version, 纠错 tickets, and reminders sent once per due period.
#[async_trait]
pub trait QualityStore: Send + Sync {
    /// Insert or replace the report of `(resource_id, version)`.
    async fn put_quality_report(&self, r: &QualityReportRecord) -> Result<()>;
    /// The report of `version`, or of the newest version with one.
    async fn get_quality_report(&self, resource_id: Uuid, version: Option<i64>) -> Result<Option<QualityReportRecord>>;
    /// The newest `limit` reports, oldest first.
    async fn list_quality_reports(&self, resource_id: Uuid, limit: u32) -> Result<Vec<QualityReportRecord>>;
    async fn create_ticket(&self, t: &TicketRecord) -> Result<()>;
    async fn get_ticket(&self, id: Uuid) -> Result<Option<TicketRecord>>;
    /// Newest first.
    async fn list_tickets(&self, f: &TicketFilter, limit: u32) -> Result<Vec<TicketRecord>>;
    /// Write `t` if the stored ticket is still in `from` (compare-and-set); `false` otherwise.
    async fn update_ticket(&self, t: &TicketRecord, from: &str) -> Result<bool>;
    /// Confirmed tickets of a resource (accuracy).
    async fn count_confirmed_tickets(&self, resource_id: Uuid) -> Result<i64>;
    /// Claim the reminder `kind` for `(resource_id, period)`: `true` for the one caller (on
    /// any node) that claimed it first.
    async fn claim_reminder(&self, resource_id: Uuid, period: &str, kind: &str, at: DateTime<Utc>) -> Result<bool>;
}
