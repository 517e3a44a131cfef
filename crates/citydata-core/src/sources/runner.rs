//! The job runner of sources. Every node runs [`Core::spawn_source_runner`]: it settles runs
//! whose node died (lease ended → `failed`, and a retry queued when attempts remain: another
//! node takes it over), queues scheduled runs that are due (one node wins each due time by a
//! compare-and-set on `next_run_at`), and claims queued runs (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite serializes writers) — at most one running run per source, enforced by a
//! partial unique index. A claimed run holds a lease of `ingest_lease` that a heartbeat renews
//! every quarter of it; the heartbeat also carries an abort request to the run, which stops
//! feeding rows so that its ingest fails before the commit.

use super::schedule::Schedule;
use super::{Secrets, spec_of};
use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_store::{SourceRecord, SourceRunRecord};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// Consecutive failed runs after which the provider's stewards are told (inbox and webhooks,
/// event `source.failing`), once per streak.
pub const FAILURE_NOTICE_AFTER: i32 = 3;

/// Runs one node executes at once.
const RUNS_PER_NODE: usize = 2;

/// Set when a run should stop (an abort, or its lease was lost).
#[derive(Default)]
pub(crate) struct AbortSignal {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl AbortSignal {
    pub(crate) fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Resolves once set.
    pub(crate) async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }
}

/// What a finished pull hands back: the report and the watermark its commit reached.
pub(crate) struct PullOutcome {
    pub report: serde_json::Value,
    pub watermark: Option<String>,
}

/// A failed pull: the reason (for the run's `error`) and what was counted before it.
pub(crate) struct PullFailure {
    pub reason: String,
    pub report: Option<serde_json::Value>,
}

impl From<String> for PullFailure {
    fn from(reason: String) -> Self {
        Self { reason, report: None }
    }
}

impl Core {
    /// Woken when a run is queued on this node.
    pub fn source_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.source_wake.clone()
    }

    pub(crate) async fn queue_run(
        &self,
        source_id: Uuid,
        cause: &str,
        attempt: i32,
        not_before: DateTime<Utc>,
    ) -> Result<SourceRunRecord, CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        let r = SourceRunRecord {
            id: Uuid::now_v7(),
            source_id,
            state: "queued".into(),
            cause: cause.into(),
            attempt,
            not_before: not_before.trunc_subsecs(6),
            node: None,
            lease_until: None,
            abort_requested: false,
            report: None,
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        self.store.create_run(&r).await?;
        self.source_wake.notify_one();
        Ok(r)
    }

    /// Run the source runner of this node until the task is aborted.
    pub fn spawn_source_runner(&self) -> tokio::task::JoinHandle<()> {
        let core = self.clone();
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(RUNS_PER_NODE));
            let wake = core.source_wakeup();
            loop {
                if let Err(e) = core.settle_stale_runs().await {
                    tracing::warn!(error = %e, "settling stale source runs failed");
                }
                if let Err(e) = core.queue_due_sources().await {
                    tracing::warn!(error = %e, "queueing scheduled source runs failed");
                }
                loop {
                    let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                    match core.claim_source_run().await {
                        Ok(Some(run)) => {
                            let c = core.clone();
                            tokio::spawn(async move {
                                c.execute_run(run).await;
                                drop(permit);
                            });
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "claiming a source run failed");
                            break;
                        }
                    }
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        })
    }

    async fn claim_source_run(&self) -> Result<Option<SourceRunRecord>, CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        Ok(self.store.claim_run(&self.config.node_id, now, self.lease_from(now).trunc_subsecs(6)).await?)
    }

    /// Claim one queued run (if any is due) and run it to its end on this task: for the CLI
    /// and for tests that drive the runner themselves.
    pub async fn run_next_source(&self) -> Result<Option<super::RunView>, CoreError> {
        let Some(run) = self.claim_source_run().await? else { return Ok(None) };
        let id = run.id;
        self.execute_run(run).await;
        Ok(self.store.get_run(id).await?.map(Into::into))
    }

    /// Queue a run for every enabled source whose schedule is due.
    pub async fn queue_due_sources(&self) -> Result<usize, CoreError> {
        let now = Utc::now();
        let mut queued = 0;
        for s in self.store.due_sources(now, 100).await? {
            let Some(seen) = s.next_run_at else { continue };
            let next = s.schedule.as_deref().and_then(|t| Schedule::parse(t).ok()).and_then(|sch| sch.next_after(now));
            if !self.store.advance_schedule(s.id, seen, next.map(|t| t.trunc_subsecs(6))).await? {
                continue; // another node took this due time
            }
            if self.store.active_run(s.id).await?.is_none() {
                self.queue_run(s.id, "schedule", 0, now).await?;
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Fail the running runs whose lease ended (their node died or hangs) and queue their
    /// retries; a renewal or another node's settle wins the compare-and-set on the lease.
    pub async fn settle_stale_runs(&self) -> Result<usize, CoreError> {
        let now = Utc::now().trunc_subsecs(6);
        let mut settled = 0;
        for r in self.store.stale_runs(now, 100).await? {
            let (state, reason) = if r.abort_requested {
                ("aborted", "运行节点失联，已中止 / the node running it stopped; aborted as asked")
            } else {
                ("failed", "运行节点失联，租约已过期 / the node running it stopped: its lease ended")
            };
            let done = SourceRunRecord {
                state: state.into(),
                error: Some(reason.into()),
                finished_at: Some(now),
                ..r.clone()
            };
            if self.store.finish_run(&done, "running", r.lease_until).await? {
                settled += 1;
                tracing::warn!(run = %r.id, source = %r.source_id, node = ?r.node, "source run settled after its lease ended");
                if let Some(s) = self.store.get_source(r.source_id).await? {
                    self.after_run(&s, &done, None).await;
                }
            }
        }
        Ok(settled)
    }

    /// Run a claimed run to its end and record it.
    pub(crate) async fn execute_run(&self, run: SourceRunRecord) {
        let Ok(Some(source)) = self.store.get_source(run.source_id).await else {
            let done = SourceRunRecord {
                state: "failed".into(),
                error: Some("采集来源已删除 / the source was removed".into()),
                finished_at: Some(Utc::now().trunc_subsecs(6)),
                ..run
            };
            let _ = self.store.finish_run(&done, "running", None).await;
            return;
        };
        let abort = Arc::new(AbortSignal::default());
        let heartbeat = self.run_heartbeat(run.id, abort.clone());
        let outcome = self.pull(&source, &abort).await;
        heartbeat.abort();
        let now = Utc::now().trunc_subsecs(6);
        let (state, error, report, watermark) = match outcome {
            Ok(o) => ("succeeded", None, Some(o.report), o.watermark),
            Err(f) if abort.is_set() => (
                "aborted",
                Some(format!("已中止，未提交任何数据 / aborted, nothing committed ({})", f.reason)),
                f.report,
                None,
            ),
            Err(f) => ("failed", Some(f.reason), f.report, None),
        };
        let done = SourceRunRecord { state: state.into(), error, report, finished_at: Some(now), ..run };
        match self.store.finish_run(&done, "running", None).await {
            Ok(true) => self.after_run(&source, &done, watermark.as_deref()).await,
            Ok(false) => tracing::warn!(run = %done.id, "a source run was settled by another node before it finished"),
            Err(e) => tracing::warn!(run = %done.id, error = %e, "recording a source run failed"),
        }
    }

    fn run_heartbeat(&self, id: Uuid, abort: Arc<AbortSignal>) -> tokio::task::JoinHandle<()> {
        let core = self.clone();
        let every = (self.config.ingest_lease / 4).max(std::time::Duration::from_millis(50));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let until = core.lease_from(Utc::now()).trunc_subsecs(6);
                match core.store.renew_run_lease(id, &core.config.node_id, until).await {
                    Ok(Some(false)) => {}
                    Ok(Some(true)) => abort.set(),
                    // No longer ours (settled elsewhere): stop before committing anything.
                    Ok(None) => {
                        abort.set();
                        return;
                    }
                    Err(e) => tracing::warn!(run = %id, error = %e, "renewing a source run lease failed"),
                }
            }
        })
    }

    /// The pull of the source's kind.
    async fn pull(&self, s: &SourceRecord, abort: &Arc<AbortSignal>) -> Result<PullOutcome, PullFailure> {
        let secrets: Secrets = self.open_secrets(s)?;
        match s.kind.as_str() {
            "postgres" => self.pull_postgres(s, &spec_of(s), &secrets, abort).await,
            "mysql" => self.pull_mysql(s, &spec_of(s), &secrets, abort).await,
            "http" => self.pull_http(s, &spec_of(s), &secrets, abort).await,
            "ckan" | "dcat" => self.pull_catalog(s, &spec_of(s), abort).await,
            other => Err(format!("不支持的来源类型 {other} / unsupported source kind {other}").into()),
        }
    }

    /// After a run ended: the watermark (with a commit only), the failure streak, a retry with
    /// backoff, the stewards' notice, the audit entry.
    async fn after_run(&self, s: &SourceRecord, done: &SourceRunRecord, watermark: Option<&str>) {
        let failed = done.state == "failed";
        let streak = if failed {
            s.consecutive_failures + 1
        } else if done.state == "succeeded" {
            0
        } else {
            s.consecutive_failures
        };
        let now = Utc::now().trunc_subsecs(6);
        if let Err(e) = self.store.record_source_outcome(s.id, watermark, streak, now).await {
            tracing::warn!(source = %s.id, error = %e, "recording a source outcome failed");
        }
        if failed && done.attempt < s.max_retries {
            let base = self.config.webhook_retry_base.num_milliseconds().max(1);
            let wait = base.saturating_mul(1 << done.attempt.clamp(0, 16)).min(3_600_000);
            let at = now + chrono::Duration::milliseconds(wait);
            if let Err(e) = self.queue_run(s.id, "retry", done.attempt + 1, at).await {
                tracing::warn!(source = %s.id, error = %e, "queueing a retry failed");
            }
        }
        if failed
            && streak == FAILURE_NOTICE_AFTER
            && let Err(e) = self.notify_failing(s, done, streak).await
        {
            tracing::warn!(source = %s.id, error = %e, "telling the stewards of a failing source failed");
        }
        let outcome = match done.state.as_str() {
            "succeeded" => Outcome::Success,
            _ => Outcome::Failure,
        };
        let details = serde_json::json!({
            "run_id": done.id,
            "state": done.state,
            "attempt": done.attempt,
            "rows_committed": done.report.as_ref().and_then(|r| r.get("rows_committed")).cloned(),
            "rows_deleted": done.report.as_ref().and_then(|r| r.get("rows_deleted")).cloned(),
            "error": done.error,
        });
        let meta = RequestMeta::new(Some(format!("source-run-{}", done.id)), None);
        if let Err(e) = self
            .record(
                &meta,
                Actor::Name("system"),
                "source.run.finish",
                Some(format!("source:{}", s.id)),
                outcome,
                details,
            )
            .await
        {
            tracing::warn!(source = %s.id, error = %e, "auditing a source run failed");
        }
    }

    async fn notify_failing(&self, s: &SourceRecord, done: &SourceRunRecord, streak: i32) -> Result<(), CoreError> {
        let users = self.answerers(&s.department).await?;
        let reason = done.error.clone().unwrap_or_default();
        self.notify(
            &users,
            "source.failing",
            format!("采集来源“{}”已连续失败 {streak} 次 / source {} failed {streak} times in a row", s.name, s.name),
            reason,
            format!("/console/sources/{}", s.id),
        )
        .await
    }
}
