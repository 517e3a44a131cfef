//! Quality reports per table version, 纠错 tickets, reminders claimed once.

use super::{Cols, Db, SqlBackend, SqlRow, sql};
use crate::{QualityReportRecord, QualityStore, Result, TicketFilter, TicketRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn report<R: SqlRow>(r: &Cols<'_, R>) -> Result<QualityReportRecord> {
    Ok(QualityReportRecord {
        resource_id: r.uuid("resource_id")?,
        version: r.i64("version")?,
        ingest_id: r.opt_uuid("ingest_id")?,
        report: r.json("report")?,
        samples: r.json("samples")?,
        created_at: r.time("created_at")?,
    })
}

fn ticket<R: SqlRow>(r: &Cols<'_, R>) -> Result<TicketRecord> {
    Ok(TicketRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        department: r.text("department")?,
        title: r.text("title")?,
        description: r.text("description")?,
        record_key: r.opt_text("record_key")?,
        item: r.opt_text("item")?,
        reporter_id: r.opt_uuid("reporter_id")?,
        reporter: r.text("reporter")?,
        state: r.text("state")?,
        fixed_version: r.opt_i64("fixed_version")?,
        due_at: r.time("due_at")?,
        overdue_notified_at: r.opt_time("overdue_notified_at")?,
        assignee: r.opt_text("assignee")?,
        history: r.json("history")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> QualityStore for B {
    async fn put_quality_report(&self, r: &QualityReportRecord) -> Result<()> {
        let q = sql("INSERT INTO quality_reports (resource_id, version, ingest_id, report, samples, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (resource_id, version) DO UPDATE SET \
                     ingest_id = excluded.ingest_id, report = excluded.report, samples = excluded.samples, \
                     created_at = excluded.created_at")
        .bind(r.resource_id)
        .bind(r.version)
        .bind(r.ingest_id)
        .bind(r.report.to_string())
        .bind(r.samples.to_string())
        .bind(r.created_at);
        self.run(q).await.map(drop)
    }

    async fn get_quality_report(&self, resource_id: Uuid, version: Option<i64>) -> Result<Option<QualityReportRecord>> {
        let mut q = sql("SELECT * FROM quality_reports WHERE resource_id = $1").bind(resource_id);
        if let Some(v) = version {
            q.push(" AND version = ").push_bind(v);
        }
        q.push(" ORDER BY version DESC LIMIT 1");
        self.map_one(q, "quality_reports", report).await
    }

    async fn list_quality_reports(&self, resource_id: Uuid, limit: u32) -> Result<Vec<QualityReportRecord>> {
        let q = sql("SELECT * FROM quality_reports WHERE resource_id = $1 ORDER BY version DESC LIMIT $2")
            .bind(resource_id)
            .bind(i64::from(limit));
        let mut v = self.map(q, "quality_reports", report).await?;
        v.reverse();
        Ok(v)
    }

    async fn create_ticket(&self, t: &TicketRecord) -> Result<()> {
        let q = sql("INSERT INTO quality_tickets (id, resource_id, department, title, description, record_key, item, \
                     reporter_id, reporter, state, fixed_version, due_at, overdue_notified_at, history, created_at, \
                     updated_at, assignee) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17)")
        .bind(t.id)
        .bind(t.resource_id)
        .bind(&t.department)
        .bind(&t.title)
        .bind(&t.description)
        .bind(&t.record_key)
        .bind(&t.item)
        .bind(t.reporter_id)
        .bind(&t.reporter)
        .bind(&t.state)
        .bind(t.fixed_version)
        .bind(t.due_at)
        .bind(t.overdue_notified_at)
        .bind(t.history.to_string())
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(&t.assignee);
        self.run(q).await.map(drop)
    }

    async fn get_ticket(&self, id: Uuid) -> Result<Option<TicketRecord>> {
        self.map_one(sql("SELECT * FROM quality_tickets WHERE id = $1").bind(id), "quality_tickets", ticket).await
    }

    async fn list_tickets(&self, f: &TicketFilter, limit: u32) -> Result<Vec<TicketRecord>> {
        let mut q = sql("SELECT * FROM quality_tickets WHERE 1=1");
        if let Some(r) = f.resource_id {
            q.push(" AND resource_id = ").push_bind(r);
        }
        if let Some(s) = &f.state {
            q.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(d) = &f.department {
            q.push(" AND department = ").push_bind(d.as_str());
        }
        if let Some(u) = f.reporter_id {
            q.push(" AND reporter_id = ").push_bind(u);
        }
        if let Some(at) = f.overdue_at {
            q.push(" AND state IN ('submitted', 'accepted') AND due_at < ").push_bind(at);
        }
        if let Some(a) = &f.assignee {
            q.push(" AND assignee = ").push_bind(a.as_str());
        }
        q.push(" ORDER BY created_at DESC LIMIT ").push_bind(i64::from(limit));
        self.map(q, "quality_tickets", ticket).await
    }

    async fn update_ticket(&self, t: &TicketRecord, from: &str) -> Result<bool> {
        let q = sql("UPDATE quality_tickets SET state = $1, fixed_version = $2, due_at = $3, \
                     overdue_notified_at = $4, history = $5, updated_at = $6, assignee = $7 \
                     WHERE id = $8 AND state = $9")
        .bind(&t.state)
        .bind(t.fixed_version)
        .bind(t.due_at)
        .bind(t.overdue_notified_at)
        .bind(t.history.to_string())
        .bind(t.updated_at)
        .bind(&t.assignee)
        .bind(t.id)
        .bind(from);
        Ok(self.run(q).await? > 0)
    }

    async fn count_confirmed_tickets(&self, resource_id: Uuid) -> Result<i64> {
        let q = sql("SELECT COUNT(*) AS n FROM quality_tickets WHERE resource_id = $1 AND state = 'confirmed'")
            .bind(resource_id);
        self.count(q, "quality_tickets").await
    }

    async fn claim_reminder(&self, resource_id: Uuid, period: &str, kind: &str, at: DateTime<Utc>) -> Result<bool> {
        let q = sql("INSERT INTO quality_reminders (resource_id, period, kind, sent_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (resource_id, period, kind) DO NOTHING")
        .bind(resource_id)
        .bind(period)
        .bind(kind)
        .bind(at);
        Ok(self.run(q).await? > 0)
    }
}
