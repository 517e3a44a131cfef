//! Departments, users, sessions, API tokens and the audit log.

use super::{Cols, Db, SqlBackend, SqlRow, Stmt, foreign_key, sql, unique};
use crate::{
    AuditFilter, AuditStore, DepartmentStore, NewUser, Result, SessionRecord, SessionStore, StoreError, TokenRecord,
    TokenStore, UserStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::audit::{AuditCheckpoint, AuditEntry, AuditEvent, Outcome};
use citydata_domain::dept::{Department, DeptCode, DeptLevel, DeptName};
use citydata_domain::region::RegionCode;
use citydata_domain::user::{Membership, Role, User, Username};
use uuid::Uuid;

fn department<R: SqlRow>(r: &Cols<'_, R>) -> Result<Department> {
    Ok(Department {
        code: r.parse("code", DeptCode::parse)?,
        name: r.parse("name", DeptName::parse)?,
        region: r.parse("region_code", RegionCode::parse)?,
        level: r.parse("level", DeptLevel::parse)?,
        parent: match r.opt_text("parent")? {
            Some(p) => Some(DeptCode::parse(&p).map_err(|e| r.corrupt("parent", e))?),
            None => None,
        },
    })
}

/// A user row without its memberships, and its password hash.
fn user_row<R: SqlRow>(r: &Cols<'_, R>) -> Result<(User, String)> {
    let user = User {
        id: r.uuid("id")?,
        username: r.parse("username", Username::parse)?,
        display_name: r.text("display_name")?,
        memberships: Vec::new(),
        disabled: r.flag("disabled")?,
    };
    Ok((user, r.text("password_hash")?))
}

fn token<R: SqlRow>(r: &Cols<'_, R>) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.uuid("id")?,
        user_id: r.uuid("user_id")?,
        name: r.text("name")?,
        prefix: r.text("prefix")?,
        secret_hash: r.text("secret_hash")?,
        created_at: r.time("created_at")?,
        expires_at: r.opt_time("expires_at")?,
        last_used_at: r.opt_time("last_used_at")?,
        revoked_at: r.opt_time("revoked_at")?,
        scopes: r.opt_text("scopes")?,
        resources: r.opt_text("resources")?,
    })
}

fn session<R: SqlRow>(r: &Cols<'_, R>) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: r.text("id_hash")?,
        user_id: r.uuid("user_id")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
    })
}

fn audit_entry<R: SqlRow>(r: &Cols<'_, R>) -> Result<AuditEntry> {
    let details = r.text("details")?;
    Ok(AuditEntry {
        seq: r.i64("seq")?,
        event: AuditEvent {
            at: r.time("at")?,
            actor: r.opt_text("actor")?,
            department: r.opt_text("department")?,
            action: r.text("action")?,
            target: r.opt_text("target")?,
            // An unknown outcome is kept verifiable: it fails the hash check instead of the read.
            outcome: Outcome::parse(&r.text("outcome")?).unwrap_or(Outcome::Failure),
            request_id: r.opt_text("request_id")?,
            client: r.opt_text("client")?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        },
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

fn head_row<R: SqlRow>(r: &Cols<'_, R>) -> Result<(i64, String)> {
    Ok((r.i64("seq")?, r.text("hash")?))
}

fn checkpoint<R: SqlRow>(r: &Cols<'_, R>) -> Result<AuditCheckpoint> {
    Ok(AuditCheckpoint { seq: r.i64("seq")?, hash: r.text("hash")?, at: r.time("at")?, mac: r.text("mac")? })
}

fn audit_filter(q: &mut Stmt, f: &AuditFilter) {
    q.push(" WHERE 1=1");
    if let Some(a) = &f.actor {
        q.push(" AND actor = ").push_bind(a);
    }
    if let Some(d) = &f.department {
        q.push(" AND department = ").push_bind(d);
    }
    if let Some(a) = &f.action {
        if a.ends_with('.') {
            q.push(" AND substr(action, 1, length(").push_bind(a).push(")) = ").push_bind(a);
        } else {
            q.push(" AND action = ").push_bind(a);
        }
    }
    if let Some(t) = &f.target {
        q.push(" AND target = ").push_bind(t);
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
        q.push(" AND request_id = ").push_bind(r);
    }
}

/// Users and their memberships in one query (every request's authentication reads a user: one
/// round trip to the database instead of two). One row per membership, or one with null
/// membership columns; callers add `WHERE` and an `ORDER BY` that keeps a user's rows together
/// and ends with `m.position`.
const USER_WITH_MEMBERSHIPS: &str = "SELECT u.*, m.department AS m_department, m.role AS m_role \
     FROM users u LEFT JOIN memberships m ON m.user_id = u.id";

/// A row of [`USER_WITH_MEMBERSHIPS`]: the user, and the membership the join found, if any.
fn user_membership_row<R: SqlRow>(r: &Cols<'_, R>) -> Result<((User, String), Option<Membership>)> {
    let membership = match r.opt_text("m_department")? {
        None => None,
        Some(_) => Some(Membership {
            department: r.parse("m_department", DeptCode::parse)?,
            role: r.parse("m_role", Role::parse)?,
        }),
    };
    Ok((user_row(r)?, membership))
}

/// The users of [`USER_WITH_MEMBERSHIPS`]'s rows, each with its memberships in row order.
fn users_with_memberships(rows: Vec<((User, String), Option<Membership>)>) -> Vec<(User, String)> {
    let mut out: Vec<(User, String)> = Vec::new();
    for ((user, hash), membership) in rows {
        match out.last_mut() {
            Some((last, _)) if last.id == user.id => last.memberships.extend(membership),
            _ => out.push((User { memberships: membership.into_iter().collect(), ..user }, hash)),
        }
    }
    out
}

/// The one user `q` (a [`USER_WITH_MEMBERSHIPS`] query) finds, if any.
async fn one_user<B: SqlBackend>(b: &B, q: Stmt) -> Result<Option<(User, String)>> {
    Ok(users_with_memberships(b.map(q, "users", user_membership_row).await?).into_iter().next())
}

#[async_trait]
impl<B: SqlBackend> DepartmentStore for B {
    async fn create_department(&self, d: &Department) -> Result<()> {
        let q = sql("INSERT INTO departments (code, name, region_code, level, parent, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(d.code.as_str())
        .bind(d.name.as_str())
        .bind(d.region.as_str())
        .bind(d.level.as_str())
        .bind(d.parent.as_ref().map(|p| p.as_str()))
        .bind(Utc::now());
        match self.execute(None, q).await {
            Ok(_) => Ok(()),
            Err(e) if unique(&e) => Err(StoreError::Conflict(format!("department {}", d.code))),
            Err(e) if foreign_key(&e) => Err(StoreError::NotFound(format!(
                "parent department {}",
                d.parent.as_ref().map(|p| p.as_str()).unwrap_or("")
            ))),
            Err(e) => Err(B::error(e)),
        }
    }

    async fn get_department(&self, code: &DeptCode) -> Result<Option<Department>> {
        self.map_one(sql("SELECT * FROM departments WHERE code = $1").bind(code.as_str()), "departments", department)
            .await
    }

    async fn list_departments(&self) -> Result<Vec<Department>> {
        self.map(sql("SELECT * FROM departments ORDER BY code"), "departments", department).await
    }
}

#[async_trait]
impl<B: SqlBackend> UserStore for B {
    async fn create_user(&self, u: &NewUser) -> Result<User> {
        let mut tx = self.tx_begin().await?;
        let q = sql("INSERT INTO users (id, username, display_name, password_hash, disabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(u.id)
        .bind(u.username.as_str())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(false)
        .bind(u.created_at);
        match self.execute(Some(&mut tx), q).await {
            Ok(_) => {}
            Err(e) if unique(&e) => return Err(StoreError::Conflict(format!("user {}", u.username))),
            Err(e) => return Err(B::error(e)),
        }
        for (i, m) in u.memberships.iter().enumerate() {
            let q = sql("INSERT INTO memberships (user_id, department, role, position) VALUES ($1, $2, $3, $4)")
                .bind(u.id)
                .bind(m.department.as_str())
                .bind(m.role.as_str())
                .bind(i32::try_from(i).unwrap_or(i32::MAX));
            match self.execute(Some(&mut tx), q).await {
                Ok(_) => {}
                Err(e) if foreign_key(&e) => return Err(StoreError::NotFound(format!("department {}", m.department))),
                Err(e) if unique(&e) => {
                    return Err(StoreError::Conflict(format!("membership {} {}", m.department, m.role.as_str())));
                }
                Err(e) => return Err(B::error(e)),
            }
        }
        self.tx_commit(tx).await?;
        Ok(User {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            memberships: u.memberships.clone(),
            disabled: false,
        })
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<User>> {
        let q = sql(&format!("{USER_WITH_MEMBERSHIPS} WHERE u.id = $1 ORDER BY m.position")).bind(id);
        Ok(one_user(self, q).await?.map(|(u, _)| u))
    }

    async fn get_user_by_username(&self, username: &Username) -> Result<Option<(User, String)>> {
        let q =
            sql(&format!("{USER_WITH_MEMBERSHIPS} WHERE u.username = $1 ORDER BY m.position")).bind(username.as_str());
        one_user(self, q).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let q = sql(&format!("{USER_WITH_MEMBERSHIPS} ORDER BY u.username, m.position"));
        let rows = self.map(q, "users", user_membership_row).await?;
        Ok(users_with_memberships(rows).into_iter().map(|(u, _)| u).collect())
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> Result<()> {
        let q = sql("UPDATE users SET password_hash = $1 WHERE id = $2").bind(password_hash).bind(id);
        if self.run(q).await? == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Ok(())
    }

    async fn set_user_email(&self, id: Uuid, email: &str) -> Result<()> {
        let q = sql("UPDATE users SET email = $1 WHERE id = $2").bind(email.to_lowercase()).bind(id);
        match self.execute(None, q).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::NotFound(format!("user {id}"))),
            Err(e) if unique(&e) => Err(StoreError::Conflict(format!("email {email}"))),
            Err(e) => Err(B::error(e)),
        }
    }

    async fn get_user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let q = sql(&format!("{USER_WITH_MEMBERSHIPS} WHERE u.email = $1 ORDER BY m.position"))
            .bind(email.trim().to_lowercase());
        one_user(self, q).await
    }
}

#[async_trait]
impl<B: SqlBackend> SessionStore for B {
    async fn create_session(&self, s: &SessionRecord) -> Result<()> {
        let q = sql("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&s.id_hash)
            .bind(s.user_id)
            .bind(s.created_at)
            .bind(s.expires_at);
        self.run(q).await.map(drop)
    }

    async fn get_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>> {
        let q = sql("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2").bind(id_hash).bind(now);
        self.map_one(q, "sessions", session).await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.run(sql("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash)).await.map(drop)
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.run(sql("DELETE FROM sessions WHERE expires_at <= $1").bind(now)).await
    }

    async fn delete_user_sessions(&self, user_id: Uuid, keep: Option<&str>) -> Result<u64> {
        let q = sql("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2").bind(user_id).bind(keep.unwrap_or(""));
        self.run(q).await
    }
}

#[async_trait]
impl<B: SqlBackend> TokenStore for B {
    async fn create_token(&self, t: &TokenRecord) -> Result<()> {
        let q = sql("INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, created_at, expires_at, \
                     last_used_at, revoked_at, scopes, resources) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(t.id)
        .bind(t.user_id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .bind(t.scopes.clone())
        .bind(t.resources.clone());
        self.run(q).await.map(drop)
    }

    async fn get_token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        self.map_one(sql("SELECT * FROM api_tokens WHERE secret_hash = $1").bind(secret_hash), "api_tokens", token)
            .await
    }

    async fn list_tokens(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
        let q = sql("SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id").bind(user_id);
        self.map(q, "api_tokens", token).await
    }

    async fn revoke_token(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let q = sql("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .bind(user_id);
        Ok(self.run(q).await? == 1)
    }

    async fn touch_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.run(sql("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(at).bind(id)).await.map(drop)
    }
}

#[async_trait]
impl<B: SqlBackend> AuditStore for B {
    async fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry> {
        let _guard = self.audit_guard().await;
        let mut tx = self.tx_begin().await?;
        // PostgreSQL's migration seeds the head as seq 0; SQLite's has no row until the first append.
        let q = sql(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{}", B::AUDIT_HEAD_LOCK));
        let rows = self.fetch(Some(&mut tx), q).await.map_err(B::error)?;
        let head = rows.first().map(|r| head_row(&Cols::new(r, "audit_head"))).transpose()?.filter(|(s, _)| *s > 0);
        let entry = AuditEntry::chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), event.clone());
        let q = sql("INSERT INTO audit_log (seq, at, actor, department, action, target, outcome, request_id, client, \
                     details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
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
        .bind(&entry.hash);
        self.tx_run(&mut tx, q).await?;
        let q = sql("INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
        .bind(entry.seq)
        .bind(&entry.hash);
        self.tx_run(&mut tx, q).await?;
        self.tx_commit(tx).await?;
        Ok(entry)
    }

    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u64) -> Result<Vec<AuditEntry>> {
        let mut q = sql("SELECT * FROM audit_log");
        audit_filter(&mut q, filter);
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(limit)).push(" OFFSET ").push_bind(offset as i64);
        self.map(q, "audit_log", audit_entry).await
    }

    async fn count_audit(&self, filter: &AuditFilter) -> Result<u64> {
        let mut q = sql("SELECT COUNT(*) AS n FROM audit_log");
        audit_filter(&mut q, filter);
        Ok(self.count(q, "audit_log").await? as u64)
    }

    async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        // Entries come back in chain order, and a moved row shows as a break.
        let q = sql("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2").bind(after).bind(i64::from(limit));
        self.map(q, "audit_log", audit_entry).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let found = self.map_one(sql("SELECT seq, hash FROM audit_head WHERE id = 1"), "audit_head", head_row).await?;
        Ok(found.filter(|(s, _)| *s > 0))
    }

    async fn add_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()> {
        let q = sql("INSERT INTO audit_checkpoints (seq, hash, at, mac) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (seq) DO NOTHING")
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.mac);
        self.run(q).await.map(drop)
    }

    async fn audit_checkpoints(&self) -> Result<Vec<AuditCheckpoint>> {
        let q = sql("SELECT seq, hash, at, mac FROM audit_checkpoints ORDER BY seq");
        self.map(q, "audit_checkpoints", checkpoint).await
    }
}
