//! 前置机 pull from PostgreSQL. One read-only, repeatable-read transaction per run: first the
//! window (`count`, the highest watermark `hi`, the soft-deleted count) above the stored
//! watermark, then the rows of that window as JSON objects (`to_jsonb(row)`, so every column
//! type arrives as its JSON form) streamed in chunks into [`Core::ingest_data`] as NDJSON —
//! the upload path: mapping by name or title, casts, validators, quality rules, quarantine,
//! one Delta commit. Rows flagged by the soft-delete column go into a second ingest in
//! `delete` mode. The watermark moves to `hi` only after the commits succeeded; a run killed
//! before reads the same window again (upserts by key are idempotent).

use super::runner::{AbortSignal, PullFailure, PullOutcome};
use super::{Secrets, Spec};
use crate::ingest::{IngestBody, IngestParams};
use crate::{Core, CoreError, RequestMeta};
use citydata_store::SourceRecord;
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// Rows per chunk handed to the ingest reader.
const CHUNK_BYTES: usize = 256 * 1024;
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

fn quote_ident(id: &str) -> String {
    id.split('.').map(|p| format!("\"{}\"", p.replace('"', "\"\""))).collect::<Vec<_>>().join(".")
}

fn quote_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Why a connection failed, in words that help the steward without echoing the server.
fn connect_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01" | "28000") => {
                "数据库拒绝了用户名或密码 / the database refused the user name or password".into()
            }
            Some("3D000") => "数据库不存在 / the database does not exist".into(),
            Some(c) => format!("连接数据库失败（{c}） / connecting to the database failed ({c})"),
            None => "连接数据库失败 / connecting to the database failed".into(),
        },
        _ => "无法连接数据库（连接被拒绝或不可达） / cannot connect to the database (refused or unreachable)".into(),
    }
}

/// A failed statement of the source's own query: the database's message names the column or
/// relation (the connection is authenticated, so this tells the steward nothing new).
fn query_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => format!("源查询失败：{} / the source query failed: {}", d.message(), d.message()),
        _ => "读取源数据时连接中断 / the connection broke while reading the source".into(),
    }
}

/// The NDJSON stream the ingest reads: chunks sent by the feeding task, an error to end it.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Core {
    /// Hosts a source may reach: the outgoing-webhook rule (no loopback, link-local, private
    /// or metadata addresses unless inside `webhook_allow_cidrs`). Every address the name
    /// resolves to must pass; the first is returned for the connection (no second lookup).
    pub(crate) async fn source_address_allowed(&self, spec: &Spec) -> Result<Option<(IpAddr, u16)>, String> {
        let (host, port) = match &spec.url {
            Some(u) => match url::Url::parse(u) {
                Ok(u) => {
                    let default = if matches!(u.scheme(), "mysql" | "mariadb") { 3306 } else { 5432 };
                    (
                        u.host_str().unwrap_or("").trim_matches(['[', ']']).to_string(),
                        u.port_or_known_default().unwrap_or(default),
                    )
                }
                Err(_) => return Err("connection.url 无效 / connection.url is not valid".into()),
            },
            None => match &spec.host {
                Some(h) => (h.clone(), spec.port.unwrap_or(5432)),
                None => return Ok(None),
            },
        };
        let addrs = crate::net::resolve_allowed(&host, port, &self.config.webhook_allow).await?;
        Ok(Some((addrs[0], port)))
    }

    async fn pg_connect(&self, spec: &Spec, secrets: &Secrets) -> Result<PgConnection, String> {
        let addr = self.source_address_allowed(spec).await?;
        let mut opts = match &spec.url {
            Some(u) => PgConnectOptions::from_str(u)
                .map_err(|_| "connection.url 无效 / connection.url is not valid".to_string())?,
            None => {
                let mut o = PgConnectOptions::new_without_pgpass();
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
        opts = opts.application_name("citydata-source");
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(connect_reason(&e)),
            Err(_) => Err("连接数据库超时 / connecting to the database timed out".into()),
        }
    }

    /// The target resource and the principal a run acts as (the source's creator, who must
    /// still steward the provider department).
    pub(crate) async fn run_context(
        &self,
        s: &SourceRecord,
    ) -> Result<(citydata_domain::resource::Resource, citydata_domain::principal::Principal), String> {
        let resource_id =
            s.resource_id.ok_or_else(|| "来源没有目标资源 / the source has no target resource".to_string())?;
        let resource = self
            .store
            .get_resource(resource_id)
            .await
            .map_err(|e| CoreError::from(e).client_message())?
            .ok_or_else(|| "目标资源已删除 / the target resource was removed".to_string())?;
        let principal = self.cli_principal(&s.created_by).await.map_err(|_| {
            format!("来源的创建者 {} 已不存在 / the source's owner {} no longer exists", s.created_by, s.created_by)
        })?;
        if !principal.can_steward(&resource.content.provider) {
            return Err(format!(
                "来源的创建者 {} 已不再管理提供部门的数据 / the source's owner {} no longer stewards the provider's data",
                s.created_by, s.created_by
            ));
        }
        Ok((resource, principal))
    }

    pub(crate) async fn pull_postgres(
        &self,
        s: &SourceRecord,
        spec: &Spec,
        secrets: &Secrets,
        abort: &Arc<AbortSignal>,
    ) -> Result<PullOutcome, PullFailure> {
        let (resource, principal) = self.run_context(s).await?;
        let mut conn = until_abort(abort, self.pg_connect(spec, secrets)).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(|e| query_reason(&e))?;
        let base = base_select(spec, quote_ident)?;
        let wm = spec.watermark.as_deref().map(quote_ident);
        let del = spec.deleted.as_deref().map(quote_ident);
        let mut cond = String::from("TRUE");
        if let (Some(w), Some(lo)) = (&wm, &s.watermark) {
            cond = format!("t.{w} > {}", quote_literal(lo));
        }
        // 1. The window.
        let deleted_expr = del.as_ref().map(|d| format!("t.{d} IS TRUE")).unwrap_or_else(|| "FALSE".into());
        let hi_expr = wm.as_ref().map(|w| format!("max(t.{w})::text")).unwrap_or_else(|| "NULL::text".into());
        let stats_sql = format!(
            "SELECT count(*) AS n, {hi_expr} AS hi, count(*) FILTER (WHERE {deleted_expr}) AS nd FROM ({base}) t WHERE {cond}"
        );
        let row = until_abort(abort, async {
            sqlx::query(&stats_sql).fetch_one(&mut conn).await.map_err(|e| query_reason(&e))
        })
        .await?;
        let n: i64 = row.try_get("n").unwrap_or(0);
        let nd: i64 = row.try_get("nd").unwrap_or(0);
        let hi: Option<String> = row.try_get("hi").unwrap_or(None);
        if let (Some(w), Some(h)) = (&wm, &hi) {
            cond = format!("{cond} AND t.{w} <= {}", quote_literal(h));
        }
        // Columns that only steer the pull are not sent when no item is named after them.
        let is_item = |c: &str| resource.content.items.iter().any(|i| i.name.to_string() == c || i.title == c);
        let drop: Vec<String> = [spec.watermark.as_deref(), spec.deleted.as_deref()]
            .into_iter()
            .flatten()
            .filter(|c| !is_item(c))
            .map(quote_literal)
            .collect();
        let json_expr = if drop.is_empty() {
            "to_jsonb(t)::text".to_string()
        } else {
            format!("(to_jsonb(t) - ARRAY[{}]::text[])::text", drop.join(", "))
        };
        let mut report = window_report(s, hi.as_deref(), n);
        let meta = RequestMeta::new(Some(format!("source-{}", s.id)), None);
        let key = resource.id.to_string();
        // 2. Rows to write (upsert or replace), then soft deletes.
        if n - nd > 0 {
            let sql = format!("SELECT {json_expr} AS j FROM ({base}) t WHERE {cond} AND NOT ({deleted_expr})");
            let params = IngestParams {
                mode: Some(spec.mode.clone()),
                format: Some("ndjson".into()),
                ..IngestParams::default()
            };
            let r = self.feed_ingest(json_rows(&mut conn, &sql), &meta, &principal, &key, params, abort).await;
            add_report(&mut report, r, "rows_committed")?;
        }
        if nd > 0 && spec.mode == "upsert" {
            let sql = format!("SELECT {json_expr} AS j FROM ({base}) t WHERE {cond} AND {deleted_expr}");
            let params = IngestParams {
                mode: Some("delete".into()),
                format: Some("ndjson".into()),
                ignore_extra: true,
                ..IngestParams::default()
            };
            let r = self.feed_ingest(json_rows(&mut conn, &sql), &meta, &principal, &key, params, abort).await;
            add_report(&mut report, r, "rows_deleted")?;
        }
        // 3. Hard deletes: every key of the source (same snapshot) against the table's.
        if spec.compare_keys {
            let columns =
                until_abort(abort, columns_of(&mut conn, format!("SELECT * FROM ({base}) t LIMIT 0"))).await?;
            let keys = super::keys::key_columns(&resource, &columns)?;
            let list: Vec<String> = keys.iter().map(|(_, c)| format!("t.{}::text", quote_ident(c))).collect();
            let sql = format!("SELECT {} FROM ({base}) t WHERE NOT ({deleted_expr})", list.join(", "));
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

    /// Stream rows (each one JSON object as text) into one ingest.
    pub(crate) async fn feed_ingest(
        &self,
        mut rows: impl futures::Stream<Item = Result<String, String>> + Send + Unpin,
        meta: &RequestMeta,
        principal: &citydata_domain::principal::Principal,
        key: &str,
        params: IngestParams,
        abort: &Arc<AbortSignal>,
    ) -> Result<serde_json::Value, String> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        let reader = ChannelReader { rx, buf: Vec::new(), pos: 0 };
        let feed = async move {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
            let mut failure: Option<String> = None;
            loop {
                let next = tokio::select! {
                    _ = abort.wait() => {
                        failure = Some("已中止 / aborted".into());
                        break;
                    }
                    next = rows.next() => next,
                };
                match next {
                    Some(Ok(j)) => {
                        chunk.extend_from_slice(j.as_bytes());
                        chunk.push(b'\n');
                        if chunk.len() >= CHUNK_BYTES && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                            break; // the ingest stopped reading (it failed)
                        }
                    }
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            match &failure {
                // An error ends the stream, so the ingest fails before its commit.
                Some(f) => {
                    let _ = tx.send(Err(std::io::Error::other(f.clone()))).await;
                }
                None if !chunk.is_empty() => {
                    let _ = tx.send(Ok(chunk)).await;
                }
                None => {}
            }
            drop(tx);
            failure
        };
        let ingest = self.ingest_data(meta, principal, key, &params, IngestBody::Stream(Box::new(reader)), None);
        let (failure, ingested) = tokio::join!(feed, ingest);
        if let Some(f) = failure {
            return Err(f);
        }
        ingest_result(ingested)
    }
}

/// The names of the columns `sql` returns.
fn columns_of(conn: &mut PgConnection, sql: String) -> futures::future::BoxFuture<'_, Result<Vec<String>, String>> {
    Box::pin(async move {
        let d = sqlx::Executor::describe(&mut *conn, sql.as_str()).await.map_err(|e| query_reason(&e))?;
        Ok(d.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect())
    })
}

/// Every row of `sql` (`n` text columns) as a key, a null as "".
fn key_set<'c>(
    conn: &'c mut PgConnection,
    sql: &'c str,
    n: usize,
) -> futures::future::BoxFuture<'c, Result<std::collections::HashSet<Vec<String>>, String>> {
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
fn json_rows<'c>(conn: &'c mut PgConnection, sql: &'c str) -> futures::stream::BoxStream<'c, Result<String, String>> {
    sqlx::query(sql)
        .fetch(conn)
        .map(|r| r.and_then(|row| row.try_get::<String, _>("j")).map_err(|e| query_reason(&e)))
        .boxed()
}

/// One ingest's report, or why it failed (a batch refused by validation is a failure).
pub(crate) fn ingest_result(
    ingested: Result<(citydata_store::IngestRecord, bool), CoreError>,
) -> Result<serde_json::Value, String> {
    match ingested {
        Ok((record, _)) => {
            let mut r = record.report.unwrap_or_default();
            if let serde_json::Value::Object(o) = &mut r {
                o.insert("ingest_id".into(), record.id.to_string().into());
            }
            if r["rejected"] == true {
                return Err("数据校验未通过，整批被拒绝 / the rows failed validation and the batch was refused".into());
            }
            Ok(r)
        }
        Err(e) => Err(format!("写入失败：{} / writing failed: {}", e.client_message(), e.code())),
    }
}

/// The source's rows as a query: its table (quoted by the database's rule) or its query.
pub(crate) fn base_select(spec: &Spec, quote_ident: fn(&str) -> String) -> Result<String, String> {
    match (&spec.table, &spec.query) {
        (Some(t), _) => Ok(format!("SELECT * FROM {}", quote_ident(t))),
        (None, Some(q)) => Ok(format!("SELECT * FROM ({q}) q")),
        (None, None) => Err("来源没有 query 或 table / the source has no query or table".into()),
    }
}

/// A database run's report before anything is written: `n` rows in the window, the
/// watermark it moves from and to.
pub(crate) fn window_report(s: &SourceRecord, hi: Option<&str>, n: i64) -> serde_json::Value {
    serde_json::json!({
        "rows_read": 0, "rows_committed": 0, "rows_quarantined": 0, "rows_deleted": 0,
        "table_version": null, "ingest_ids": [], "watermark_from": s.watermark,
        "watermark": hi.map(str::to_string).or(s.watermark.clone()), "unchanged": n == 0,
    })
}

/// `fut`, or "aborted" as soon as the run is asked to stop (only before any ingest starts:
/// during an ingest the feeding task ends the stream instead, so the commit never happens).
pub(crate) async fn until_abort<T>(
    abort: &AbortSignal,
    fut: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::select! {
        r = fut => r,
        _ = abort.wait() => Err("已中止 / aborted".into()),
    }
}

/// Add one ingest's counts to the run's report (`counted` names where its committed rows go).
pub(crate) fn add_report(
    report: &mut serde_json::Value,
    r: Result<serde_json::Value, String>,
    counted: &str,
) -> Result<(), PullFailure> {
    let r = match r {
        Ok(r) => r,
        Err(reason) => return Err(PullFailure { reason, report: Some(report.clone()) }),
    };
    let add = |report: &mut serde_json::Value, to: &str, v: &serde_json::Value| {
        let cur = report[to].as_u64().unwrap_or(0);
        report[to] = (cur + v.as_u64().unwrap_or(0)).into();
    };
    add(report, "rows_read", &r["rows_read"]);
    add(report, counted, &r["rows_committed"]);
    add(report, "rows_quarantined", &r["rows_quarantined"]);
    if !r["table_version"].is_null() {
        report["table_version"] = r["table_version"].clone();
    }
    if let Some(a) = report["ingest_ids"].as_array_mut() {
        a.push(r["ingest_id"].clone());
    }
    Ok(())
}
