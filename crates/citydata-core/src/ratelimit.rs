//! Failed-login throttling per (username, client) within a sliding window. Per node: a
//! cluster of N nodes allows at most N times the limit, which still stops online guessing.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) struct FailureLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl FailureLimiter {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self { max, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Some(seconds to wait)` when `key` has used up its failures.
    pub(crate) fn blocked(&self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.get_mut(key)?;
        list.retain(|t| *t > now - self.window);
        if list.len() as u32 >= self.max {
            let oldest = list.iter().min().copied().unwrap_or(now);
            Some(((oldest + self.window) - now).num_seconds().max(1) as u64)
        } else {
            None
        }
    }

    pub(crate) fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let horizon = now - self.window;
            map.retain(|_, v| v.iter().any(|t| *t > horizon));
        }
        map.entry(key.to_string()).or_default().push(now);
    }

    pub(crate) fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_then_recovers() {
        let l = FailureLimiter::new(3, Duration::minutes(1));
        let t0 = Utc::now();
        for _ in 0..3 {
            assert!(l.blocked("k", t0).is_none());
            l.record_failure("k", t0);
        }
        assert!(l.blocked("k", t0).is_some());
        assert!(l.blocked("other", t0).is_none());
        assert!(l.blocked("k", t0 + Duration::seconds(61)).is_none());
        l.record_failure("k", t0);
        l.clear("k");
        assert!(l.blocked("k", t0).is_none());
    }
}
