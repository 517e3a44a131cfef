//! Sources and their runs. Claiming a queued run is one `UPDATE … RETURNING`; on PostgreSQL its
//! subquery locks the row it picks (`FOR UPDATE SKIP LOCKED`), on SQLite writers are
//! serialized anyway; the partial unique index `source_runs_one_running` refuses a second
//! running run of one source whichever way two claims race.

use super::{Cols, Db, SqlBackend, SqlRow, sql, unique};
use crate::{HarvestRecord, Result, SourceRecord, SourceRunRecord, SourceStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn source<R: SqlRow>(r: &Cols<'_, R>) -> Result<SourceRecord> {
    Ok(SourceRecord {
        id: r.uuid("id")?,
        department: r.text("department")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        resource_id: r.opt_uuid("resource_id")?,
        config: r.json("config")?,
        secret: r.opt_text("secret")?,
        schedule: r.opt_text("schedule")?,
        enabled: r.flag("enabled")?,
        max_retries: r.i32("max_retries")?,
        watermark: r.opt_text("watermark")?,
        next_run_at: r.opt_time("next_run_at")?,
        consecutive_failures: r.i32("consecutive_failures")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn run<R: SqlRow>(r: &Cols<'_, R>) -> Result<SourceRunRecord> {
    let report = match r.opt_text("report")? {
        Some(t) => Some(serde_json::from_str(&t).map_err(|e| r.corrupt("report", e))?),
        None => None,
    };
    Ok(SourceRunRecord {
        id: r.uuid("id")?,
        source_id: r.uuid("source_id")?,
        state: r.text("state")?,
        cause: r.text("cause")?,
        attempt: r.i32("attempt")?,
        not_before: r.time("not_before")?,
        node: r.opt_text("node")?,
        lease_until: r.opt_time("lease_until")?,
        abort_requested: r.flag("abort_requested")?,
        report,
        error: r.opt_text("error")?,
        created_at: r.time("created_at")?,
        started_at: r.opt_time("started_at")?,
        finished_at: r.opt_time("finished_at")?,
    })
}

fn harvest<R: SqlRow>(r: &Cols<'_, R>) -> Result<HarvestRecord> {
    Ok(HarvestRecord {
        source_id: r.uuid("source_id")?,
        identifier: r.text("identifier")?,
        resource_id: r.uuid("resource_id")?,
        url: r.opt_text("url")?,
        modified: r.opt_text("modified")?,
        withdrawn: r.flag("withdrawn")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> SourceStore for B {
    async fn create_source(&self, s: &SourceRecord) -> Result<()> {
        let q =
            sql("INSERT INTO sources (id, department, name, kind, resource_id, config, secret, schedule, enabled, \
                     max_retries, watermark, next_run_at, consecutive_failures, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)")
            .bind(s.id)
            .bind(&s.department)
            .bind(&s.name)
            .bind(&s.kind)
            .bind(s.resource_id)
            .bind(s.config.to_string())
            .bind(&s.secret)
            .bind(&s.schedule)
            .bind(s.enabled)
            .bind(s.max_retries)
            .bind(&s.watermark)
            .bind(s.next_run_at)
            .bind(s.consecutive_failures)
            .bind(&s.created_by)
            .bind(s.created_at)
            .bind(s.updated_at);
        self.run(q).await.map(drop)
    }

    async fn get_source(&self, id: Uuid) -> Result<Option<SourceRecord>> {
        self.map_one(sql("SELECT * FROM sources WHERE id = $1").bind(id), "sources", source).await
    }

    async fn list_sources(&self, department: Option<&str>) -> Result<Vec<SourceRecord>> {
        let mut q = sql("SELECT * FROM sources");
        if let Some(d) = department {
            q.push(" WHERE department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        self.map(q, "sources", source).await
    }

    async fn update_source(&self, s: &SourceRecord) -> Result<bool> {
        let q = sql("UPDATE sources SET name = $1, config = $2, secret = $3, schedule = $4, enabled = $5, \
                     max_retries = $6, next_run_at = $7, watermark = $8, updated_at = $9 WHERE id = $10")
        .bind(&s.name)
        .bind(s.config.to_string())
        .bind(&s.secret)
        .bind(&s.schedule)
        .bind(s.enabled)
        .bind(s.max_retries)
        .bind(s.next_run_at)
        .bind(&s.watermark)
        .bind(s.updated_at)
        .bind(s.id);
        Ok(self.run(q).await? == 1)
    }

    async fn delete_source(&self, id: Uuid) -> Result<bool> {
        Ok(self.run(sql("DELETE FROM sources WHERE id = $1").bind(id)).await? == 1)
    }

    async fn advance_schedule(&self, id: Uuid, seen: DateTime<Utc>, next: Option<DateTime<Utc>>) -> Result<bool> {
        let q = sql("UPDATE sources SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3")
            .bind(next)
            .bind(id)
            .bind(seen);
        Ok(self.run(q).await? == 1)
    }

    async fn due_sources(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SourceRecord>> {
        let q = sql("SELECT * FROM sources WHERE enabled = $1 AND next_run_at <= $2 ORDER BY next_run_at LIMIT $3")
            .bind(true)
            .bind(now)
            .bind(i64::from(limit));
        self.map(q, "sources", source).await
    }

    async fn record_source_outcome(
        &self,
        id: Uuid,
        watermark: Option<&str>,
        consecutive_failures: i32,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut q = sql("UPDATE sources SET consecutive_failures = ");
        q.push_bind(consecutive_failures);
        if let Some(w) = watermark {
            q.push(", watermark = ").push_bind(w);
        }
        q.push(", updated_at = ").push_bind(at);
        q.push(" WHERE id = ").push_bind(id);
        self.run(q).await.map(drop)
    }

    async fn create_run(&self, r: &SourceRunRecord) -> Result<()> {
        let q = sql("INSERT INTO source_runs (id, source_id, state, cause, attempt, not_before, node, lease_until, \
                     abort_requested, report, error, created_at, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        .bind(r.id)
        .bind(r.source_id)
        .bind(&r.state)
        .bind(&r.cause)
        .bind(r.attempt)
        .bind(r.not_before)
        .bind(&r.node)
        .bind(r.lease_until)
        .bind(r.abort_requested)
        .bind(r.report.as_ref().map(|v| v.to_string()))
        .bind(&r.error)
        .bind(r.created_at)
        .bind(r.started_at)
        .bind(r.finished_at);
        self.run(q).await.map(drop)
    }

    async fn get_run(&self, id: Uuid) -> Result<Option<SourceRunRecord>> {
        self.map_one(sql("SELECT * FROM source_runs WHERE id = $1").bind(id), "source_runs", run).await
    }

    async fn list_runs(&self, source_id: Uuid, limit: u32) -> Result<Vec<SourceRunRecord>> {
        let q = sql("SELECT * FROM source_runs WHERE source_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(source_id)
            .bind(i64::from(limit));
        self.map(q, "source_runs", run).await
    }

    async fn active_run(&self, source_id: Uuid) -> Result<Option<SourceRunRecord>> {
        let q = sql("SELECT * FROM source_runs WHERE source_id = $1 AND state IN ('queued', 'running') \
                     ORDER BY created_at LIMIT 1")
        .bind(source_id);
        self.map_one(q, "source_runs", run).await
    }

    async fn claim_run(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SourceRunRecord>> {
        let q = sql(&format!(
            "UPDATE source_runs SET state = 'running', node = $1, lease_until = $2, started_at = $3 \
             WHERE id IN (SELECT r.id FROM source_runs r WHERE r.state = 'queued' AND r.not_before <= $4 \
             AND NOT EXISTS (SELECT 1 FROM source_runs x WHERE x.source_id = r.source_id AND x.state = 'running') \
             ORDER BY r.not_before LIMIT 1{}) RETURNING *",
            B::CLAIM_LOCK
        ))
        .bind(node)
        .bind(lease_until)
        .bind(now)
        .bind(now);
        match self.fetch(None, q).await {
            Ok(rows) => rows.first().map(|r| run(&Cols::new(r, "source_runs"))).transpose(),
            // Another node started a run of the same source between our look and our write.
            Err(e) if unique(&e) => Ok(None),
            Err(e) => Err(B::error(e)),
        }
    }

    async fn renew_run_lease(&self, id: Uuid, node: &str, until: DateTime<Utc>) -> Result<Option<bool>> {
        let q = sql("UPDATE source_runs SET lease_until = $1 WHERE id = $2 AND node = $3 AND state = 'running' \
                     RETURNING abort_requested")
        .bind(until)
        .bind(id)
        .bind(node);
        match self.one(q).await? {
            Some(r) => Ok(Some(Cols::new(&r, "source_runs").flag("abort_requested")?)),
            None => Ok(None),
        }
    }

    async fn finish_run(&self, r: &SourceRunRecord, from: &str, lease: Option<DateTime<Utc>>) -> Result<bool> {
        let mut q = sql("UPDATE source_runs SET state = $1, report = $2, error = $3, finished_at = $4, \
                         lease_until = NULL WHERE id = $5 AND state = $6")
        .bind(&r.state)
        .bind(r.report.as_ref().map(|v| v.to_string()))
        .bind(&r.error)
        .bind(r.finished_at)
        .bind(r.id)
        .bind(from);
        if from == "running"
            && let Some(n) = &r.node
        {
            q.push(" AND node = ").push_bind(n.as_str());
        }
        if let Some(l) = lease {
            q.push(" AND lease_until = ").push_bind(l);
        }
        Ok(self.run(q).await? == 1)
    }

    async fn request_abort(&self, id: Uuid) -> Result<bool> {
        let q =
            sql("UPDATE source_runs SET abort_requested = $1 WHERE id = $2 AND state = 'running'").bind(true).bind(id);
        Ok(self.run(q).await? == 1)
    }

    async fn last_source_success(&self, resource_id: Uuid) -> Result<Option<DateTime<Utc>>> {
        let q = sql("SELECT r.finished_at FROM source_runs r JOIN sources s ON s.id = r.source_id \
                     WHERE s.resource_id = $1 AND r.state = 'succeeded' ORDER BY r.finished_at DESC LIMIT 1")
        .bind(resource_id);
        Ok(self.map_one(q, "source_runs", |r| r.opt_time("finished_at")).await?.flatten())
    }

    async fn stale_runs(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SourceRunRecord>> {
        let q =
            sql("SELECT * FROM source_runs WHERE state = 'running' AND lease_until < $1 ORDER BY lease_until LIMIT $2")
                .bind(now)
                .bind(i64::from(limit));
        self.map(q, "source_runs", run).await
    }

    async fn harvest_records(&self, source_id: Uuid) -> Result<Vec<HarvestRecord>> {
        let q = sql("SELECT * FROM harvest_records WHERE source_id = $1 ORDER BY identifier").bind(source_id);
        self.map(q, "harvest_records", harvest).await
    }

    async fn put_harvest_record(&self, r: &HarvestRecord) -> Result<()> {
        let q = sql("INSERT INTO harvest_records (source_id, identifier, resource_id, url, modified, withdrawn, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source_id, identifier) DO UPDATE \
                     SET resource_id = excluded.resource_id, url = excluded.url, modified = excluded.modified, \
                     withdrawn = excluded.withdrawn, updated_at = excluded.updated_at")
        .bind(r.source_id)
        .bind(&r.identifier)
        .bind(r.resource_id)
        .bind(&r.url)
        .bind(&r.modified)
        .bind(r.withdrawn)
        .bind(r.updated_at);
        // The origin is part of what a metadata read shows: a change of it is a catalog change
        // (caches on every node follow that sequence).
        let mut tx = self.tx_begin().await?;
        self.execute(Some(&mut tx), q).await.map_err(B::error)?;
        super::catalog::record_change(self, &mut tx, r.resource_id).await?;
        self.tx_commit(tx).await
    }

    async fn harvest_origin(&self, resource_id: Uuid) -> Result<Option<HarvestRecord>> {
        let q = sql("SELECT * FROM harvest_records WHERE resource_id = $1").bind(resource_id);
        self.map_one(q, "harvest_records", harvest).await
    }
}
