//! Requests (共享申请) with their comments, and the inbox.

use super::{Cols, Db, SqlBackend, SqlRow, json_text, sql};
use crate::{CommentRecord, InboxRecord, InboxStore, RequestRecord, RequestState, RequestStore, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn request<R: SqlRow>(r: &Cols<'_, R>) -> Result<RequestRecord> {
    Ok(RequestRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        requester: r.uuid("requester")?,
        requester_name: r.text("requester_name")?,
        requester_department: r.opt_text("requester_department")?,
        fields: r.json("fields")?,
        purpose: r.text("purpose")?,
        basis: r.text("basis")?,
        scenario: r.text("scenario")?,
        contact: r.text("contact")?,
        period_days: r.i64("period_days")?,
        state: r.state("state", RequestState::parse)?,
        reason: r.opt_text("reason")?,
        decided_by: r.opt_text("decided_by")?,
        decided_at: r.opt_time("decided_at")?,
        grant_id: r.opt_uuid("grant_id")?,
        renews_grant: r.opt_uuid("renews_grant")?,
        commitment: r.opt_text("commitment")?,
        due_at: r.time("due_at")?,
        created_at: r.time("created_at")?,
    })
}

fn comment<R: SqlRow>(r: &Cols<'_, R>) -> Result<CommentRecord> {
    Ok(CommentRecord {
        id: r.uuid("id")?,
        request_id: r.uuid("request_id")?,
        author: r.text("author")?,
        body: r.text("body")?,
        created_at: r.time("created_at")?,
    })
}

fn inbox<R: SqlRow>(r: &Cols<'_, R>) -> Result<InboxRecord> {
    Ok(InboxRecord {
        id: r.uuid("id")?,
        user_id: r.uuid("user_id")?,
        kind: r.text("kind")?,
        title: r.text("title")?,
        body: r.text("body")?,
        link: r.opt_text("link")?,
        created_at: r.time("created_at")?,
        read_at: r.opt_time("read_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> RequestStore for B {
    async fn create_request(&self, r: &RequestRecord) -> Result<()> {
        let q = sql("INSERT INTO requests (id, resource_id, requester, requester_name, requester_department, fields, \
                     purpose, basis, scenario, contact, period_days, state, reason, decided_by, decided_at, grant_id, \
                     due_at, created_at, renews_grant, commitment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                     $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)")
        .bind(r.id)
        .bind(r.resource_id)
        .bind(r.requester)
        .bind(&r.requester_name)
        .bind(&r.requester_department)
        .bind(json_text(&r.fields)?)
        .bind(&r.purpose)
        .bind(&r.basis)
        .bind(&r.scenario)
        .bind(&r.contact)
        .bind(r.period_days)
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(&r.decided_by)
        .bind(r.decided_at)
        .bind(r.grant_id)
        .bind(r.due_at)
        .bind(r.created_at)
        .bind(r.renews_grant)
        .bind(&r.commitment);
        self.run(q).await.map(drop)
    }

    async fn get_request(&self, id: Uuid) -> Result<Option<RequestRecord>> {
        self.map_one(sql("SELECT * FROM requests WHERE id = $1").bind(id), "requests", request).await
    }

    async fn list_requests(
        &self,
        requester: Option<Uuid>,
        department: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Vec<RequestRecord>> {
        let mut q = sql("SELECT q.* FROM requests q JOIN resources r ON r.id = q.resource_id WHERE 1=1");
        if requester.is_some() || department.is_some() || provider.is_some() {
            q.push(" AND (1=0");
            if let Some(u) = requester {
                q.push(" OR q.requester = ").push_bind(u);
            }
            if let Some(d) = department {
                q.push(" OR q.requester_department = ").push_bind(d);
            }
            if let Some(p) = provider {
                q.push(" OR r.provider = ").push_bind(p);
            }
            q.push(")");
        }
        q.push(" ORDER BY q.created_at DESC");
        self.map(q, "requests", request).await
    }

    async fn transition_request(&self, r: &RequestRecord, from: RequestState) -> Result<bool> {
        let q = sql("UPDATE requests SET state = $1, reason = $2, decided_by = $3, decided_at = $4, grant_id = $5, \
                     fields = $6 WHERE id = $7 AND state = $8")
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(&r.decided_by)
        .bind(r.decided_at)
        .bind(r.grant_id)
        .bind(json_text(&r.fields)?)
        .bind(r.id)
        .bind(from.as_str());
        Ok(self.run(q).await? == 1)
    }

    async fn add_comment(&self, c: &CommentRecord) -> Result<()> {
        let q =
            sql("INSERT INTO request_comments (id, request_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(c.id)
                .bind(c.request_id)
                .bind(&c.author)
                .bind(&c.body)
                .bind(c.created_at);
        self.run(q).await.map(drop)
    }

    async fn list_comments(&self, request_id: Uuid) -> Result<Vec<CommentRecord>> {
        let q = sql("SELECT * FROM request_comments WHERE request_id = $1 ORDER BY created_at, id").bind(request_id);
        self.map(q, "request_comments", comment).await
    }
}

#[async_trait]
impl<B: SqlBackend> InboxStore for B {
    async fn push_inbox(&self, m: &InboxRecord) -> Result<()> {
        let q = sql("INSERT INTO inbox (id, user_id, kind, title, body, link, created_at, read_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(m.id)
        .bind(m.user_id)
        .bind(&m.kind)
        .bind(&m.title)
        .bind(&m.body)
        .bind(&m.link)
        .bind(m.created_at)
        .bind(m.read_at);
        self.run(q).await.map(drop)
    }

    async fn inbox_notice_exists(&self, kind: &str, link: &str) -> Result<bool> {
        let q = sql("SELECT 1 FROM inbox WHERE kind = $1 AND link = $2 LIMIT 1").bind(kind).bind(link);
        Ok(self.one(q).await?.is_some())
    }

    async fn list_inbox(&self, user_id: Uuid, unread_only: bool, limit: u32) -> Result<Vec<InboxRecord>> {
        let mut q = sql("SELECT * FROM inbox WHERE user_id = ");
        q.push_bind(user_id);
        if unread_only {
            q.push(" AND read_at IS NULL");
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
        self.map(q, "inbox", inbox).await
    }

    async fn mark_read(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let q = sql("UPDATE inbox SET read_at = $1 WHERE id = $2 AND user_id = $3 AND read_at IS NULL")
            .bind(at)
            .bind(id)
            .bind(user_id);
        Ok(self.run(q).await? == 1)
    }
}
