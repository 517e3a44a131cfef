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
