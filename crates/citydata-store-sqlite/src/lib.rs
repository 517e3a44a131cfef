//! citydata-store-sqlite: the embedded default metadata store, a SQLite file in the data
//! directory. Implements every `citydata-store` trait; owns its migrations (`migrations/`).
//!
//! Writers serialize: every write transaction starts with `BEGIN IMMEDIATE` (a deferred
//! transaction that reads first cannot upgrade to a writer while another commits, and SQLite
//! answers that with `SQLITE_BUSY` at once, whatever the busy timeout), so a writer waits up
//! to the 30 s busy timeout instead; audit appends (which also keep separate processes on the
//! same file, such as the CLI beside a running server, from forking the chain) run behind an
//! in-process lock as well (so that tasks in one process do not spin on `SQLITE_BUSY`). A
//! lock still held after the timeout is `StoreError::Unavailable` (503), never a 500.
#![forbid(unsafe_code)]

mod catalog;
mod grants;
mod ingests;
mod requests;
mod webhooks;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::audit::{AuditCheckpoint, AuditEntry, AuditEvent, Outcome};
use citydata_domain::dept::{Department, DeptCode, DeptLevel, DeptName};
use citydata_domain::region::RegionCode;
use citydata_domain::user::{Membership, Role, User, Username};
use citydata_store::{
    AuditFilter, AuditStore, DepartmentStore, NewUser, PoolStats, Result, SessionRecord, SessionStore, Store,
    StoreError, TokenRecord, TokenStore, UserStore,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    write_lock: tokio::sync::Mutex<()>,
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
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
    if busy { StoreError::Unavailable(e.to_string()) } else { StoreError::Backend(e.to_string()) }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt(format!("timestamp {v}")))
}

fn opt_from_micros(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(from_micros).transpose()
}

pub(crate) fn uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("uuid {s}")))
}

fn corrupt<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn is_kind(e: &sqlx::Error, kind: sqlx::error::ErrorKind) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == kind)
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
        Ok(Self { pool, write_lock: tokio::sync::Mutex::new(()) })
    }

    /// The pool, for tests that tamper with the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query("SELECT department, role FROM memberships WHERE user_id = ? ORDER BY position")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    department: DeptCode::parse(r.get("department")).map_err(corrupt("department"))?,
                    role: Role::parse(r.get("role")).map_err(corrupt("role"))?,
                })
            })
            .collect()
    }

    async fn user_from_row(&self, r: &SqliteRow) -> Result<User> {
        let id: String = r.get("id");
        Ok(User {
            id: uuid(&id)?,
            username: Username::parse(r.get("username")).map_err(corrupt("username"))?,
            display_name: r.get("display_name"),
            memberships: self.memberships(&id).await?,
            disabled: r.get::<i64, _>("disabled") != 0,
        })
    }
}

fn dept_from_row(r: &SqliteRow) -> Result<Department> {
    Ok(Department {
        code: DeptCode::parse(r.get("code")).map_err(corrupt("code"))?,
        name: DeptName::parse(r.get("name")).map_err(corrupt("name"))?,
        region: RegionCode::parse(r.get("region_code")).map_err(corrupt("region_code"))?,
        level: DeptLevel::parse(r.get("level")).map_err(corrupt("level"))?,
        parent: r
            .get::<Option<String>, _>("parent")
            .map(|p| DeptCode::parse(&p).map_err(corrupt("parent")))
            .transpose()?,
    })
}

fn token_from_row(r: &SqliteRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: uuid(r.get("id"))?,
        user_id: uuid(r.get("user_id"))?,
        name: r.get("name"),
        prefix: r.get("prefix"),
        secret_hash: r.get("secret_hash"),
        created_at: from_micros(r.get("created_at"))?,
        expires_at: opt_from_micros(r.get("expires_at"))?,
        last_used_at: opt_from_micros(r.get("last_used_at"))?,
        revoked_at: opt_from_micros(r.get("revoked_at"))?,
    })
}

fn audit_from_row(r: &SqliteRow) -> Result<AuditEntry> {
    let outcome: String = r.get("outcome");
    let details: String = r.get("details");
    Ok(AuditEntry {
        seq: r.get("seq"),
        event: AuditEvent {
            at: from_micros(r.get("at"))?,
            actor: r.get("actor"),
            department: r.get("department"),
            action: r.get("action"),
            target: r.get("target"),
            // An unknown outcome is kept verifiable: it fails the hash check instead of the read.
            outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failure),
            request_id: r.get("request_id"),
            client: r.get("client"),
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        },
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    })
}

fn push_audit_filter(q: &mut QueryBuilder<'_, Sqlite>, f: &AuditFilter) {
    q.push(" WHERE 1=1");
    if let Some(a) = &f.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(d) = &f.department {
        q.push(" AND department = ").push_bind(d.clone());
    }
    if let Some(a) = &f.action {
        if a.ends_with('.') {
            q.push(" AND substr(action, 1, length(").push_bind(a.clone()).push(")) = ").push_bind(a.clone());
        } else {
            q.push(" AND action = ").push_bind(a.clone());
        }
    }
    if let Some(t) = &f.target {
        q.push(" AND target = ").push_bind(t.clone());
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ").push_bind(o.as_str());
    }
    if let Some(t) = f.from {
        q.push(" AND at >= ").push_bind(micros(t));
    }
    if let Some(t) = f.to {
        q.push(" AND at < ").push_bind(micros(t));
    }
    if let Some(r) = &f.request_id {
        q.push(" AND request_id = ").push_bind(r.clone());
    }
}

#[async_trait]
impl DepartmentStore for SqliteStore {
    async fn create_department(&self, d: &Department) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO departments (code, name, region_code, level, parent, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(d.code.as_str())
        .bind(d.name.as_str())
        .bind(d.region.as_str())
        .bind(d.level.as_str())
        .bind(d.parent.as_ref().map(|p| p.as_str()))
        .bind(micros(Utc::now()))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, sqlx::error::ErrorKind::UniqueViolation) => {
                Err(StoreError::Conflict(format!("department {}", d.code)))
            }
            Err(e) if is_kind(&e, sqlx::error::ErrorKind::ForeignKeyViolation) => Err(StoreError::NotFound(format!(
                "parent department {}",
                d.parent.as_ref().map(|p| p.as_str()).unwrap_or("")
            ))),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_department(&self, code: &DeptCode) -> Result<Option<Department>> {
        let row = sqlx::query("SELECT * FROM departments WHERE code = ?")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(dept_from_row).transpose()
    }

    async fn list_departments(&self) -> Result<Vec<Department>> {
        let rows =
            sqlx::query("SELECT * FROM departments ORDER BY code").fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(dept_from_row).collect()
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let id = u.id.to_string();
        let res = sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        )
        .bind(&id)
        .bind(u.username.as_str())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(micros(u.created_at))
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_kind(&e, sqlx::error::ErrorKind::UniqueViolation) => {
                return Err(StoreError::Conflict(format!("user {}", u.username)));
            }
            Err(e) => return Err(backend(e)),
        }
        for (i, m) in u.memberships.iter().enumerate() {
            let res = sqlx::query("INSERT INTO memberships (user_id, department, role, position) VALUES (?, ?, ?, ?)")
                .bind(&id)
                .bind(m.department.as_str())
                .bind(m.role.as_str())
                .bind(i as i64)
                .execute(&mut *tx)
                .await;
            match res {
                Ok(_) => {}
                Err(e) if is_kind(&e, sqlx::error::ErrorKind::ForeignKeyViolation) => {
                    return Err(StoreError::NotFound(format!("department {}", m.department)));
                }
                Err(e) if is_kind(&e, sqlx::error::ErrorKind::UniqueViolation) => {
                    return Err(StoreError::Conflict(format!("membership {} {}", m.department, m.role.as_str())));
                }
                Err(e) => return Err(backend(e)),
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(User {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            memberships: u.memberships.clone(),
            disabled: false,
        })
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok(Some(self.user_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    async fn get_user_by_username(&self, username: &Username) -> Result<Option<(User, String)>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok(Some((self.user_from_row(&r).await?, r.get("password_hash")))),
            None => Ok(None),
        }
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username").fetch_all(&self.pool).await.map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.user_from_row(r).await?);
        }
        Ok(out)
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> Result<()> {
        let res = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn set_user_email(&self, id: Uuid, email: &str) -> Result<()> {
        let res = sqlx::query("UPDATE users SET email = ? WHERE id = ?")
            .bind(email.to_lowercase())
            .bind(id.to_string())
            .execute(&self.pool)
            .await;
        match res {
            Ok(r) if r.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(StoreError::NotFound(format!("user {id}"))),
            Err(e) if is_kind(&e, sqlx::error::ErrorKind::UniqueViolation) => {
                Err(StoreError::Conflict(format!("email {email}")))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = ?")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok(Some((self.user_from_row(&r).await?, r.get("password_hash")))),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(&s.id_hash)
            .bind(s.user_id.to_string())
            .bind(micros(s.created_at))
            .bind(micros(s.expires_at))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ?")
            .bind(id_hash)
            .bind(micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(SessionRecord {
                id_hash: r.get("id_hash"),
                user_id: uuid(r.get("user_id"))?,
                created_at: from_micros(r.get("created_at"))?,
                expires_at: from_micros(r.get("expires_at"))?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, created_at, expires_at, last_used_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.secret_hash)
        .bind(micros(t.created_at))
        .bind(t.expires_at.map(micros))
        .bind(t.last_used_at.map(micros))
        .bind(t.revoked_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id")
            .bind(user_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL")
            .bind(micros(at))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }

    async fn touch_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(micros(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry> {
        let _guard = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let entry = AuditEntry::chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), event.clone());
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, details, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.seq)
        .bind(micros(event.at))
        .bind(&event.actor)
        .bind(&event.department)
        .bind(&event.action)
        .bind(&event.target)
        .bind(event.outcome.as_str())
        .bind(&event.request_id)
        .bind(&event.client)
        .bind(citydata_domain::audit::canonical_json(&event.details))
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
            .bind(entry.seq)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(entry)
    }

    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u64) -> Result<Vec<AuditEntry>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_log");
        push_audit_filter(&mut q, filter);
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(limit)).push(" OFFSET ").push_bind(offset as i64);
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn count_audit(&self, filter: &AuditFilter) -> Result<u64> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n FROM audit_log");
        push_audit_filter(&mut q, filter);
        let row = q.build().fetch_one(&self.pool).await.map_err(backend)?;
        Ok(row.get::<i64, _>("n") as u64)
    }

    async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        // `seq` is the rowid: entries come back in chain order, and a moved row shows as a break.
        let rows = sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn add_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, mac) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(micros(c.at))
        .bind(&c.mac)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        let rows: Vec<(i64, String, i64, String)> =
            sqlx::query_as("SELECT seq, hash, at, mac FROM audit_checkpoints ORDER BY seq")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(seq, hash, at, mac)| Ok(AuditCheckpoint { seq, hash, at: from_micros(at)?, mac }))
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Backend(e.to_string()))
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
            path.to_str().ok_or_else(|| StoreError::Backend(format!("backup path {} is not UTF-8", path.display())))?;
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
