use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::audit::{AuditEntry, AuditEvent, Outcome};
use citydata_domain::dept::{Department, DeptCode};
use citydata_domain::user::{Membership, User, Username};
use uuid::Uuid;

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

/// Filters for listing audit entries; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub department: Option<String>,
    /// An action, or a prefix ending in `.` (`auth.` matches `auth.login`, `auth.logout`).
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<Outcome>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
}

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
}

/// Pool statistics for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// The whole metadata store.
#[async_trait]
pub trait Store: DepartmentStore + UserStore + SessionStore + TokenStore + AuditStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// `true` when the database answers and every migration is applied.
    async fn ready(&self) -> Result<bool>;
    fn pool_stats(&self) -> PoolStats;
    async fn close(&self);
}
