//! 核验授权 (verification grants, "usable but invisible"): the terms that make a grant a
//! verification grant, and the daily usage counters its quotas are drawn from.

use crate::Result;
use async_trait::async_trait;
use uuid::Uuid;

/// The terms of a verification grant (the grant itself is an ordinary `GrantRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyTermsRecord {
    pub grant_id: Uuid,
    /// Records the grant may verify per day.
    pub daily_quota: i64,
    /// Records one request may carry.
    pub max_batch: i64,
}

#[async_trait]
pub trait VerifyStore: Send + Sync {
    /// Mark a grant id as a verification grant. Written before the grant row itself, so that
    /// the grant never exists as a read grant.
    async fn create_verify_terms(&self, t: &VerifyTermsRecord) -> Result<()>;
    /// The terms when `grant_id` is a verification grant.
    async fn verify_terms(&self, grant_id: Uuid) -> Result<Option<VerifyTermsRecord>>;
    /// The verification grants of a resource (ordinary grant records), newest first.
    async fn verify_grants_for_resource(&self, resource_id: Uuid) -> Result<Vec<crate::GrantRecord>>;
    /// Add `n` to the usage of `scope` on `day` if it stays within `limit`: the usage after,
    /// or `None` (nothing added) when it would exceed the limit.
    async fn take_verify_quota(&self, scope: &str, day: &str, n: i64, limit: i64) -> Result<Option<i64>>;
    /// Mark a request id as a request for a verification grant (before the request is written).
    async fn mark_verify_request(&self, request_id: Uuid) -> Result<()>;
    /// Whether a request asks for a verification grant.
    async fn is_verify_request(&self, request_id: Uuid) -> Result<bool>;
    /// Give back `n` taken from `scope` on `day` (a later quota refused the batch).
    async fn return_verify_quota(&self, scope: &str, day: &str, n: i64) -> Result<()>;
}
