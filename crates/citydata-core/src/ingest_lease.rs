//! Interrupted ingests recover by themselves. A running ingest holds a lease that its node's
//! heartbeat renews; when the lease ends (the node died or hangs), any node settles the ingest
//! from the Delta log: `committed` (with a report rebuilt from the commit) when a commit carries
//! its id, else `interrupted` with its spooled upload removed. A retry with the same
//! Idempotency-Key then returns the committed result or runs again. At start a node settles
//! its own leftovers at once.

use crate::{Core, CoreError};
use chrono::{DateTime, Utc};
use citydata_store::{IngestOutcome, IngestRecord, IngestState};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The prefix of an ingest's spooled upload in the spool directory.
pub(crate) fn spool_prefix(id: Uuid) -> String {
    format!("ingest-{id}-")
}

/// Abort the process at a named point when `CITYDATA_CRASH_AT` names it: the crash test's way
/// to stop a server exactly between two steps (as `kill -9` would, no destructor runs).
pub(crate) fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var("CITYDATA_CRASH_AT").ok()).as_deref() == Some(name) {
        tracing::error!(point = name, "CITYDATA_CRASH_AT: aborting");
        std::process::abort();
    }
}

/// Called with the hex SHA-256 once the whole upload was read.
pub(crate) type OnEnd = Box<dyn FnOnce(&str) -> std::io::Result<()> + Send>;

/// SHA-256 of everything read through it. At the end of the stream `on_end` runs before the
/// end is reported, so the readers downstream — and the commit, which waits for them — come
/// after it: a recorded hash is never missing from a committed ingest.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
    on_end: Option<OnEnd>,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R, on_end: Option<OnEnd>) -> (Self, Arc<Mutex<Sha256>>) {
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        (Self { inner, hasher: hasher.clone(), on_end }, hasher)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(f) = self.on_end.take()
                && let Some(d) = hex_digest(&self.hasher)
            {
                f(&d)?;
            }
        } else if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

pub(crate) fn hex_digest(h: &Arc<Mutex<Sha256>>) -> Option<String> {
    h.lock().ok().map(|h| hex::encode(h.clone().finalize()))
}

/// SHA-256 of a whole stream (a retry's body, to compare with the first upload's).
pub(crate) fn digest_all(mut r: Box<dyn Read + Send>) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Renews a running ingest's lease every quarter of its length until dropped.
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a settle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub committed: usize,
    pub interrupted: usize,
}

impl Core {
    /// How long an ingest's lease lasts.
    pub fn ingest_lease(&self) -> std::time::Duration {
        self.config.ingest_lease
    }

    /// Wait for the right to write a resource's table on this node (uploads to one table are
    /// serialized here; across nodes a losing commit answers `write_conflict`).
    pub(crate) async fn table_writer(&self, id: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.table_writers.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(id).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// The lease a new or renewed ingest gets from now.
    pub(crate) fn lease_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.config.ingest_lease).unwrap_or(chrono::Duration::seconds(120))
    }

    pub(crate) fn heartbeat(&self, id: Uuid) -> Heartbeat {
        let core = self.clone();
        let every = (self.config.ingest_lease / 4).max(std::time::Duration::from_millis(50));
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match core.store.renew_ingest_lease(id, core.lease_from(Utc::now())).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    // The store is down: keep trying; the lease may lapse meanwhile.
                    Err(e) => tracing::warn!(ingest = %id, error = %e, "renewing an ingest lease failed"),
                }
            }
        }))
    }

    /// Settle every running ingest whose lease has ended, and (with `own`) every running
    /// ingest of this node, which a restarted node can no longer be running.
    pub async fn settle_stale_ingests(&self, own: bool) -> Result<Settled, CoreError> {
        let mut done = Settled::default();
        let node = own.then_some(self.config.node_id.as_str());
        let stale = self.store.stale_ingests(Utc::now(), node, 100).await?;
        for r in stale {
            match self.settle_ingest(&r).await {
                Ok(Some(IngestState::Committed)) => done.committed += 1,
                Ok(Some(_)) => done.interrupted += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(ingest = %r.id, error = %e, "settling an interrupted ingest failed"),
            }
        }
        if done.committed + done.interrupted > 0 {
            tracing::info!(committed = done.committed, interrupted = done.interrupted, "interrupted ingests settled");
        }
        Ok(done)
    }

    /// Settle one running ingest found stale: the Delta log decides. `None` when someone else
    /// settled or renewed it first.
    pub(crate) async fn settle_ingest(&self, r: &IngestRecord) -> Result<Option<IngestState>, CoreError> {
        let lake = self.lake()?;
        let history = match lake.history(r.resource_id).await {
            Ok(h) => h,
            Err(e) => {
                // An unreadable table must not be taken as "nothing committed": try later.
                return Err(CoreError::from(e));
            }
        };
        let id = r.id.to_string();
        let commit = history.iter().find(|v| v.ingest_id.as_deref() == Some(id.as_str()));
        let now = Utc::now();
        let (state, report, error) = match commit {
            Some(v) => (
                IngestState::Committed,
                Some(json!({
                    "ingest_id": r.id,
                    "mode": r.mode,
                    "policy": r.policy,
                    "table_version": v.version,
                    "rows_committed": v.rows_added,
                    "rows_quarantined": 0,
                    "failures": [],
                    "sample": [],
                    "already_applied": false,
                    "rejected": false,
                    // Rebuilt from the commit after the node that ran it stopped: quarantined
                    // rows of that run, if any, were not recorded.
                    "recovered": true,
                })),
                None,
            ),
            None => (
                IngestState::Interrupted,
                None,
                Some(
                    "导入被中断（服务节点停止），未写入任何数据，请使用相同的 Idempotency-Key 重试 / the ingest was interrupted (its server stopped) and wrote nothing: retry with the same Idempotency-Key",
                ),
            ),
        };
        let outcome = IngestOutcome { state, report: report.as_ref(), error, body_sha256: None, at: now };
        if !self.store.settle_ingest(r.id, r.lease_until, outcome).await? {
            return Ok(None);
        }
        self.remove_spool(r.id);
        Ok(Some(state))
    }

    /// Remove what an ingest spooled (its upload, while it was being read).
    fn remove_spool(&self, id: Uuid) {
        let Some(dir) = &self.spool_dir else { return };
        let prefix = spool_prefix(id);
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix)
                && let Err(err) = std::fs::remove_file(e.path())
            {
                tracing::warn!(ingest = %id, error = %err, "removing an interrupted upload's spool failed");
            }
        }
    }
}
