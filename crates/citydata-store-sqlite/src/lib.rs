//! citydata-store-sqlite: the embedded default metadata store, a SQLite file in the data
//! directory. Owns its migrations (`migrations/`) and the SQLite dialect of the shared
//! statements (`citydata_store::sql`): UUIDs as text, times as INTEGER microseconds.
//!
//! Writers serialize: every write transaction starts with `BEGIN IMMEDIATE` (a deferred
//! transaction that reads first cannot upgrade to a writer while another commits, and SQLite
//! answers that with `SQLITE_BUSY` at once, whatever the busy timeout), so a writer waits up
//! to the 30 s busy timeout instead; audit appends (which also keep separate processes on the
//! same file, such as the CLI beside a running server, from forking the chain) run behind an
//! in-process lock as well (so that tasks in one process do not spin on `SQLITE_BUSY`). A
//! lock still held after the timeout is `StoreError::Unavailable` (503), never a 500.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::sql::{Arg, SqlBackend, SqlRow, Stmt};
use citydata_store::{PoolStats, Result, Store, StoreError};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    pool: SqlitePool,
    audit_lock: tokio::sync::Mutex<()>,
}

fn backend(e: sqlx::Error) -> StoreError {
    // SQLITE_BUSY (5) / SQLITE_LOCKED (6) past the busy timeout, or no pooled connection
    // within the acquire timeout: transient, never a 500.
    let busy = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            let primary = c.parse::<i64>().map(|n| n & 0xff).unwrap_or(-1);
            primary == 5 || primary == 6
        }),
        _ => false,
    };
    if busy { StoreError::Unavailable(e.to_string()) } else { StoreError::Backend(Box::new(e)) }
}

impl SqliteStore {
    /// Open (creating when missing) the database at `url` (`sqlite://path` or `sqlite:path`).
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(backend)?;
        Ok(Self { pool, audit_lock: tokio::sync::Mutex::new(()) })
    }

    /// The pool, for tests that tamper with the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// `s` with its arguments bound as SQLite stores them.
fn query(s: &Stmt) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
    s.args.iter().fold(sqlx::query(&s.sql), |q, a| match a {
        Arg::Text(v) => q.bind(v.as_deref()),
        Arg::I32(v) => q.bind(*v),
        Arg::I64(v) => q.bind(*v),
        Arg::Bool(v) => q.bind(*v),
        Arg::Uuid(v) => q.bind(v.map(|u| u.to_string())),
        Arg::Time(v) => q.bind(v.map(|t| t.timestamp_micros())),
    })
}

/// A row as SQLite returns it.
pub struct Row(sqlx::sqlite::SqliteRow);

impl Row {
    fn get<'r, T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
        &'r self,
        col: &str,
    ) -> std::result::Result<T, String> {
        self.0.try_get(col).map_err(|e| e.to_string())
    }
}

impl SqlRow for Row {
    fn text(&self, col: &str) -> std::result::Result<Option<String>, String> {
        self.get(col)
    }

    fn int(&self, col: &str) -> std::result::Result<Option<i64>, String> {
        self.get(col)
    }

    fn uuid(&self, col: &str) -> std::result::Result<Option<Uuid>, String> {
        let s: Option<String> = self.get(col)?;
        s.map(|s| Uuid::parse_str(&s).map_err(|e| format!("uuid {s:?}: {e}"))).transpose()
    }

    fn time(&self, col: &str) -> std::result::Result<Option<DateTime<Utc>>, String> {
        let v: Option<i64> = self.get(col)?;
        v.map(|v| DateTime::from_timestamp_micros(v).ok_or_else(|| format!("timestamp {v} out of range"))).transpose()
    }

    fn flag(&self, col: &str) -> std::result::Result<Option<bool>, String> {
        Ok(self.get::<Option<i64>>(col)?.map(|v| v != 0))
    }
}

#[async_trait]
impl SqlBackend for SqliteStore {
    type Row = Row;
    type Tx = Transaction<'static, Sqlite>;
    const CLAIM_LOCK: &'static str = "";
    const AUDIT_HEAD_LOCK: &'static str = "";
    const STRPOS: &'static str = "instr";

    fn error(e: sqlx::Error) -> StoreError {
        backend(e)
    }

    async fn begin(&self) -> std::result::Result<Self::Tx, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn commit(tx: Self::Tx) -> std::result::Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn fetch(&self, tx: Option<&mut Self::Tx>, s: Stmt) -> std::result::Result<Vec<Row>, sqlx::Error> {
        let rows = match tx {
            Some(tx) => query(&s).fetch_all(&mut **tx).await?,
            None => query(&s).fetch_all(&self.pool).await?,
        };
        Ok(rows.into_iter().map(Row).collect())
    }

    async fn execute(&self, tx: Option<&mut Self::Tx>, s: Stmt) -> std::result::Result<u64, sqlx::Error> {
        let done = match tx {
            Some(tx) => query(&s).execute(&mut **tx).await?,
            None => query(&s).execute(&self.pool).await?,
        };
        Ok(done.rows_affected())
    }

    async fn audit_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.audit_lock.lock().await)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Backend(Box::new(e)))
    }

    async fn ready(&self) -> Result<bool> {
        let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
            .fetch_all(&self.pool)
            .await
        {
            Ok(v) => v,
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(backend(e)),
        };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats { size: self.pool.size(), idle: self.pool.num_idle() as u32 }
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        let target =
            path.to_str().ok_or_else(|| StoreError::backend(format!("backup path {} is not UTF-8", path.display())))?;
        // One read transaction: the copy is the database as of one commit, writers go on.
        sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn is_blank(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n == 0)
    }
}
