//! Answers of the portal's charts, kept per table version.
//!
//! A dataset page shows up to three charts, each a grouped read of the whole table (tens of
//! milliseconds on millions of rows), and a published dataset is viewed far more often than it
//! changes. An aggregate asked with [`crate::reads::AggregateParams::cache`] is answered from
//! here when the same question was answered for the same table version, resource revision and
//! gate decision; the answer is exactly the one a fresh read would give, because all of its
//! inputs are in the key:
//!
//! - the table's version (read before the aggregate; an answer is kept only when the version is
//!   still the same after it, so a commit in between is never hidden) — a commit on any node
//!   makes a new version, so the cache is correct with several nodes;
//! - the resource's revision (its items and their types);
//! - the whole decision of the gate for this caller (items, masks, row filter, group-size
//!   threshold, grant), and the caller's filter, grouping and metrics.
//!
//! Decisions that depend on anything else (district masks and groups read the boundary
//! resource) and pinned versions are not cached. Every request is still audited as a read.
//! An erasure on this node drops the resource's answers ([`ChartCache::forget`]); other nodes'
//! answers of the erased versions are never served again (the version changed) and age out.

use crate::reads::AggregateResult;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Answers kept on a node; the least recently used goes first beyond this.
pub const CHART_ANSWERS: usize = 512;

/// An answer with more rows than this is not kept.
const MAX_ROWS: usize = 1_000;

#[derive(Default)]
pub(crate) struct ChartCache {
    answers: Mutex<HashMap<String, (AggregateResult, u64)>>,
    tick: AtomicU64,
}

impl ChartCache {
    pub(crate) fn get(&self, key: &str) -> Option<AggregateResult> {
        let mut answers = self.answers.lock().ok()?;
        let entry = answers.get_mut(key)?;
        entry.1 = self.tick.fetch_add(1, Ordering::Relaxed);
        Some(entry.0.clone())
    }

    /// Drop every answer about `resource` (after an erasure: answers of erased versions are
    /// never served, since the version changed, but they are not kept either).
    pub(crate) fn forget(&self, resource: uuid::Uuid) {
        let prefix = format!("{resource}|");
        if let Ok(mut answers) = self.answers.lock() {
            answers.retain(|k, _| !k.starts_with(&prefix));
        }
    }

    pub(crate) fn put(&self, key: String, answer: &AggregateResult) {
        if answer.rows.len() > MAX_ROWS {
            return;
        }
        let Ok(mut answers) = self.answers.lock() else { return };
        if answers.len() >= CHART_ANSWERS
            && !answers.contains_key(&key)
            && let Some(oldest) = answers.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone())
        {
            answers.remove(&oldest);
        }
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        answers.insert(key, (answer.clone(), tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: usize) -> AggregateResult {
        AggregateResult {
            group_by: vec!["x".into()],
            metrics: vec!["count".into()],
            rows: (0..rows).map(|i| serde_json::json!({"x": i, "count": 1})).collect(),
            suppressed_groups: 0,
            min_group_size: None,
        }
    }

    #[test]
    fn answers_are_kept_forgotten_per_resource_and_bounded() {
        let cache = ChartCache::default();
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        cache.put(format!("{a}|1|q"), &answer(2));
        cache.put(format!("{b}|1|q"), &answer(3));
        assert_eq!(cache.get(&format!("{a}|1|q")).unwrap().rows.len(), 2);
        assert!(cache.get(&format!("{a}|2|q")).is_none(), "another version is another question");
        cache.forget(a);
        assert!(cache.get(&format!("{a}|1|q")).is_none());
        assert_eq!(cache.get(&format!("{b}|1|q")).unwrap().rows.len(), 3);
        // Large answers are not kept; the number of answers is bounded, oldest out first.
        cache.put(format!("{a}|1|big"), &answer(MAX_ROWS + 1));
        assert!(cache.get(&format!("{a}|1|big")).is_none());
        for i in 0..CHART_ANSWERS + 10 {
            cache.put(format!("{a}|1|{i}"), &answer(1));
        }
        assert!(cache.answers.lock().unwrap().len() <= CHART_ANSWERS);
        assert!(cache.get(&format!("{a}|1|{}", CHART_ANSWERS + 9)).is_some(), "the newest stays");
        assert!(cache.get(&format!("{b}|1|q")).is_none(), "the least recently used went first");
    }
}
