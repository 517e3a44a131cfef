//! Service accounts (issue #21).

use super::{Cols, Db, SqlBackend, SqlRow, foreign_key, sql, unique};
use crate::{NewUser, Result, ServiceAccountRecord, ServiceAccountStore, StoreError};
use async_trait::async_trait;
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
