//! 动态口令 (TOTP) for administrators: the sealed secret, whether it is confirmed, the last
//! step used (no code twice), and single-use recovery codes (argon2 hashes).

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct TotpRecord {
    pub user_id: Uuid,
    /// Sealed (never the plain secret).
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_step: Option<i64>,
}

#[async_trait]
pub trait TotpStore: Send + Sync {
    /// Keep a new, unconfirmed secret (replacing an unconfirmed one); `Conflict` when a
    /// confirmed one exists.
    async fn put_totp_secret(&self, user_id: Uuid, sealed: &str, at: DateTime<Utc>) -> Result<()>;
    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpRecord>>;
    /// Confirm the secret with the step of its first right code and store the recovery
    /// codes' hashes, in one transaction.
    async fn confirm_totp(&self, user_id: Uuid, step: i64, recovery_hashes: &[String], at: DateTime<Utc>)
    -> Result<()>;
    /// Record `step` as used: `false` when it (or a later one) was used already.
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool>;
    /// The hashes of the unused recovery codes.
    async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<Vec<String>>;
    /// Mark a recovery code used: `false` when it was used already.
    async fn use_recovery_code(&self, user_id: Uuid, code_hash: &str, at: DateTime<Utc>) -> Result<bool>;
}
