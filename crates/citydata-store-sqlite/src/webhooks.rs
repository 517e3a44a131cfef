//! `WebhookStore` on SQLite. Claiming deliveries is one `UPDATE … RETURNING` statement (SQLite
//! serializes writers), so no two dispatchers take the same delivery.

use crate::{SqliteStore, backend, from_micros, micros, uuid};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{DeliveryRecord, Result, StoreError, SubscriptionRecord, WebhookRecord, WebhookStore};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

fn opt_time(r: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    r.get::<Option<i64>, _>(col).map(from_micros).transpose()
}

fn webhook(r: &SqliteRow) -> Result<WebhookRecord> {
    let events: String = r.get("events");
    Ok(WebhookRecord {
        id: uuid(r.get("id"))?,
        department: r.get("department"),
        url: r.get("url"),
        secret: r.get("secret"),
        events: serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_by: r.get("created_by"),
        created_at: from_micros(r.get("created_at"))?,
    })
}

fn delivery(r: &SqliteRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: uuid(r.get("id"))?,
        webhook_id: uuid(r.get("webhook_id"))?,
        event: r.get("event"),
        payload: r.get("payload"),
        state: r.get("state"),
        attempts: r.get("attempts"),
        next_attempt_at: from_micros(r.get("next_attempt_at"))?,
        last_attempt_at: opt_time(r, "last_attempt_at")?,
        last_status: r.get("last_status"),
        last_error: r.get("last_error"),
        created_at: from_micros(r.get("created_at"))?,
        delivered_at: opt_time(r, "delivered_at")?,
    })
}

fn subscription(r: &SqliteRow) -> Result<SubscriptionRecord> {
    Ok(SubscriptionRecord {
        id: uuid(r.get("id"))?,
        resource_id: uuid(r.get("resource_id"))?,
        department: r.get("department"),
        webhook_id: uuid(r.get("webhook_id"))?,
        created_by: r.get("created_by"),
        created_at: from_micros(r.get("created_at"))?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, w: &WebhookRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.id.to_string())
        .bind(&w.department)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
        .bind(&w.created_by)
        .bind(micros(w.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(webhook).transpose()
    }

    async fn list_webhooks(&self, department: Option<&str>) -> Result<Vec<WebhookRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM webhooks");
        if let Some(d) = department {
            q.push(" WHERE department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(webhook).collect()
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        let r = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }

    async fn enqueue_delivery(&self, d: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, state, attempts, next_attempt_at, last_attempt_at, \
             last_status, last_error, created_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.id.to_string())
        .bind(d.webhook_id.to_string())
        .bind(&d.event)
        .bind(&d.payload)
        .bind(&d.state)
        .bind(d.attempts)
        .bind(micros(d.next_attempt_at))
        .bind(d.last_attempt_at.map(micros))
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(micros(d.created_at))
        .bind(d.delivered_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) RETURNING *",
        )
        .bind(micros(lease_until))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(delivery).collect()
    }

    async fn finish_attempt(&self, d: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?, \
             last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?",
        )
        .bind(&d.state)
        .bind(d.attempts)
        .bind(micros(d.next_attempt_at))
        .bind(d.last_attempt_at.map(micros))
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(d.delivered_at.map(micros))
        .bind(d.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(webhook_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(delivery).collect()
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO subscriptions (id, resource_id, department, webhook_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_string())
        .bind(s.resource_id.to_string())
        .bind(&s.department)
        .bind(s.webhook_id.to_string())
        .bind(&s.created_by)
        .bind(micros(s.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_subscriptions(
        &self,
        resource_id: Option<Uuid>,
        department: Option<&str>,
    ) -> Result<Vec<SubscriptionRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM subscriptions WHERE 1 = 1");
        if let Some(r) = resource_id {
            q.push(" AND resource_id = ").push_bind(r.to_string());
        }
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(subscription).collect()
    }

    async fn delete_subscription(&self, id: Uuid) -> Result<bool> {
        let r = sqlx::query("DELETE FROM subscriptions WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }
}
