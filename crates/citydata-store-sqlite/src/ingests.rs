//! `IngestStore` on SQLite.

use crate::{SqliteStore, backend, from_micros, is_kind, micros, uuid};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{IngestOutcome, IngestRecord, IngestStore, Result, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn record(r: &SqliteRow) -> Result<IngestRecord> {
    let report: Option<String> = r.get("report");
    Ok(IngestRecord {
        id: uuid(r.get("id"))?,
        resource_id: uuid(r.get("resource_id"))?,
        idempotency_key: r.get("idempotency_key"),
        actor: r.get("actor"),
        mode: r.get("mode"),
        policy: r.get("policy"),
        state: r.get("state"),
        report: report.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.get("error"),
        created_at: from_micros(r.get("created_at"))?,
        finished_at: r.get::<Option<i64>, _>("finished_at").map(from_micros).transpose()?,
        node: r.try_get("node").map_err(backend)?,
        lease_until: r.try_get::<Option<i64>, _>("lease_until").map_err(backend)?.map(from_micros).transpose()?,
        body_sha256: r.try_get("body_sha256").map_err(backend)?,
    })
}

#[async_trait]
impl IngestStore for SqliteStore {
    async fn create_ingest(&self, r: &IngestRecord) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO ingests (id, resource_id, idempotency_key, actor, mode, policy, state, report, error, created_at, finished_at, \
             node, lease_until, body_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.to_string())
        .bind(r.resource_id.to_string())
        .bind(&r.idempotency_key)
        .bind(&r.actor)
        .bind(&r.mode)
        .bind(&r.policy)
        .bind(&r.state)
        .bind(r.report.as_ref().map(|v| v.to_string()))
        .bind(&r.error)
        .bind(micros(r.created_at))
        .bind(r.finished_at.map(micros))
        .bind(&r.node)
        .bind(r.lease_until.map(micros))
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
            "UPDATE ingests SET state = ?, report = ?, error = ?, finished_at = ?, lease_until = NULL, \
             body_sha256 = COALESCE(?, body_sha256) WHERE id = ?",
        )
        .bind(o.state)
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(micros(o.at))
        .bind(o.body_sha256)
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn record_ingest_body(&self, id: Uuid, sha256: &str) -> Result<()> {
        sqlx::query("UPDATE ingests SET body_sha256 = ? WHERE id = ?")
            .bind(sha256)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn renew_ingest_lease(&self, id: Uuid, until: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE ingests SET lease_until = ? WHERE id = ? AND state = 'running'")
            .bind(micros(until))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn stale_ingests(&self, now: DateTime<Utc>, node: Option<&str>, limit: u32) -> Result<Vec<IngestRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM ingests WHERE state = 'running' \
             AND (lease_until IS NULL OR lease_until < ? OR node = ?) ORDER BY created_at LIMIT ?",
        )
        .bind(micros(now))
        .bind(node)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn settle_ingest(&self, id: Uuid, seen_lease: Option<DateTime<Utc>>, o: IngestOutcome<'_>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE ingests SET state = ?, report = ?, error = ?, finished_at = ?, lease_until = NULL \
             WHERE id = ? AND state = 'running' AND lease_until IS ?",
        )
        .bind(o.state)
        .bind(o.report.map(|v| v.to_string()))
        .bind(o.error)
        .bind(micros(o.at))
        .bind(id.to_string())
        .bind(seen_lease.map(micros))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_ingest(&self, id: Uuid) -> Result<Option<IngestRecord>> {
        let row = sqlx::query("SELECT * FROM ingests WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn find_ingest_by_key(&self, resource_id: Uuid, key: &str) -> Result<Option<IngestRecord>> {
        let row = sqlx::query("SELECT * FROM ingests WHERE resource_id = ? AND idempotency_key = ?")
            .bind(resource_id.to_string())
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn list_ingests(&self, resource_id: Uuid, limit: u32) -> Result<Vec<IngestRecord>> {
        let rows = sqlx::query("SELECT * FROM ingests WHERE resource_id = ? ORDER BY created_at DESC LIMIT ?")
            .bind(resource_id.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn delete_ingest(&self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM ingests WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
