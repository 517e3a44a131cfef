//! Failure throttling (failed logins, registrations, feedback per client) in a sliding window,
//! shared by every node: the failures are counted in the store's `rate_counters`, in ten short
//! fixed windows per sliding window, so N nodes on one database allow the limit once, not N
//! times (issue #20). A failure counts until the end of its short window plus the sliding
//! window — up to a tenth longer than the window, never shorter. Keys (usernames, client
//! addresses) are stored as digests, not as they were typed.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use citydata_store::Store;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};

static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);

pub(crate) struct FailureLimiter {
    name: &'static str,
    max: u32,
    window: Duration,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl FailureLimiter {
    /// `name` tells one limiter's counters from another's (`login`, `login-client`, ...).
    pub(crate) fn new(name: &'static str, max: u32, window: Duration) -> Self {
        Self { name, max, window }
    }

    fn scope(&self, key: &str) -> String {
        let digest = Sha256::digest(format!("{}\u{0}{key}", self.name).as_bytes());
        format!("fail:{}:{}", self.name, hex::encode(&digest[..16]))
    }

    fn bucket_secs(&self) -> i64 {
        (self.window.num_seconds() / 10).max(1)
    }

    /// `Some(seconds to wait)` when `key` has used up its failures.
    pub(crate) async fn blocked(
        &self,
        store: &dyn Store,
        key: &str,
        now: DateTime<Utc>,
    ) -> citydata_store::Result<Option<u64>> {
        let (used, first_end) = store.rate_live(&self.scope(key), &rfc3339(now)).await?;
        if used < i64::from(self.max) {
            return Ok(None);
        }
        let end = first_end
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now + self.window);
        Ok(Some((end - now).num_seconds().max(1) as u64))
    }

    pub(crate) async fn record_failure(
        &self,
        store: &dyn Store,
        key: &str,
        now: DateTime<Utc>,
    ) -> citydata_store::Result<()> {
        let last = LAST_PRUNE.load(Ordering::Relaxed);
        if now.timestamp() - last > 60
            && LAST_PRUNE.compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            store.prune_rates(&rfc3339(now - Duration::seconds(1))).await?;
        }
        let b = self.bucket_secs();
        let bucket = now.timestamp().div_euclid(b);
        let bucket_end = DateTime::<Utc>::from_timestamp((bucket + 1) * b, 0).unwrap_or(now);
        let until = rfc3339(bucket_end + self.window);
        store.take_rate(&self.scope(key), &bucket.to_string(), &until, 1, i64::MAX).await?;
        Ok(())
    }

    pub(crate) async fn clear(&self, store: &dyn Store, key: &str) -> citydata_store::Result<()> {
        store.clear_rate(&self.scope(key)).await
    }
}
