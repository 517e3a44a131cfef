//! `RequestStore` and `InboxStore` on PostgreSQL.

use crate::{PostgresStore, backend};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{CommentRecord, InboxRecord, InboxStore, RequestRecord, RequestStore, Result, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

fn request(r: &PgRow) -> Result<RequestRecord> {
    let fields: String = r.get("fields");
    Ok(RequestRecord {
        id: r.get("id"),
        resource_id: r.get("resource_id"),
        requester: r.get("requester"),
        requester_name: r.get("requester_name"),
        requester_department: r.get("requester_department"),
        fields: serde_json::from_str(&fields).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        purpose: r.get("purpose"),
        basis: r.get("basis"),
        scenario: r.get("scenario"),
        contact: r.get("contact"),
        period_days: r.get("period_days"),
        state: r.get("state"),
        reason: r.get("reason"),
        decided_by: r.get("decided_by"),
        decided_at: r.get("decided_at"),
        grant_id: r.get("grant_id"),
        renews_grant: r.get("renews_grant"),
        commitment: r.get("commitment"),
        due_at: r.get("due_at"),
        created_at: r.get("created_at"),
    })
}

fn inbox(r: &PgRow) -> Result<InboxRecord> {
    Ok(InboxRecord {
        id: r.get("id"),
        user_id: r.get("user_id"),
        kind: r.get("kind"),
        title: r.get("title"),
        body: r.get("body"),
        link: r.get("link"),
        created_at: r.get("created_at"),
        read_at: r.get("read_at"),
    })
}

#[async_trait]
impl RequestStore for PostgresStore {
    async fn create_request(&self, r: &RequestRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO requests (id, resource_id, requester, requester_name, requester_department, fields, purpose, basis, scenario, contact, \
             period_days, state, reason, decided_by, decided_at, grant_id, due_at, created_at, renews_grant, commitment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(r.id)
        .bind(r.resource_id)
        .bind(r.requester)
        .bind(&r.requester_name)
        .bind(&r.requester_department)
        .bind(serde_json::to_string(&r.fields).unwrap_or_else(|_| "[]".into()))
        .bind(&r.purpose)
        .bind(&r.basis)
        .bind(&r.scenario)
        .bind(&r.contact)
        .bind(r.period_days)
        .bind(&r.state)
        .bind(&r.reason)
        .bind(&r.decided_by)
        .bind(r.decided_at)
        .bind(r.grant_id)
        .bind(r.due_at)
        .bind(r.created_at)
        .bind(r.renews_grant)
        .bind(&r.commitment)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_request(&self, id: Uuid) -> Result<Option<RequestRecord>> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(request).transpose()
    }

    async fn list_requests(
        &self,
        requester: Option<Uuid>,
        department: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<RequestRecord>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT q.* FROM requests q JOIN resources r ON r.id = q.resource_id WHERE 1=1",
        );
        if requester.is_some() || department.is_some() || provider.is_some() {
            q.push(" AND (1=0");
            if let Some(u) = requester {
                q.push(" OR q.requester = ").push_bind(u);
            }
            if let Some(d) = department {
                q.push(" OR q.requester_department = ").push_bind(d.to_string());
            }
            if let Some(p) = provider {
                q.push(" OR r.provider = ").push_bind(p.to_string());
            }
            q.push(")");
        }
        q.push(" ORDER BY q.created_at DESC");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(request).collect()
    }

    async fn transition_request(&self, r: &RequestRecord, from: &str) -> Result<bool> {
        let res = sqlx::query("UPDATE requests SET state = $1, reason = $2, decided_by = $3, decided_at = $4, grant_id = $5, fields = $6 WHERE id = $7 AND state = $8")
            .bind(&r.state)
            .bind(&r.reason)
            .bind(&r.decided_by)
            .bind(r.decided_at)
            .bind(r.grant_id)
            .bind(serde_json::to_string(&r.fields).unwrap_or_else(|_| "[]".into()))
            .bind(r.id)
            .bind(from)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(res.rows_affected() == 1)
    }

    async fn add_comment(&self, c: &CommentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO request_comments (id, request_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id)
        .bind(c.request_id)
        .bind(&c.author)
        .bind(&c.body)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_comments(&self, request_id: Uuid) -> Result<Vec<CommentRecord>> {
        let rows = sqlx::query("SELECT * FROM request_comments WHERE request_id = $1 ORDER BY created_at, id")
            .bind(request_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(CommentRecord {
                    id: r.get("id"),
                    request_id: r.get("request_id"),
                    author: r.get("author"),
                    body: r.get("body"),
                    created_at: r.get("created_at"),
                })
            })
            .collect()
    }
}

#[async_trait]
impl InboxStore for PostgresStore {
    async fn push_inbox(&self, m: &InboxRecord) -> Result<()> {
        sqlx::query("INSERT INTO inbox (id, user_id, kind, title, body, link, created_at, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(m.id)
            .bind(m.user_id)
            .bind(&m.kind)
            .bind(&m.title)
            .bind(&m.body)
            .bind(&m.link)
            .bind(m.created_at)
            .bind(m.read_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn inbox_notice_exists(&self, kind: &str, link: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM inbox WHERE kind = $1 AND link = $2 LIMIT 1")
            .bind(kind)
            .bind(link)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(found.is_some())
    }

    async fn list_inbox(&self, user_id: Uuid, unread_only: bool, limit: u32) -> Result<Vec<InboxRecord>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM inbox WHERE user_id = ");
        q.push_bind(user_id);
        if unread_only {
            q.push(" AND read_at IS NULL");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(inbox).collect()
    }

    async fn mark_read(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query("UPDATE inbox SET read_at = $1 WHERE id = $2 AND user_id = $3 AND read_at IS NULL")
            .bind(at)
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }
}
