//! The SQL sandbox: one read-only SELECT for government users over views named by resource
//! code or slug. The session holds only the views the gate allows the caller, already masked
//! and filtered; DDL, DML, COPY and other statements are refused; a time and a row limit apply.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::FieldError;
use citydata_domain::audit::Outcome;
use citydata_domain::policy::Action;
use citydata_domain::principal::Principal;
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
/// The longest statement accepted (and audited whole).
pub const MAX_SQL_CHARS: usize = 20_000;

/// One running statement of a user, holding one of the user's `sql_concurrency` slots in the
/// store's `rate_counters` — shared by every node, so N nodes on one database allow the limit
/// once, not N times (issue #20). Dropping it gives the slot back; a node that dies holding one
/// leaves it to lapse at the end of its lease ([`SLOT_LEASE`]).
struct Slot {
    store: std::sync::Arc<dyn citydata_store::Store>,
    scope: String,
    slot: i64,
    until: String,
}

/// How long a slot is held at most: the statement's [`TIMEOUT`] plus its planning.
const SLOT_LEASE: Duration = Duration::from_secs(60);

fn micros(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Slot {
    async fn take(core: &Core, user: uuid::Uuid) -> Result<Slot, CoreError> {
        let now = chrono::Utc::now();
        let until = micros(now + chrono::Duration::from_std(SLOT_LEASE).unwrap_or_default());
        let scope = format!("sql:{user}");
        let slots = i64::try_from(core.config.sql_concurrency.max(1)).unwrap_or(i64::MAX);
        match core.store.take_slot(&scope, slots, &micros(now), &until).await? {
            Some(slot) => Ok(Slot { store: core.store.clone(), scope, slot, until }),
            None => Err(CoreError::RateLimited { retry_after_secs: 1 }),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (store, scope, slot, until) =
            (self.store.clone(), std::mem::take(&mut self.scope), self.slot, std::mem::take(&mut self.until));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.give_slot(&scope, slot, &until).await {
                    tracing::warn!(error = %e, "giving back an SQL slot failed; it lapses with its lease");
                }
            });
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Value>,
    /// More rows matched than `row_limit`: only the first `row_limit` are here.
    pub truncated: bool,
    /// The most rows a statement returns ([`MAX_ROWS`]); use `LIMIT`/`OFFSET` or an export
    /// for more.
    pub row_limit: usize,
    /// The resources the statement read.
    pub tables: Vec<String>,
}

/// An execution error: a storage failure of a view's table (a missing or damaged data file,
/// full or unreachable storage) names the resource (the one whose table id the engine's text
/// mentions, else every table of the statement) and never the engine's text; anything else
/// is the statement's problem (`sql_error`).
fn storage_error(e: datafusion::error::DataFusionError, labels: &[(uuid::Uuid, String)]) -> CoreError {
    let text = e.to_string();
    let e = citydata_lake::LakeError::DataFusion(e);
    let named: Vec<&str> =
        labels.iter().filter(|(id, _)| text.contains(&id.to_string())).map(|(_, l)| l.as_str()).collect();
    // "not found" alone could be the statement's (a function); a storage failure names a file
    // of a table, the object store, Parquet or IO.
    let lower = text.to_lowercase();
    let about_storage = !named.is_empty()
        || ["object store", "object at location", "parquet", "io error", "no space"].iter().any(|k| lower.contains(k));
    if e.storage_kind().is_none() || !about_storage {
        return sql_error(text);
    }
    let named = if named.is_empty() { labels.iter().map(|(_, l)| l.as_str()).collect() } else { named };
    CoreError::from(e).for_resource(&named.join("、"))
}

fn sql_error(e: impl std::fmt::Display) -> CoreError {
    let msg = e.to_string().replace("file://", "");
    if msg.contains("Resources exhausted") || msg.contains("ResourcesExhausted") {
        return CoreError::Input {
            code: "sql_memory_exceeded",
            message: "SQL 所需内存超过上限，请缩小查询范围（加过滤条件、减少分组或排序的行数）/ the statement needs more memory than allowed: narrow it".into(),
            line: None,
            column: None,
        };
    }
    CoreError::Input {
        code: "sql_error",
        message: format!("SQL 无法执行 / the statement cannot run: {msg}"),
        line: None,
        column: None,
    }
}

/// Deepest parenthesis nesting a statement may have.
pub const MAX_SQL_DEPTH: usize = 64;
/// Most operators a statement may have (a long `a + a + …` chain plans as a tree as deep as
/// it is long).
pub const MAX_SQL_OPERATORS: usize = 1_000;

/// Refuse statements whose expression trees would be too deep to plan safely, before the
/// parser and planner recurse into them (the tokenizer is iterative).
fn check_complexity(sql: &str) -> Result<(), CoreError> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().map_err(sql_error)?;
    let (mut depth, mut deepest, mut operators) = (0usize, 0usize, 0usize);
    for t in &tokens {
        match t {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret => operators += 1,
            Token::Word(w)
                if matches!(w.value.to_ascii_uppercase().as_str(), "AND" | "OR" | "NOT" | "CASE" | "WHEN") =>
            {
                operators += 1
            }
            _ => {}
        }
    }
    if deepest > MAX_SQL_DEPTH || operators > MAX_SQL_OPERATORS {
        return Err(CoreError::Input {
            code: "sql_too_complex",
            message: format!(
                "SQL 嵌套过深或运算符过多（括号最多 {MAX_SQL_DEPTH} 层、运算符最多 {MAX_SQL_OPERATORS} 个）/ the statement nests too deep or has too many operators (at most {MAX_SQL_DEPTH} levels, {MAX_SQL_OPERATORS} operators)"
            ),
            line: None,
            column: None,
        });
    }
    Ok(())
}

impl Core {
    pub async fn run_sql(&self, meta: &RequestMeta, principal: &Principal, sql: &str) -> Result<SqlResult, CoreError> {
        let result = self.run_sql_inner(principal, sql).await;
        let (outcome, details) = match &result {
            Ok(r) => (
                Outcome::Success,
                serde_json::json!({"sql": sql.chars().take(MAX_SQL_CHARS).collect::<String>(), "tables": r.tables, "rows": r.rows.len(), "truncated": r.truncated}),
            ),
            Err(CoreError::Denied(d)) => (
                Outcome::Denied,
                serde_json::json!({"sql": sql.chars().take(MAX_SQL_CHARS).collect::<String>(), "decision": d.code()}),
            ),
            Err(e) => (
                Outcome::Failure,
                serde_json::json!({"sql": sql.chars().take(MAX_SQL_CHARS).collect::<String>(), "error": e.code()}),
            ),
        };
        self.record(meta, Actor::Principal(principal), "data.sql", None, outcome, details).await?;
        result
    }

    async fn run_sql_inner(&self, principal: &Principal, sql: &str) -> Result<SqlResult, CoreError> {
        if principal.memberships.is_empty() {
            return Err(CoreError::Denied(citydata_domain::policy::DenyReason::ActionNotAllowed));
        }
        if sql.trim().is_empty() || sql.chars().count() > MAX_SQL_CHARS {
            return Err(FieldError::new(
                "sql",
                "invalid_sql",
                "sql 须为 1–20000 个字符的一条 SELECT / sql must be one SELECT of 1–20000 characters",
            )
            .into());
        }
        check_complexity(sql)?;
        // At most `sql_concurrency` statements per user at a time, on all nodes together.
        let _slot = Slot::take(self, principal.user_id).await?;
        // Every operator of the statement draws on one memory pool; past it the statement
        // fails with `sql_memory_exceeded` instead of taking the server's memory.
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(std::sync::Arc::new(datafusion::execution::memory_pool::GreedyMemoryPool::new(
                self.config.sql_memory_limit.max(1 << 20),
            )))
            .build_arc()
            .map_err(sql_error)?;
        // Times in the platform's zone (`now()`, naive literals against the views' local
        // timestamps); `1.5` is an exact decimal, not a float.
        let mut config = datafusion::prelude::SessionConfig::new();
        config.options_mut().execution.time_zone = Some(citydata_domain::cast::local_zone_name());
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let state = ctx.state();
        let stmt = state.sql_to_statement(sql, &Dialect::Generic).map_err(sql_error)?;
        let refs = state.resolve_table_references(&stmt).map_err(sql_error)?;
        let mut tables = Vec::new();
        let mut labels = Vec::new();
        for r in refs {
            let name = r.table().to_string();
            let resource = self
                .get_resource(Some(principal), &name)
                .await
                .map_err(|_| CoreError::NotFound(format!("没有名为“{name}”的资源视图（用信息资源代码或 slug，代码需加双引号）/ no view named \"{name}\" (use a resource code in double quotes, or a slug)")))?;
            let allow = self.allow(Some(principal), &resource, Action::Sql).await?;
            let g = self.gated(resource, allow).await?;
            let req = crate::gate::Requested { fields: g.allow.fields.clone(), caller_filter: None, sort: vec![] };
            let read = g.plan(&req, &self.config.pseudonym_key, None);
            let resource = &g.resource;
            match self.lake()?.governed_view(resource.id, &read).await? {
                Some(view) => {
                    ctx.register_table(r.clone(), view).map_err(sql_error)?;
                }
                None => return Err(CoreError::NotFound(format!("资源“{name}”还没有数据 / {name} has no data yet"))),
            }
            tables.push(resource.content.code.to_string());
            labels.push((resource.id, crate::error::table_label(resource)));
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
            .map_err(|e| storage_error(e, &labels))?;
        let mut rows = crate::reads::json_rows(&batches)?;
        let truncated = rows.len() > MAX_ROWS;
        rows.truncate(MAX_ROWS);
        Ok(SqlResult { columns, rows, truncated, row_limit: MAX_ROWS, tables })
    }
}
