//! 服务账号 (service accounts): an application's identity, owned by a department. It is a user
//! row (so tokens, memberships and the audit log treat it like any caller) plus a row here,
//! which is what makes login refuse it.

use crate::{NewUser, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A service account as listed: the user's id and names, its department and who made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccountRecord {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub department: String,
    pub description: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

#[async_trait]
pub trait ServiceAccountStore: Send + Sync {
    /// Insert the user (with its memberships) and the service-account row in one transaction;
    /// `Conflict` when the username exists, `NotFound` when the department does not.
    async fn create_service_account(&self, user: &NewUser, description: &str, created_by: &str) -> Result<()>;
    async fn get_service_account(&self, user_id: Uuid) -> Result<Option<ServiceAccountRecord>>;
    /// Service accounts of `department` (every one when `None`), by username.
    async fn list_service_accounts(&self, department: Option<&str>) -> Result<Vec<ServiceAccountRecord>>;
}

/// A session as its owner sees it: the public id, where it was opened, when last used.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub id_hash: String,
    /// The id shown and used to end the session; `None` only for a row written by a node
    /// without this feature.
    pub public_id: Option<String>,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait]
pub trait SessionInfoStore: Send + Sync {
    /// Record the public id, client and browser of a session just created.
    async fn describe_session(
        &self,
        id_hash: &str,
        public_id: &str,
        client: Option<&str>,
        user_agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The session when it exists and has not expired at `now`.
    async fn live_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionInfo>>;
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()>;
    /// A user's unexpired sessions, most recently used first.
    async fn list_user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<SessionInfo>>;
    async fn find_session(&self, public_id: &str) -> Result<Option<SessionInfo>>;
}
