//! Runs of a source as its stewards see them: run now, the history, one run, abort.

use super::{RunStarted, RunView};
use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{SubsecRound, Utc};
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_store::SourceRunRecord;
use uuid::Uuid;

impl Core {
    /// Queue a run now (the queued or running one when there is one already).
    pub async fn run_source(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        id: &str,
    ) -> Result<RunStarted, CoreError> {
        let s = self.managed_source(principal, id).await?;
        let started = match self.store.active_run(s.id).await? {
            Some(r) => RunStarted { run_id: r.id, state: r.state },
            None => {
                let r = self.queue_run(s.id, "manual", 0, Utc::now()).await?;
                RunStarted { run_id: r.id, state: r.state }
            }
        };
        self.record(
            meta,
            Actor::Principal(principal),
            "source.run",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"run_id": started.run_id}),
        )
        .await?;
        Ok(started)
    }

    /// A source's runs, newest first.
    pub async fn source_runs(&self, principal: &Principal, id: &str, limit: u32) -> Result<Vec<RunView>, CoreError> {
        let s = self.managed_source(principal, id).await?;
        Ok(self.store.list_runs(s.id, limit.clamp(1, 1000)).await?.into_iter().map(RunView::from).collect())
    }

    /// One run of a source.
    pub async fn source_run(&self, principal: &Principal, id: &str, run_id: &str) -> Result<RunView, CoreError> {
        let s = self.managed_source(principal, id).await?;
        let not_found = || CoreError::NotFound(format!("运行记录不存在 / no such run: {run_id}"));
        let rid = Uuid::parse_str(run_id.trim()).map_err(|_| not_found())?;
        match self.store.get_run(rid).await? {
            Some(r) if r.source_id == s.id => Ok(r.into()),
            _ => Err(not_found()),
        }
    }

    /// Abort a run: a queued one at once, a running one at its next heartbeat (before its
    /// commit: nothing is written), one whose node died at once.
    pub async fn abort_run(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        run_id: &str,
    ) -> Result<RunView, CoreError> {
        let not_found = || CoreError::NotFound(format!("运行记录不存在 / no such run: {run_id}"));
        let rid = Uuid::parse_str(run_id.trim()).map_err(|_| not_found())?;
        let mut run = self.store.get_run(rid).await?.ok_or_else(not_found)?;
        let s = self.managed_source(principal, &run.source_id.to_string()).await.map_err(|_| not_found())?;
        let message = format!("已由 {} 中止 / aborted by {}", principal.username, principal.username);
        // A worker may take a queued run, or a run may end, between the read and the write:
        // the conditional write then changes nothing, and the run is read again (a queued run
        // taken by a worker is aborted at its next heartbeat instead).
        let mut attempts = 0;
        loop {
            let now = Utc::now().trunc_subsecs(6);
            let done = || SourceRunRecord {
                state: "aborted".into(),
                error: Some(message.clone()),
                finished_at: Some(now),
                ..run.clone()
            };
            let settled = match run.state.as_str() {
                "queued" => self.store.finish_run(&done(), "queued", None).await?,
                "running" if run.lease_until.is_some_and(|l| l < now) => {
                    self.store.finish_run(&done(), "running", run.lease_until).await?
                }
                "running" => self.store.request_abort(run.id).await?,
                other => {
                    return Err(CoreError::Conflict(format!(
                        "运行已结束（{other}），无法中止 / the run already ended ({other})"
                    )));
                }
            };
            attempts += 1;
            if settled {
                break;
            }
            if attempts == 5 {
                return Err(CoreError::Conflict("运行状态已变化，请重试 / the run changed state: retry".into()));
            }
            run = self.store.get_run(rid).await?.ok_or_else(not_found)?;
        }
        self.record(
            meta,
            Actor::Principal(principal),
            "source.abort",
            Some(format!("source:{}", s.id)),
            Outcome::Success,
            serde_json::json!({"run_id": run.id}),
        )
        .await?;
        Ok(self.store.get_run(run.id).await?.ok_or_else(not_found)?.into())
    }
}
