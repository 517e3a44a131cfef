//! `WebhookStore` on PostgreSQL. Claiming deliveries uses `FOR UPDATE SKIP LOCKED`, so nodes
//! sharing the database never send one delivery twice at once.

use crate::{PostgresStore, backend};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{DeliveryRecord, Result, StoreError, SubscriptionRecord, WebhookRecord, WebhookStore};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

fn webhook(r: &PgRow) -> Result<WebhookRecord> {
    let events: String = r.get("events");
    Ok(WebhookRecord {
        id: r.get("id"),
        department: r.get("department"),
        url: r.get("url"),
        secret: r.get("secret"),
        events: serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    })
}

fn delivery(r: &PgRow) -> DeliveryRecord {
    DeliveryRecord {
        id: r.get("id"),
        webhook_id: r.get("webhook_id"),
        event: r.get("event"),
        payload: r.get("payload"),
        state: r.get("state"),
        attempts: r.get("attempts"),
        next_attempt_at: r.get("next_attempt_at"),
        last_attempt_at: r.get("last_attempt_at"),
        last_status: r.get("last_status"),
        last_error: r.get("last_error"),
        created_at: r.get("created_at"),
        delivered_at: r.get("delivered_at"),
    }
}

fn subscription(r: &PgRow) -> SubscriptionRecord {
    SubscriptionRecord {
        id: r.get("id"),
        resource_id: r.get("resource_id"),
        department: r.get("department"),
        webhook_id: r.get("webhook_id"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    }
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook(&self, w: &WebhookRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(w.id)
        .bind(&w.department)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
        .bind(&w.created_by)
        .bind(w.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>> {
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(webhook).transpose()
    }

    async fn list_webhooks(&self, department: Option<&str>) -> Result<Vec<WebhookRecord>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM webhooks");
        if let Some(d) = department {
            q.push(" WHERE department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(webhook).collect()
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&self.pool).await.map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }

    async fn enqueue_delivery(&self, d: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, state, attempts, next_attempt_at, last_attempt_at, \
             last_status, last_error, created_at, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(d.id)
        .bind(d.webhook_id)
        .bind(&d.event)
        .bind(&d.payload)
        .bind(&d.state)
        .bind(d.attempts)
        .bind(d.next_attempt_at)
        .bind(d.last_attempt_at)
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(d.created_at)
        .bind(d.delivered_at)
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
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *",
        )
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.iter().map(delivery).collect())
    }

    async fn finish_attempt(&self, d: &DeliveryRecord) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, last_attempt_at = $4, \
             last_status = $5, last_error = $6, delivered_at = $7 WHERE id = $8",
        )
        .bind(&d.state)
        .bind(d.attempts)
        .bind(d.next_attempt_at)
        .bind(d.last_attempt_at)
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(d.delivered_at)
        .bind(d.id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.iter().map(delivery).collect())
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO subscriptions (id, resource_id, department, webhook_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id)
        .bind(s.resource_id)
        .bind(&s.department)
        .bind(s.webhook_id)
        .bind(&s.created_by)
        .bind(s.created_at)
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
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM subscriptions WHERE TRUE");
        if let Some(r) = resource_id {
            q.push(" AND resource_id = ").push_bind(r);
        }
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        Ok(rows.iter().map(subscription).collect())
    }

    async fn delete_subscription(&self, id: Uuid) -> Result<bool> {
        let r = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }
}
