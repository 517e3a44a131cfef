//! Ingests: their records, leases and outcomes.

use super::{Cols, Db, SqlBackend, SqlRow, sql, unique};
use crate::{IngestOutcome, IngestRecord, IngestState, IngestStore, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn ingest<R: SqlRow>(r: &Cols<'_, R>) -> Result<IngestRecord> {
    Ok(IngestRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        idempotency_key: r.opt_text("idempotency_key")?,
        actor: r.text("actor")?,
        mode: r.text("mode")?,
        policy: r.text("policy")?,
        state: r.state("state", IngestState::parse)?,
        // The report is informative: one that no longer parses reads as none.
        report: r.opt_text("report")?.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.opt_text("error")?,
        created_at: r.time("created_at")?,
        finished_at: r.opt_time("finished_at")?,
        node: r.opt_text("node")?,
        lease_until: r.opt_time("lease_until")?,
        body_sha256: r.opt_text("body_sha256")?,
    })
}

#[async_trait]
impl<B: SqlBackend> IngestStore for B {
    async fn create_ingest(&self, r: &IngestRecord) -> Result<()> {
        let q =
            sql("INSERT INTO ingests (id, resource_id, idempotency_key, actor, mode, policy, state, report, error, \
                     created_at, finished_at, node, lease_until, body_sha256) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(r.id)
            .bind(r.resource_id)
            .bind(&r.idempotency_key)
            .bind(&r.actor)
            .bind(&r.mode)
            .bind(&r.policy)
            .bind(r.state.as_str())
            .bind(r.report.as_ref().map(|v| v.to_string()))
            .bind(&r.error)
            .bind(r.created_at)
            .bind(r.finished_at)
            .bind(&r.node)
            .bind(r.lease_until)
            .bind(&r.body_sha256);
        match self.execute(None, q).await {
            Ok(_) => Ok(()),
            Err(e) if unique(&e) => {
                Err(StoreError::Conflict(format!("idempotency key {}", r.idempotency_key.as_deref().unwrap_or(""))))
            }
            Err(e) => Err(B::error(e)),
        }
    }

    async fn finish_ingest(&self, id: Uuid, o: IngestOutcome<'_>) -> Result<()> {
        let q = sql("UPDATE ingests SET state = $1, report = $2, error = $3, finished_at = $4, lease_until = NULL, \
                     body_sha256 = COALESCE($5, body_sha256) WHERE id = $6")
        .bind(o.state.as_str())
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(o.at)
        .bind(o.body_sha256)
        .bind(id);
        self.run(q).await.map(drop)
    }

    async fn record_ingest_body(&self, id: Uuid, sha256: &str) -> Result<()> {
        self.run(sql("UPDATE ingests SET body_sha256 = $1 WHERE id = $2").bind(sha256).bind(id)).await.map(drop)
    }

    async fn renew_ingest_lease(&self, id: Uuid, until: DateTime<Utc>) -> Result<bool> {
        let q = sql("UPDATE ingests SET lease_until = $1 WHERE id = $2 AND state = 'running'").bind(until).bind(id);
        Ok(self.run(q).await? > 0)
    }

    async fn stale_ingests(&self, now: DateTime<Utc>, node: Option<&str>, limit: u32) -> Result<Vec<IngestRecord>> {
        let q = sql("SELECT * FROM ingests WHERE state = 'running' \
                     AND (lease_until IS NULL OR lease_until < $1 OR node = $2) ORDER BY created_at LIMIT $3")
        .bind(now)
        .bind(node)
        .bind(i64::from(limit));
        self.map(q, "ingests", ingest).await
    }

    async fn settle_ingest(&self, id: Uuid, seen_lease: Option<DateTime<Utc>>, o: IngestOutcome<'_>) -> Result<bool> {
        let q = sql("UPDATE ingests SET state = $1, report = $2, error = $3, finished_at = $4, lease_until = NULL \
                     WHERE id = $5 AND state = 'running' AND lease_until IS NOT DISTINCT FROM $6")
        .bind(o.state.as_str())
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(o.at)
        .bind(id)
        .bind(seen_lease);
        Ok(self.run(q).await? > 0)
    }

    async fn get_ingest(&self, id: Uuid) -> Result<Option<IngestRecord>> {
        self.map_one(sql("SELECT * FROM ingests WHERE id = $1").bind(id), "ingests", ingest).await
    }

    async fn find_ingest_by_key(&self, resource_id: Uuid, key: &str) -> Result<Option<IngestRecord>> {
        let q =
            sql("SELECT * FROM ingests WHERE resource_id = $1 AND idempotency_key = $2").bind(resource_id).bind(key);
        self.map_one(q, "ingests", ingest).await
    }

    async fn list_ingests(&self, resource_id: Uuid, limit: u32) -> Result<Vec<IngestRecord>> {
        let q = sql("SELECT * FROM ingests WHERE resource_id = $1 ORDER BY created_at DESC LIMIT $2")
            .bind(resource_id)
            .bind(i64::from(limit));
        self.map(q, "ingests", ingest).await
    }

    async fn delete_ingest(&self, id: Uuid) -> Result<()> {
        self.run(sql("DELETE FROM ingests WHERE id = $1").bind(id)).await.map(drop)
    }
}
