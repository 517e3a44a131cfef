//! `GrantStore` on PostgreSQL.

use crate::{PostgresStore, backend};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_store::{GrantRecord, GrantStore, Result, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

fn record(r: &PgRow) -> Result<GrantRecord> {
    let fields: String = r.get("fields");
    let masks: String = r.get("masks");
    Ok(GrantRecord {
        id: r.get("id"),
        resource_id: r.get("resource_id"),
        grantee_kind: r.get("grantee_kind"),
        grantee: r.get("grantee"),
        fields: serde_json::from_str(&fields).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        row_filter: r.get("row_filter"),
        masks: serde_json::from_str(&masks).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        purpose: r.get("purpose"),
        valid_from: r.get("valid_from"),
        expires_at: r.get("expires_at"),
        granted_by: r.get("granted_by"),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
        revoked_by: r.get("revoked_by"),
    })
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn create_grant(&self, g: &GrantRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO grants (id, resource_id, grantee_kind, grantee, fields, row_filter, masks, purpose, valid_from, expires_at, granted_by, created_at, revoked_at, revoked_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(g.id)
        .bind(g.resource_id)
        .bind(&g.grantee_kind)
        .bind(&g.grantee)
        .bind(serde_json::to_string(&g.fields).unwrap_or_else(|_| "[]".into()))
        .bind(&g.row_filter)
        .bind(serde_json::to_string(&g.masks).unwrap_or_else(|_| "{}".into()))
        .bind(&g.purpose)
        .bind(g.valid_from)
        .bind(g.expires_at)
        .bind(&g.granted_by)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .bind(&g.revoked_by)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_grant(&self, id: Uuid) -> Result<Option<GrantRecord>> {
        let row = sqlx::query("SELECT * FROM grants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(record).transpose()
    }

    async fn grants_for_resource(&self, resource_id: Uuid) -> Result<Vec<GrantRecord>> {
        let rows = sqlx::query("SELECT * FROM grants WHERE resource_id = $1 ORDER BY created_at DESC")
            .bind(resource_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn list_grants(
        &self,
        provider: Option<&str>,
        grantee_department: Option<&str>,
        grantee_user: Option<Uuid>,
    ) -> Result<Vec<GrantRecord>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT g.* FROM grants g JOIN resources r ON r.id = g.resource_id WHERE 1=1",
        );
        if provider.is_some() || grantee_department.is_some() || grantee_user.is_some() {
            q.push(" AND (1=0");
            if let Some(p) = provider {
                q.push(" OR r.provider = ").push_bind(p.to_string());
            }
            if let Some(d) = grantee_department {
                q.push(" OR (g.grantee_kind = 'department' AND g.grantee = ").push_bind(d.to_string()).push(")");
            }
            if let Some(u) = grantee_user {
                q.push(" OR (g.grantee_kind = 'user' AND g.grantee = ").push_bind(u.to_string()).push(")");
            }
            q.push(")");
        }
        q.push(" ORDER BY g.created_at DESC");
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(record).collect()
    }

    async fn revoke_grant(&self, id: Uuid, at: DateTime<Utc>, by: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(r.rows_affected() == 1)
    }
}
