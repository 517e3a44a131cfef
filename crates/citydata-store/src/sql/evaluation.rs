//! Evaluation: per-period aggregates (the audit log summed in SQL), rules, period pins, the
//! applications registry.

use super::{Cols, Db, SqlBackend, SqlRow, sql, unique};
use crate::{
    ApplicationRecord, EvalRequest, EvalTicket, EvaluationStore, PeriodPin, READ_ACTIONS, ReadFlow, Result,
    RulesRecord, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// `a.action IN ('data.read_rows', …)`: constants, not input.
fn read_actions() -> String {
    let list: Vec<String> = READ_ACTIONS.iter().map(|a| format!("'{a}'")).collect();
    format!("action IN ({})", list.join(", "))
}

fn rules<R: SqlRow>(r: &Cols<'_, R>) -> Result<RulesRecord> {
    Ok(RulesRecord {
        version: r.i64("version")?,
        rules: r.json("rules")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
    })
}

fn application<R: SqlRow>(r: &Cols<'_, R>) -> Result<ApplicationRecord> {
    Ok(ApplicationRecord {
        id: r.uuid("id")?,
        name: r.text("name")?,
        department: r.text("department")?,
        scenario: r.text("scenario")?,
        url: r.opt_text("url")?,
        status: r.text("status")?,
        resources: Vec::new(),
        service_account: r.opt_text("service_account")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> EvaluationStore for B {
    async fn eval_read_flows(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ReadFlow>> {
        // Grouped by target first (a few thousand groups), then joined to the catalog.
        let q = sql(&format!(
            "SELECT r.id AS resource_id, f.department AS reader, f.reads AS reads, f.downloads AS downloads FROM \
             (SELECT target, department, COUNT(*) AS reads, \
              SUM(CASE WHEN action = 'data.export' THEN 1 ELSE 0 END) AS downloads \
              FROM audit_log WHERE {} AND at >= $1 AND at < $2 AND outcome = 'success' \
              GROUP BY target, department) f \
             JOIN resources r ON r.code = substr(f.target, 10)",
            read_actions()
        ))
        .bind(from)
        .bind(to);
        self.map(q, "audit_log", |r| {
            Ok(ReadFlow {
                resource_id: r.uuid("resource_id")?,
                reader: r.opt_text("reader")?,
                reads: r.i64("reads")?,
                downloads: r.i64("downloads")?,
            })
        })
        .await
    }

    async fn eval_public_users(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
        let q = sql(&format!(
            "SELECT r.provider AS provider, COUNT(DISTINCT f.actor) AS n FROM \
             (SELECT DISTINCT target, actor FROM audit_log WHERE {} AND at >= $1 AND at < $2 \
              AND outcome = 'success' AND department IS NULL AND actor IS NOT NULL) f \
             JOIN resources r ON r.code = substr(f.target, 10) GROUP BY r.provider",
            read_actions()
        ))
        .bind(from)
        .bind(to);
        self.map(q, "audit_log", |r| Ok((r.text("provider")?, r.i64("n")?))).await
    }

    async fn eval_last_commits(&self, before: DateTime<Utc>) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let q = sql("SELECT resource_id, MAX(finished_at) AS at FROM ingests \
                     WHERE state = 'committed' AND finished_at < $1 GROUP BY resource_id")
        .bind(before);
        self.map(q, "ingests", |r| Ok((r.uuid("resource_id")?, r.time("at")?))).await
    }

    async fn eval_quality_reports(&self, before: DateTime<Utc>) -> Result<Vec<(Uuid, serde_json::Value)>> {
        let q = sql("SELECT q.resource_id, q.report FROM quality_reports q WHERE q.version = \
                     (SELECT MAX(q2.version) FROM quality_reports q2 WHERE q2.resource_id = q.resource_id \
                      AND q2.created_at < $1)")
        .bind(before);
        self.map(q, "quality_reports", |r| Ok((r.uuid("resource_id")?, r.json("report")?))).await
    }

    async fn eval_requests(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<EvalRequest>> {
        let q = sql("SELECT q.id, q.resource_id, r.provider, q.state, q.decided_by, q.decided_at, q.due_at, \
                     q.created_at FROM requests q JOIN resources r ON r.id = q.resource_id \
                     WHERE q.created_at >= $1 AND q.created_at < $2 ORDER BY q.created_at, q.id")
        .bind(from)
        .bind(to);
        self.map(q, "requests", |r| {
            Ok(EvalRequest {
                id: r.uuid("id")?,
                resource_id: r.uuid("resource_id")?,
                provider: r.text("provider")?,
                state: r.text("state")?,
                decided_by: r.opt_text("decided_by")?,
                decided_at: r.opt_time("decided_at")?,
                due_at: r.time("due_at")?,
                created_at: r.time("created_at")?,
            })
        })
        .await
    }

    async fn eval_tickets(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<EvalTicket>> {
        let q = sql("SELECT id, resource_id, department, due_at, created_at, history FROM quality_tickets \
                     WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id")
        .bind(from)
        .bind(to);
        self.map(q, "quality_tickets", |r| {
            Ok(EvalTicket {
                id: r.uuid("id")?,
                resource_id: r.uuid("resource_id")?,
                department: r.text("department")?,
                due_at: r.time("due_at")?,
                created_at: r.time("created_at")?,
                history: r.json("history")?,
            })
        })
        .await
    }

    async fn add_evaluation_rules(&self, r: &RulesRecord) -> Result<()> {
        let q = sql("INSERT INTO evaluation_rules (version, rules, created_by, created_at) VALUES ($1, $2, $3, $4)")
            .bind(r.version)
            .bind(r.rules.to_string())
            .bind(&r.created_by)
            .bind(r.created_at);
        match self.execute(None, q).await {
            Ok(_) => Ok(()),
            Err(e) if unique(&e) => Err(StoreError::Conflict(format!("rules version {} exists", r.version))),
            Err(e) => Err(B::error(e)),
        }
    }

    async fn evaluation_rules(&self, version: Option<i64>) -> Result<Option<RulesRecord>> {
        let q = match version {
            Some(v) => sql("SELECT * FROM evaluation_rules WHERE version = $1").bind(v),
            None => sql("SELECT * FROM evaluation_rules ORDER BY version DESC LIMIT 1"),
        };
        self.map_one(q, "evaluation_rules", rules).await
    }

    async fn period_pin(&self, period: &str) -> Result<Option<PeriodPin>> {
        let q = sql("SELECT * FROM evaluation_periods WHERE period = $1").bind(period);
        self.map_one(q, "evaluation_periods", |r| {
            Ok(PeriodPin {
                period: r.text("period")?,
                rules_version: r.i64("rules_version")?,
                scored_by: r.text("scored_by")?,
                scored_at: r.time("scored_at")?,
            })
        })
        .await
    }

    async fn pin_period(&self, p: &PeriodPin) -> Result<()> {
        let q = sql(
            "INSERT INTO evaluation_periods (period, rules_version, scored_by, scored_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (period) DO UPDATE SET rules_version = excluded.rules_version, \
                     scored_by = excluded.scored_by, scored_at = excluded.scored_at",
        )
        .bind(&p.period)
        .bind(p.rules_version)
        .bind(&p.scored_by)
        .bind(p.scored_at);
        self.run(q).await.map(drop)
    }

    async fn create_application(&self, a: &ApplicationRecord) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        let q = sql("INSERT INTO applications (id, name, department, scenario, url, status, created_by, created_at, \
                     service_account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(a.id)
        .bind(&a.name)
        .bind(&a.department)
        .bind(&a.scenario)
        .bind(&a.url)
        .bind(&a.status)
        .bind(&a.created_by)
        .bind(a.created_at)
        .bind(&a.service_account);
        self.tx_run(&mut tx, q).await?;
        for r in &a.resources {
            let q = sql("INSERT INTO application_resources (application_id, resource_id) VALUES ($1, $2)")
                .bind(a.id)
                .bind(*r);
            self.tx_run(&mut tx, q).await?;
        }
        self.tx_commit(tx).await
    }

    async fn update_application(&self, old: &ApplicationRecord, new: &ApplicationRecord) -> Result<bool> {
        let mut tx = self.tx_begin().await?;
        let q = sql("UPDATE applications SET name = $1, scenario = $2, url = $3, status = $4, service_account = $10 \
                     WHERE id = $5 AND name = $6 AND scenario = $7 AND COALESCE(url, '') = $8 AND status = $9 \
                     AND COALESCE(service_account, '') = $11")
        .bind(&new.name)
        .bind(&new.scenario)
        .bind(&new.url)
        .bind(&new.status)
        .bind(old.id)
        .bind(&old.name)
        .bind(&old.scenario)
        .bind(old.url.clone().unwrap_or_default())
        .bind(&old.status)
        .bind(&new.service_account)
        .bind(old.service_account.clone().unwrap_or_default());
        if self.tx_run(&mut tx, q).await? != 1 {
            return Ok(false);
        }
        self.tx_run(&mut tx, sql("DELETE FROM application_resources WHERE application_id = $1").bind(old.id)).await?;
        for r in &new.resources {
            let q = sql("INSERT INTO application_resources (application_id, resource_id) VALUES ($1, $2)")
                .bind(old.id)
                .bind(*r);
            self.tx_run(&mut tx, q).await?;
        }
        self.tx_commit(tx).await?;
        Ok(true)
    }

    async fn list_applications(&self) -> Result<Vec<ApplicationRecord>> {
        let mut apps =
            self.map(sql("SELECT * FROM applications ORDER BY created_at, id"), "applications", application).await?;
        let links = self
            .map(
                sql("SELECT application_id, resource_id FROM application_resources ORDER BY application_id, resource_id"),
                "application_resources",
                |r| Ok((r.uuid("application_id")?, r.uuid("resource_id")?)),
            )
            .await?;
        let mut by_app: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (a, r) in links {
            by_app.entry(a).or_default().push(r);
        }
        for a in &mut apps {
            a.resources = by_app.remove(&a.id).unwrap_or_default();
        }
        Ok(apps)
    }
}
