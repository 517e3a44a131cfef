//! Webhooks, their delivery queue and log, and change subscriptions. Claiming deliveries is one
//! `UPDATE … RETURNING` statement; on PostgreSQL its subquery locks the rows it picks
//! (`FOR UPDATE SKIP LOCKED`), on SQLite writers are serialized anyway, so no two dispatchers
//! take the same delivery.

use super::{Cols, Db, SqlBackend, SqlRow, json_text, sql};
use crate::{DeliveryRecord, DeliveryState, Result, SubscriptionRecord, WebhookRecord, WebhookStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn webhook<R: SqlRow>(r: &Cols<'_, R>) -> Result<WebhookRecord> {
    Ok(WebhookRecord {
        id: r.uuid("id")?,
        department: r.text("department")?,
        url: r.text("url")?,
        secret: r.text("secret")?,
        events: r.json("events")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
    })
}

fn delivery<R: SqlRow>(r: &Cols<'_, R>) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.uuid("id")?,
        webhook_id: r.uuid("webhook_id")?,
        event: r.text("event")?,
        payload: r.text("payload")?,
        state: r.state("state", DeliveryState::parse)?,
        attempts: r.i32("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        last_attempt_at: r.opt_time("last_attempt_at")?,
        last_status: r.opt_i32("last_status")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.time("created_at")?,
        delivered_at: r.opt_time("delivered_at")?,
    })
}

fn subscription<R: SqlRow>(r: &Cols<'_, R>) -> Result<SubscriptionRecord> {
    Ok(SubscriptionRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        department: r.text("department")?,
        webhook_id: r.uuid("webhook_id")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> WebhookStore for B {
    async fn create_webhook(&self, w: &WebhookRecord) -> Result<()> {
        let q = sql("INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(w.id)
        .bind(&w.department)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(json_text(&w.events)?)
        .bind(&w.created_by)
        .bind(w.created_at);
        self.run(q).await.map(drop)
    }

    async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>> {
        self.map_one(sql("SELECT * FROM webhooks WHERE id = $1").bind(id), "webhooks", webhook).await
    }

    async fn list_webhooks(&self, department: Option<&str>) -> Result<Vec<WebhookRecord>> {
        let mut q = sql("SELECT * FROM webhooks");
        if let Some(d) = department {
            q.push(" WHERE department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        self.map(q, "webhooks", webhook).await
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        Ok(self.run(sql("DELETE FROM webhooks WHERE id = $1").bind(id)).await? == 1)
    }

    async fn enqueue_delivery(&self, d: &DeliveryRecord) -> Result<()> {
        let q =
            sql("INSERT INTO webhook_deliveries (id, webhook_id, event, payload, state, attempts, next_attempt_at, \
                     last_attempt_at, last_status, last_error, created_at, delivered_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
            .bind(d.id)
            .bind(d.webhook_id)
            .bind(&d.event)
            .bind(&d.payload)
            .bind(d.state.as_str())
            .bind(d.attempts)
            .bind(d.next_attempt_at)
            .bind(d.last_attempt_at)
            .bind(d.last_status)
            .bind(&d.last_error)
            .bind(d.created_at)
            .bind(d.delivered_at);
        self.run(q).await.map(drop)
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let q = sql(&format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3{}) RETURNING *",
            B::CLAIM_LOCK
        ))
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit));
        self.map(q, "webhook_deliveries", delivery).await
    }

    async fn finish_attempt(&self, d: &DeliveryRecord) -> Result<()> {
        let q = sql("UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, \
                     last_attempt_at = $4, last_status = $5, last_error = $6, delivered_at = $7 WHERE id = $8")
        .bind(d.state.as_str())
        .bind(d.attempts)
        .bind(d.next_attempt_at)
        .bind(d.last_attempt_at)
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(d.delivered_at)
        .bind(d.id);
        self.run(q).await.map(drop)
    }

    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let q =
            sql("SELECT * FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                .bind(webhook_id)
                .bind(i64::from(limit));
        self.map(q, "webhook_deliveries", delivery).await
    }

    async fn create_subscription(&self, s: &SubscriptionRecord) -> Result<()> {
        let q = sql("INSERT INTO subscriptions (id, resource_id, department, webhook_id, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(s.id)
        .bind(s.resource_id)
        .bind(&s.department)
        .bind(s.webhook_id)
        .bind(&s.created_by)
        .bind(s.created_at);
        self.run(q).await.map(drop)
    }

    async fn list_subscriptions(
        &self,
        resource_id: Option<Uuid>,
        department: Option<&str>,
    ) -> Result<Vec<SubscriptionRecord>> {
        let mut q = sql("SELECT * FROM subscriptions WHERE 1=1");
        if let Some(r) = resource_id {
            q.push(" AND resource_id = ").push_bind(r);
        }
        if let Some(d) = department {
            q.push(" AND department = ").push_bind(d);
        }
        q.push(" ORDER BY created_at, id");
        self.map(q, "subscriptions", subscription).await
    }

    async fn delete_subscription(&self, id: Uuid) -> Result<bool> {
        Ok(self.run(sql("DELETE FROM subscriptions WHERE id = $1").bind(id)).await? == 1)
    }
}
