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
