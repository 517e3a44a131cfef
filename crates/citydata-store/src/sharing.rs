//! Delta Sharing recipient profiles (共享协议凭证). A profile is a [`TokenRecord`] in its own
//! table: its bearer token is accepted only under `/delta-sharing/`, never by the REST API.

use crate::{Result, TokenRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
pub trait SharingStore: Send + Sync {
    async fn create_sharing_profile(&self, p: &TokenRecord) -> Result<()>;
    async fn get_sharing_profile_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;
    /// A user's profiles, newest first, revoked ones included.
    async fn list_sharing_profiles(&self, user_id: Uuid) -> Result<Vec<TokenRecord>>;
    /// Revoke the user's profile; `false` when the user has no such unrevoked profile.
    async fn revoke_sharing_profile(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
    async fn touch_sharing_profile(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
}
