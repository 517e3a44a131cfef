//! Service accounts and session details (issue #21).

use super::{Cols, Db, SqlBackend, SqlRow, foreign_key, sql, unique};
use crate::{NewUser, Result, ServiceAccountRecord, ServiceAccountStore, SessionInfo, SessionInfoStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn service_account<R: SqlRow>(r: &Cols<'_, R>) -> Result<ServiceAccountRecord> {
    Ok(ServiceAccountRecord {
        user_id: r.uuid("user_id")?,
        username: r.text("username")?,
        display_name: r.text("display_name")?,
        department: r.text("department")?,
        description: r.text("description")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
        disabled: r.flag("disabled")?,
    })
}

const SELECT: &str = "SELECT s.user_id, u.username, u.display_name, u.disabled, s.department, s.description, \
                      s.created_by, s.created_at FROM service_accounts s JOIN users u ON u.id = s.user_id";

#[async_trait]
impl<B: SqlBackend> ServiceAccountStore for B {
    async fn create_service_account(&self, u: &NewUser, description: &str, created_by: &str) -> Result<()> {
        let department = u
            .memberships
            .first()
            .map(|m| m.department.to_string())
            .ok_or_else(|| StoreError::NotFound("department".into()))?;
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
                Err(e) => return Err(B::error(e)),
            }
        }
        let q = sql("INSERT INTO service_accounts (user_id, department, description, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5)")
        .bind(u.id)
        .bind(department)
        .bind(description)
        .bind(created_by)
        .bind(u.created_at);
        match self.execute(Some(&mut tx), q).await {
            Ok(_) => {}
            Err(e) if foreign_key(&e) => return Err(StoreError::NotFound("department".into())),
            Err(e) => return Err(B::error(e)),
        }
        self.tx_commit(tx).await
    }

    async fn get_service_account(&self, user_id: Uuid) -> Result<Option<ServiceAccountRecord>> {
        let q = sql(&format!("{SELECT} WHERE s.user_id = $1")).bind(user_id);
        self.map_one(q, "service_accounts", service_account).await
    }

    async fn list_service_accounts(&self, department: Option<&str>) -> Result<Vec<ServiceAccountRecord>> {
        let q = match department {
            Some(d) => sql(&format!("{SELECT} WHERE s.department = $1 ORDER BY u.username")).bind(d),
            None => sql(&format!("{SELECT} ORDER BY u.username")),
        };
        self.map(q, "service_accounts", service_account).await
    }
}

fn session_info<R: SqlRow>(r: &Cols<'_, R>) -> Result<SessionInfo> {
    Ok(SessionInfo {
        id_hash: r.text("id_hash")?,
        public_id: r.opt_text("public_id")?,
        user_id: r.uuid("user_id")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        last_seen_at: r.opt_time("last_seen_at")?,
        client: r.opt_text("client")?,
        user_agent: r.opt_text("user_agent")?,
    })
}

#[async_trait]
impl<B: SqlBackend> SessionInfoStore for B {
    async fn describe_session(
        &self,
        id_hash: &str,
        public_id: &str,
        client: Option<&str>,
        user_agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let q = sql("UPDATE sessions SET public_id = $1, client = $2, user_agent = $3, last_seen_at = $4 \
                     WHERE id_hash = $5")
        .bind(public_id)
        .bind(client.map(str::to_string))
        .bind(user_agent.map(str::to_string))
        .bind(at)
        .bind(id_hash);
        self.run(q).await.map(drop)
    }

    async fn live_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionInfo>> {
        let q = sql("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2").bind(id_hash).bind(now);
        self.map_one(q, "sessions", session_info).await
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        self.run(sql("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2").bind(at).bind(id_hash)).await.map(drop)
    }

    async fn list_user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<SessionInfo>> {
        let q = sql("SELECT * FROM sessions WHERE user_id = $1 AND expires_at > $2 \
                     ORDER BY COALESCE(last_seen_at, created_at) DESC, id_hash")
        .bind(user_id)
        .bind(now);
        self.map(q, "sessions", session_info).await
    }

    async fn find_session(&self, public_id: &str) -> Result<Option<SessionInfo>> {
        self.map_one(sql("SELECT * FROM sessions WHERE public_id = $1").bind(public_id), "sessions", session_info).await
    }
}
