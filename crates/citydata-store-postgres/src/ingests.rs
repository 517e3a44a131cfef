//! `IngestStore` on PostgreSQL.

use crate::{PostgresStore, backend, is_kind};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{IngestOutcome, IngestRecord, IngestStore, Result, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

fn record(r: &PgRow) -> Result<IngestRecord> {
    let report: Option<String> = r.get("report");
    Ok(IngestRecord {
        id: r.get("id"),
        resource_id: r.get("resource_id"),
        idempotency_key: r.get("idempotency_key"),
        actor: r.get("actor"),
        mode: r.get("mode"),
        policy: r.get("policy"),
        state: r.get("state"),
        report: report.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.get("error"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
        node: r.try_get("node").map_err(backend)?,
        lease_until: r.try_get("lease_until").map_err(backend)?,
        body_sha256: r.try_get("body_sha256").map_err(backend)?,
    })
}

#[async_trait]
impl IngestStore for PostgresStore {
    async fn create_ingest(&self, r: &IngestRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO ingests (id, resource_id, idempotency_key, actor, mode, policy, state, report, error, created_at, finished_at, \
             node, lease_until, body_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(r.id)
        .bind(r.resource_id)
        .bind(&r.idempotency_key)
        .bind(&r.actor)
        .bind(&r.mode)
        .bind(&r.policy)
        .bind(&r.state)
        .bind(r.report.as_ref().map(|v| v.to_string()))
        .bind(&r.error)
        .bind(r.created_at)
        .bind(r.finished_at)
        .bind(&r.node)
        .bind(r.lease_until)
        .bind(&r.body_sha256)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, sqlx::error::ErrorKind::UniqueViolation) => {
                Err(StoreError::Conflict(format!("idempotency key {}", r.idempotency_key.as_deref().unwrap_or(""))))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn finish_ingest(&self, id: Uuid, o: IngestOutcome<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE ingests SET state = $1, report = $2, error = $3, finished_at = $4, lease_until = NULL, \
             body_sha256 = COALESCE($5, body_sha256) WHERE id = $6",
        )
        .bind(o.state)
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(o.at)
        .bind(o.body_sha256)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn record_ingest_body(&self, id: Uuid, sha256: &str) -> Result<()> {
        sqlx::query("UPDATE ingests SET body_sha256 = $1 WHERE id = $2")
            .bind(sha256)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn renew_ingest_lease(&self, id: Uuid, until: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE ingests SET lease_until = $1 WHERE id = $2 AND state = 'running'")
            .bind(until)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn stale_ingests(&self, now: DateTime<Utc>, node: Option<&str>, limit: u32) -> Result<Vec<IngestRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM ingests WHERE state = 'running' \
             AND (lease_until IS NULL OR lease_until < $1 OR node = $2) ORDER BY created_at LIMIT $3",
        )
        .bind(now)
        .bind(node)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn settle_ingest(&self, id: Uuid, seen_lease: Option<DateTime<Utc>>, o: IngestOutcome<'_>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE ingests SET state = $1, report = $2, error = $3, finished_at = $4, lease_until = NULL \
             WHERE id = $5 AND state = 'running' AND lease_until IS NOT DISTINCT FROM $6",
        )
        .bind(o.state)
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(o.at)
        .bind(id)
        .bind(seen_lease)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_ingest(&self, id: Uuid) -> Result<Option<IngestRecord>> {
        let row = sqlx::query("SELECT * FROM ingests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn find_ingest_by_key(&self, resource_id: Uuid, key: &str) -> Result<Option<IngestRecord>> {
        let row = sqlx::query("SELECT * FROM ingests WHERE resource_id = $1 AND idempotency_key = $2")
            .bind(resource_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn list_ingests(&self, resource_id: Uuid, limit: u32) -> Result<Vec<IngestRecord>> {
        let rows = sqlx::query("SELECT * FROM ingests WHERE resource_id = $1 ORDER BY created_at DESC LIMIT $2")
            .bind(resource_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn delete_ingest(&self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM ingests WHERE id = $1").bind(id).execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }
}
