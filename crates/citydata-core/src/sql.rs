//! The SQL sandbox: one read-only SELECT for government users over views named by resource
//! code or slug. The session holds only the views the gate allows the caller, already masked
//! and filtered; DDL, DML, COPY and other statements are refused; a time and a row limit apply.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::FieldError;
use citydata_domain::audit::Outcome;
use citydata_domain::filter::Filter;
use citydata_domain::policy::Action;
use citydata_domain::principal::Principal;
use citydata_lake::governed::GovernedRead;
use datafusion::config::Dialect;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The most rows a statement returns.
pub const MAX_ROWS: usize = 10_000;
/// How long a statement may run.
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Value>,
    /// More rows matched than `MAX_ROWS`.
    pub truncated: bool,
    /// The resources the statement read.
    pub tables: Vec<String>,
}

fn sql_error(e: impl std::fmt::Display) -> CoreError {
    let msg = e.to_string().replace("file://", "");
    CoreError::Input {
        code: "sql_error",
        message: format!("SQL 无法执行 / the statement cannot run: {msg}"),
        line: None,
        column: None,
    }
}

impl Core {
    pub async fn run_sql(&self, meta: &RequestMeta, principal: &Principal, sql: &str) -> Result<SqlResult, CoreError> {
        let result = self.run_sql_inner(principal, sql).await;
        let (outcome, details) = match &result {
            Ok(r) => (
                Outcome::Success,
                serde_json::json!({"sql": sql.chars().take(2000).collect::<String>(), "tables": r.tables, "rows": r.rows.len(), "truncated": r.truncated}),
            ),
            Err(CoreError::Denied(d)) => (
                Outcome::Denied,
                serde_json::json!({"sql": sql.chars().take(2000).collect::<String>(), "decision": d.code()}),
            ),
            Err(e) => (
                Outcome::Failure,
                serde_json::json!({"sql": sql.chars().take(2000).collect::<String>(), "error": e.code()}),
            ),
        };
        self.record(meta, Actor::Principal(principal), "data.sql", None, outcome, details).await?;
        result
    }

    async fn run_sql_inner(&self, principal: &Principal, sql: &str) -> Result<SqlResult, CoreError> {
        if principal.memberships.is_empty() {
            return Err(CoreError::Denied(citydata_domain::policy::DenyReason::ActionNotAllowed));
        }
        if sql.trim().is_empty() || sql.len() > 20_000 {
            return Err(FieldError::new(
                "sql",
                "invalid_sql",
                "sql 须为 1–20000 个字符的一条 SELECT / sql must be one SELECT of 1–20000 characters",
            )
            .into());
        }
        let ctx = SessionContext::new();
        let state = ctx.state();
        let stmt = state.sql_to_statement(sql, &Dialect::Generic).map_err(sql_error)?;
        let refs = state.resolve_table_references(&stmt).map_err(sql_error)?;
        let mut tables = Vec::new();
        for r in refs {
            let name = r.table().to_string();
            let resource = self
                .get_resource(Some(principal), &name)
                .await
                .map_err(|_| CoreError::NotFound(format!("没有名为“{name}”的资源视图（用信息资源代码或 slug，代码需加双引号）/ no view named \"{name}\" (use a resource code in double quotes, or a slug)")))?;
            let allow = self.allow(Some(principal), &resource, Action::Sql).await?;
            let filters: Vec<&Filter> = allow.row_filter.iter().collect();
            let read = GovernedRead {
                fields: allow.fields.clone(),
                masks: &allow.masks,
                filters,
                sort: vec![],
                offset: 0,
                limit: None,
                version: None,
                secret: &self.config.pseudonym_key,
                contains: None,
            };
            match self.lake()?.governed_view(resource.id, &read).await? {
                Some(view) => {
                    ctx.register_table(r.clone(), view).map_err(sql_error)?;
                }
                None => return Err(CoreError::NotFound(format!("资源“{name}”还没有数据 / {name} has no data yet"))),
            }
            tables.push(resource.content.code.to_string());
        }
        let plan = state.statement_to_plan(stmt).await.map_err(sql_error)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|_| CoreError::Input {
            code: "sql_not_allowed",
            message: "只允许一条只读的 SELECT 语句 / only one read-only SELECT is allowed".into(),
            line: None,
            column: None,
        })?;
        let df =
            ctx.execute_logical_plan(plan).await.map_err(sql_error)?.limit(0, Some(MAX_ROWS + 1)).map_err(sql_error)?;
        let columns: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let batches = tokio::time::timeout(TIMEOUT, df.collect())
            .await
            .map_err(|_| CoreError::Input {
                code: "sql_timeout",
                message: format!(
                    "SQL 运行超过 {} 秒 / the statement ran longer than {} s",
                    TIMEOUT.as_secs(),
                    TIMEOUT.as_secs()
                ),
                line: None,
                column: None,
            })?
            .map_err(sql_error)?;
        let mut rows = crate::reads::json_rows(&batches)?;
        let truncated = rows.len() > MAX_ROWS;
        rows.truncate(MAX_ROWS);
        Ok(SqlResult { columns, rows, truncated, tables })
    }
}
