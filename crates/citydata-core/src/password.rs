//! argon2id password hashing, off the async runtime and behind a concurrency limit: at most
//! `password_hash_concurrency` hashes run at once (each takes ~19 MiB and a core for tens of
//! milliseconds), and a caller that cannot start one within `password_queue_wait` is told to
//! come back later (503 with `Retry-After`), so a flood of logins cannot exhaust memory or
//! starve the blocking pool.

use crate::CoreError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The concurrency limit of password hashing.
#[derive(Clone, Debug)]
pub(crate) struct PasswordGate {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordGate {
    pub(crate) fn new(concurrency: usize, wait: Duration) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), wait }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, CoreError> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(CoreError::Busy { retry_after_secs: 2 }),
        }
    }

    pub(crate) async fn hash(&self, password: String) -> Result<String, CoreError> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| CoreError::Internal(format!("password hash: {e}")))
        })
        .await
        .map_err(|e| CoreError::Internal(format!("password hash task: {e}")))?
    }

    /// Verify `password` against a PHC string; `None` hash runs a dummy verification so that
    /// unknown usernames take as long as wrong passwords.
    pub(crate) async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, CoreError> {
        const DUMMY: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2x0DpJ8X/5Nd3xO0nqgtKUCdf3vJ0N8a7W8lLu5VHqk";
        let known = phc.is_some();
        let permit = self.permit().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let phc = phc.unwrap_or_else(|| DUMMY.to_string());
            let ok = PasswordHash::new(&phc)
                .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
                .unwrap_or(false);
            ok && known
        })
        .await
        .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let g = PasswordGate::new(2, Duration::from_secs(5));
        let h = g.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(g.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!g.verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!g.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_saturated_gate_answers_busy() {
        let g = PasswordGate::new(1, Duration::from_millis(10));
        let held = g.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(g.verify("x".into(), None).await, Err(CoreError::Busy { .. })));
        drop(held);
        assert!(g.verify("x".into(), None).await.is_ok());
    }
}
