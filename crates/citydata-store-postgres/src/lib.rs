//! citydata-store-postgres: the scale-out metadata store on PostgreSQL. Implements every
//! `citydata-store` trait; owns its migrations (`migrations/`).
//!
//! Audit appends lock the one `audit_head` row (`SELECT ... FOR UPDATE`) inside their
//! transaction, so appends from any number of server processes serialize into one chain.
#![forbid(unsafe_code)]

mod catalog;
mod grants;
mod ingests;
mod requests;
pub mod testing;
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
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Longest a request waits for a connection (the pool reconnects with backoff meanwhile).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) { StoreError::Unavailable(e.to_string()) } else { StoreError::Backend(e.to_string()) }
}

/// Is this a failure to reach the server (as opposed to a failed statement)? Connection IO,
/// TLS, a dropped connection mid-message, an exhausted pool, and the SQLSTATEs of class 08
/// (connection exception), 57P01–57P03 (shutting down, crash recovery, not accepting
/// connections yet) and 53300 (too many connections).
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
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

fn corrupt<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn is_kind(e: &sqlx::Error, kind: sqlx::error::ErrorKind) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == kind)
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

    async fn memberships(&self, user_id: Uuid) -> Result<Vec<Membership>> {
        let rows = sqlx::query("SELECT department, role FROM memberships WHERE user_id = $1 ORDER BY position")
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

    async fn user_from_row(&self, r: &PgRow) -> Result<User> {
        let id: Uuid = r.get("id");
        Ok(User {
            id,
            username: Username::parse(r.get("username")).map_err(corrupt("username"))?,
            display_name: r.get("display_name"),
            memberships: self.memberships(id).await?,
            disabled: r.get("disabled"),
        })
    }
}

fn dept_from_row(r: &PgRow) -> Result<Department> {
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

fn token_from_row(r: &PgRow) -> TokenRecord {
    TokenRecord {
        id: r.get("id"),
        user_id: r.get("user_id"),
        name: r.get("name"),
        prefix: r.get("prefix"),
        secret_hash: r.get("secret_hash"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        last_used_at: r.get("last_used_at"),
        revoked_at: r.get("revoked_at"),
    }
}

fn audit_from_row(r: &PgRow) -> AuditEntry {
    let outcome: String = r.get("outcome");
    let details: String = r.get("details");
    AuditEntry {
        seq: r.get("seq"),
        event: AuditEvent {
            at: r.get("at"),
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
    }
}

fn push_audit_filter(q: &mut QueryBuilder<'_, Postgres>, f: &AuditFilter) {
    q.push(" WHERE seq > 0");
    if let Some(a) = &f.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(d) = &f.department {
        q.push(" AND department = ").push_bind(d.clone());
    }
    if let Some(a) = &f.action {
        if a.ends_with('.') {
            q.push(" AND left(action, length(").push_bind(a.clone()).push(")) = ").push_bind(a.clone());
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
        q.push(" AND at >= ").push_bind(t);
    }
    if let Some(t) = f.to {
        q.push(" AND at < ").push_bind(t);
    }
    if let Some(r) = &f.request_id {
        q.push(" AND request_id = ").push_bind(r.clone());
    }
}

#[async_trait]
impl DepartmentStore for PostgresStore {
    async fn create_department(&self, d: &Department) -> Result<()> {
        let res =
            sqlx::query("INSERT INTO departments (code, name, region_code, level, parent) VALUES ($1, $2, $3, $4, $5)")
                .bind(d.code.as_str())
                .bind(d.name.as_str())
                .bind(d.region.as_str())
                .bind(d.level.as_str())
                .bind(d.parent.as_ref().map(|p| p.as_str()))
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
        let row = sqlx::query("SELECT * FROM departments WHERE code = $1")
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
impl UserStore for PostgresStore {
    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let res = sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, false, $5)",
        )
        .bind(u.id)
        .bind(u.username.as_str())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(u.created_at)
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
            let res =
                sqlx::query("INSERT INTO memberships (user_id, department, role, position) VALUES ($1, $2, $3, $4)")
                    .bind(u.id)
                    .bind(m.department.as_str())
                    .bind(m.role.as_str())
                    .bind(i as i32)
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
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok(Some(self.user_from_row(&r).await?)),
            None => Ok(None),
        }
    }

    async fn get_user_by_username(&self, username: &Username) -> Result<Option<(User, String)>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
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
        let res = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn set_user_email(&self, id: Uuid, email: &str) -> Result<()> {
        let res = sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email.to_lowercase())
            .bind(id)
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
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
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
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&s.id_hash)
            .bind(s.user_id)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| SessionRecord {
            id_hash: r.get("id_hash"),
            user_id: r.get("user_id"),
            created_at: r.get("created_at"),
            expires_at: r.get("expires_at"),
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected())
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, created_at, expires_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t.id)
        .bind(t.user_id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.as_ref().map(token_from_row))
    }

    async fn list_tokens(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    async fn revoke_token(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let r =
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }

    async fn touch_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let (seq, hash): (i64, String) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let prev = (seq > 0).then_some((seq, hash.as_str()));
        let entry = AuditEntry::chain(prev, event.clone());
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(entry.seq)
        .bind(event.at)
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
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(entry.seq)
            .bind(&entry.hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(entry)
    }

    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u64) -> Result<Vec<AuditEntry>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM audit_log");
        push_audit_filter(&mut q, filter);
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(limit)).push(" OFFSET ").push_bind(offset as i64);
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        Ok(rows.iter().map(audit_from_row).collect())
    }

    async fn count_audit(&self, filter: &AuditFilter) -> Result<u64> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT COUNT(*) AS n FROM audit_log");
        push_audit_filter(&mut q, filter);
        let row = q.build().fetch_one(&self.pool).await.map_err(backend)?;
        Ok(row.get::<i64, _>("n") as u64)
    }

    async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(audit_from_row).collect())
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(head.filter(|(s, _)| *s > 0))
    }

    async fn add_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, mac) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.mac)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        let rows: Vec<(i64, String, DateTime<Utc>, String)> =
            sqlx::query_as("SELECT seq, hash, at, mac FROM audit_checkpoints ORDER BY seq")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows.into_iter().map(|(seq, hash, at, mac)| AuditCheckpoint { seq, hash, at, mac }).collect())
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
            e => StoreError::Backend(e.to_string()),
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
        Err(StoreError::Backend(
            "a PostgreSQL database is copied with pg_dump (citydata backup runs it), not by the store".into(),
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
