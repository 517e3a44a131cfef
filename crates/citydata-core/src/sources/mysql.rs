//! 前置机 pull from MySQL or MariaDB, the same run as [`pg`](super::pg): one read-only
//! consistent-snapshot transaction; first the window above the stored watermark (count, the
//! highest watermark, the soft-deleted count), then its rows as JSON objects
//! (`JSON_OBJECT` over the columns the query returns, so each column arrives as its JSON form:
//! numbers as numbers, dates and times as text) streamed into [`Core::ingest_data`] as NDJSON
//! — mapping by name or title, casts, validators, quality rules, quarantine, one Delta commit.
//! Soft-deleted rows go into a second ingest in `delete` mode. The watermark moves only after
//! the commits succeeded.

use super::pg::{add_report, base_select, until_abort, window_report};
use super::runner::{AbortSignal, PullFailure, PullOutcome};
use super::{Secrets, Spec};
use crate::ingest::IngestParams;
use crate::{Core, RequestMeta};
use citydata_store::SourceRecord;
use futures::StreamExt;
use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::{Connection, Executor, Row};
use std::str::FromStr;
use std::sync::Arc;

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
const DEFAULT_PORT: u16 = 3306;

/// `a`.`b` with backticks doubled inside.
fn quote_ident(id: &str) -> String {
    id.split('.').map(|p| format!("`{}`", p.replace('`', "``"))).collect::<Vec<_>>().join(".")
}

/// A string literal under MySQL's default escaping (backslash is an escape character).
fn quote_literal(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

fn server_error(e: &sqlx::Error) -> Option<(u16, &str)> {
    match e {
        sqlx::Error::Database(d) => d.try_downcast_ref::<MySqlDatabaseError>().map(|m| (m.number(), m.message())),
        _ => None,
    }
}

/// Why a connection failed, without echoing the server's words.
fn connect_reason(e: &sqlx::Error) -> String {
    match server_error(e) {
        Some((1045 | 1698, _)) => "数据库拒绝了用户名或密码 / the database refused the user name or password".into(),
        Some((1049, _)) => "数据库不存在 / the database does not exist".into(),
        Some((n, _)) => format!("连接数据库失败（{n}） / connecting to the database failed ({n})"),
        None => "无法连接数据库（连接被拒绝或不可达） / cannot connect to the database (refused or unreachable)".into(),
    }
}

/// A failed statement of the source's own query: the server's message names the column or
/// table (the connection is authenticated, so it tells the steward nothing new).
fn query_reason(e: &sqlx::Error) -> String {
    match server_error(e) {
        Some((_, m)) => format!("源查询失败：{m} / the source query failed: {m}"),
        None => "读取源数据时连接中断 / the connection broke while reading the source".into(),
    }
}

/// A statement without rows (text protocol: transaction control is not prepared).
fn run_statement<'c>(conn: &'c mut MySqlConnection, stmt: &'static str) -> BoxFuture<'c, Result<(), String>> {
    Box::pin(async move { conn.execute(stmt).await.map(drop).map_err(|e| query_reason(&e)) })
}

fn fetch_one<'c>(conn: &'c mut MySqlConnection, sql: &'c str) -> BoxFuture<'c, Result<MySqlRow, String>> {
    Box::pin(async move { sqlx::query(sql).fetch_one(conn).await.map_err(|e| query_reason(&e)) })
}

/// The names of the columns `sql` returns.
fn columns_of(conn: &mut MySqlConnection, sql: String) -> BoxFuture<'_, Result<Vec<String>, String>> {
    Box::pin(async move {
        let d = conn.describe(sql.as_str()).await.map_err(|e| query_reason(&e))?;
        Ok(d.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect())
    })
}

/// Every row of `sql` (`n` text columns) as a key, a null as "".
fn key_set<'c>(
    conn: &'c mut MySqlConnection,
    sql: &'c str,
    n: usize,
) -> BoxFuture<'c, Result<std::collections::HashSet<Vec<String>>, String>> {
    Box::pin(async move {
        let mut out = std::collections::HashSet::new();
        let mut rows = sqlx::query(sql).fetch(conn);
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| query_reason(&e))?;
            let k: Vec<String> =
                (0..n).map(|i| row.try_get::<Option<String>, _>(i).ok().flatten().unwrap_or_default()).collect();
            out.insert(k);
        }
        Ok(out)
    })
}

/// The rows of `sql` (one JSON text column `j`), or why reading them failed.
fn json_rows<'c>(
    conn: &'c mut MySqlConnection,
    sql: &'c str,
) -> futures::stream::BoxStream<'c, Result<String, String>> {
    sqlx::query(sql)
        .fetch(conn)
        .map(|r| r.and_then(|row| row.try_get::<String, _>("j")).map_err(|e| query_reason(&e)))
        .boxed()
}

impl Core {
    async fn mysql_connect(&self, spec: &Spec, secrets: &Secrets) -> Result<MySqlConnection, String> {
        let mut checked = spec.clone();
        if checked.url.is_none() {
            checked.port = Some(spec.port.unwrap_or(DEFAULT_PORT));
        }
        let addr = self.source_address_allowed(&checked).await?;
        let mut opts = match &spec.url {
            // `mariadb://` is the same protocol.
            Some(u) => MySqlConnectOptions::from_str(&u.replacen("mariadb://", "mysql://", 1))
                .map_err(|_| "connection.url 无效 / connection.url is not valid".to_string())?,
            None => {
                let mut o = MySqlConnectOptions::new();
                if let Some(d) = &spec.database {
                    o = o.database(d);
                }
                if let Some(u) = &spec.user {
                    o = o.username(u);
                }
                o
            }
        };
        if let Some((ip, port)) = addr {
            // The checked address itself, so that a second lookup cannot answer another one.
            opts = opts.host(&ip.to_string()).port(port);
        }
        if let Some(p) = &secrets.password {
            opts = opts.password(p);
        }
        opts = opts.charset("utf8mb4");
        match tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&opts)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(connect_reason(&e)),
            Err(_) => Err("连接数据库超时 / connecting to the database timed out".into()),
        }
    }

    pub(crate) async fn pull_mysql(
        &self,
        s: &SourceRecord,
        spec: &Spec,
        secrets: &Secrets,
        abort: &Arc<AbortSignal>,
    ) -> Result<PullOutcome, PullFailure> {
        let (resource, principal) = self.run_context(s).await?;
        let mut conn = until_abort(abort, self.mysql_connect(spec, secrets)).await?;
        for stmt in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        ] {
            run_statement(&mut conn, stmt).await?;
        }
        let base = base_select(spec, quote_ident)?;
        let wm = spec.watermark.as_deref().map(quote_ident);
        let del = spec.deleted.as_deref().map(quote_ident);
        let mut cond = String::from("TRUE");
        if let (Some(w), Some(lo)) = (&wm, &s.watermark) {
            cond = format!("t.{w} > {}", quote_literal(lo));
        }
        // 1. The window.
        let deleted_expr = del.as_ref().map(|d| format!("(t.{d} IS TRUE)")).unwrap_or_else(|| "FALSE".into());
        let hi_expr = wm.as_ref().map(|w| format!("CAST(MAX(t.{w}) AS CHAR)")).unwrap_or_else(|| "NULL".into());
        let stats_sql = format!(
            "SELECT COUNT(*) AS n, {hi_expr} AS hi, CAST(COALESCE(SUM(CASE WHEN {deleted_expr} THEN 1 ELSE 0 END), 0) AS SIGNED) AS nd \
             FROM ({base}) t WHERE {cond}"
        );
        let row = until_abort(abort, fetch_one(&mut conn, &stats_sql)).await?;
        let n: i64 = row.try_get("n").unwrap_or(0);
        let nd: i64 = row.try_get("nd").unwrap_or(0);
        let hi: Option<String> = row.try_get("hi").unwrap_or(None);
        if let (Some(w), Some(h)) = (&wm, &hi) {
            cond = format!("{cond} AND t.{w} <= {}", quote_literal(h));
        }
        // The query's columns; those that only steer the pull are not sent when no item is
        // named after them.
        let columns = until_abort(abort, columns_of(&mut conn, format!("SELECT * FROM ({base}) t LIMIT 0"))).await?;
        let is_item = |c: &str| resource.content.items.iter().any(|i| i.name.to_string() == c || i.title == c);
        let steering = [spec.watermark.as_deref(), spec.deleted.as_deref()];
        let all_columns = columns.clone();
        let pairs: Vec<String> = columns
            .into_iter()
            .filter(|c| is_item(c) || !steering.contains(&Some(c.as_str())))
            .map(|c| format!("{}, t.{}", quote_literal(&c), quote_ident(&c)))
            .collect();
        let json_expr = format!("CAST(JSON_OBJECT({}) AS CHAR)", pairs.join(", "));
        let mut report = window_report(s, hi.as_deref(), n);
        let meta = RequestMeta::new(Some(format!("source-{}", s.id)), None);
        let key = resource.id.to_string();
        // 2. Rows to write (upsert or replace), then soft deletes.
        for (wanted, mode, counted) in [(n - nd, spec.mode.as_str(), "rows_committed"), (nd, "delete", "rows_deleted")]
        {
            if wanted <= 0 || (mode == "delete" && spec.mode != "upsert") {
                continue;
            }
            let which = if mode == "delete" { deleted_expr.clone() } else { format!("NOT {deleted_expr}") };
            let sql = format!("SELECT {json_expr} AS j FROM ({base}) t WHERE {cond} AND {which}");
            let params = IngestParams {
                mode: Some(mode.to_string()),
                format: Some("ndjson".into()),
                ignore_extra: mode == "delete",
                ..IngestParams::default()
            };
            let rows = json_rows(&mut conn, &sql);
            let r = self.feed_ingest(rows, &meta, &principal, &key, params, abort).await;
            add_report(&mut report, r, counted)?;
        }
        // 3. Hard deletes: every key of the source (same snapshot) against the table's.
        if spec.compare_keys {
            let keys = super::keys::key_columns(&resource, &all_columns)?;
            let list: Vec<String> = keys.iter().map(|(_, c)| format!("CAST(t.{} AS CHAR)", quote_ident(c))).collect();
            let sql = format!("SELECT {} FROM ({base}) t WHERE NOT {deleted_expr}", list.join(", "));
            let source = until_abort(abort, key_set(&mut conn, &sql, keys.len())).await?;
            let r = self.delete_missing_keys(&meta, &principal, &resource, &keys, source, abort).await;
            match r {
                Ok(Some(r)) => {
                    add_report(&mut report, Ok(r), "rows_deleted")?;
                    report["unchanged"] = false.into();
                }
                Ok(None) => {}
                Err(reason) => return Err(PullFailure { reason, report: Some(report) }),
            }
        }
        let _ = conn.close().await;
        Ok(PullOutcome { report, watermark: hi })
    }
}
