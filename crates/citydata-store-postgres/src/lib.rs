//! citydata-store-postgres: the scale-out metadata store on PostgreSQL. Owns its migrations
//! (`migrations/`) and the PostgreSQL dialect of the shared statements
//! (`citydata_store::sql`): native `UUID` and `TIMESTAMPTZ`, row locks where nodes compete.
//!
//! Audit appends lock the one `audit_head` row (`SELECT ... FOR UPDATE`) inside their
//! transaction, so appends from any number of server processes serialize into one chain;
//! webhook claims skip the rows another node has locked (`FOR UPDATE SKIP LOCKED`).
#![forbid(unsafe_code)]

pub mod testing;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::sql::{Arg, SqlBackend, SqlRow, Stmt};
use citydata_store::{PoolStats, Result, Store, StoreError};
use sqlx::postgres::{PgArguments, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row as _, Transaction};
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Longest a request waits for a connection (the pool reconnects with backoff meanwhile).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: PgPool,
}

fn backend(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) { StoreError::Unavailable(e.to_string()) } else { StoreError::Backend(Box::new(e)) }
}

/// Is this a failure to reach the server (as opposed to a failed statement)? Connection IO,
/// TLS, a dropped connection mid-message, an exhausted pool, and the SQLSTATEs of class 08
/// (connection exception), 57P01–57P03 (shutting down, crash recovery, not accepting
/// connections yet) and 53300 (too many connections).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300"))
        }
        _ => false,
    }
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self> {
        // A restarted or failed-over server: every pooled connection is pinged before use
        // (`test_before_acquire`) and a dead one replaced; while none can be made, a request
        // waits at most `ACQUIRE_TIMEOUT` and then answers 503 `store_unavailable`, so a
        // restart neither piles up requests nor leaves dead connections in the pool.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .connect(url)
            .await
            .map_err(backend)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `s` with its arguments bound as PostgreSQL's own types.
fn query(s: &Stmt) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    s.args.iter().fold(sqlx::query(&s.sql), |q, a| match a {
        Arg::Text(v) => q.bind(v.as_deref()),
        Arg::I32(v) => q.bind(*v),
        Arg::I64(v) => q.bind(*v),
        Arg::Bool(v) => q.bind(*v),
        Arg::Uuid(v) => q.bind(*v),
        Arg::Time(v) => q.bind(*v),
    })
}

/// A row as PostgreSQL returns it.
pub struct Row(sqlx::postgres::PgRow);

impl Row {
    fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
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
        // BIGINT columns and counts, or INTEGER ones.
        self.get::<Option<i64>>(col).or_else(|_| Ok(self.get::<Option<i32>>(col)?.map(i64::from)))
    }

    fn uuid(&self, col: &str) -> std::result::Result<Option<Uuid>, String> {
        self.get(col)
    }

    fn time(&self, col: &str) -> std::result::Result<Option<DateTime<Utc>>, String> {
        self.get(col)
    }

    fn flag(&self, col: &str) -> std::result::Result<Option<bool>, String> {
        self.get(col)
    }
}

#[async_trait]
impl SqlBackend for PostgresStore {
    type Row = Row;
    type Tx = Transaction<'static, Postgres>;
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    const AUDIT_HEAD_LOCK: &'static str = " FOR UPDATE";
    const STRPOS: &'static str = "strpos";

    fn error(e: sqlx::Error) -> StoreError {
        backend(e)
    }

    async fn begin(&self) -> std::result::Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
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
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => backend(e),
            e => StoreError::Backend(Box::new(e)),
        })
    }

    async fn ready(&self) -> Result<bool> {
        let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
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

    async fn backup_to(&self, _path: &std::path::Path) -> Result<()> {
        Err(StoreError::backend(
            "a PostgreSQL database is copied with pg_dump (citydata backup runs it), not by the store",
        ))
    }

    async fn is_blank(&self) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        Ok(n == 0)
    }
}
