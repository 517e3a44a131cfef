//! Grants.

use super::{Cols, Db, SqlBackend, SqlRow, json_text, sql};
use crate::{GrantRecord, GrantStore, GranteeKind, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(super) fn grant<R: SqlRow>(r: &Cols<'_, R>) -> Result<GrantRecord> {
    Ok(GrantRecord {
        id: r.uuid("id")?,
        resource_id: r.uuid("resource_id")?,
        grantee_kind: r.state("grantee_kind", GranteeKind::parse)?,
        grantee: r.text("grantee")?,
        fields: r.json("fields")?,
        row_filter: r.opt_text("row_filter")?,
        masks: r.json("masks")?,
        purpose: r.text("purpose")?,
        valid_from: r.time("valid_from")?,
        expires_at: r.opt_time("expires_at")?,
        granted_by: r.text("granted_by")?,
        created_at: r.time("created_at")?,
        revoked_at: r.opt_time("revoked_at")?,
        revoked_by: r.opt_text("revoked_by")?,
    })
}

#[async_trait]
impl<B: SqlBackend> GrantStore for B {
    async fn create_grant(&self, g: &GrantRecord) -> Result<()> {
        let q = sql("INSERT INTO grants (id, resource_id, grantee_kind, grantee, fields, row_filter, masks, purpose, \
                     valid_from, expires_at, granted_by, created_at, revoked_at, revoked_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        .bind(g.id)
        .bind(g.resource_id)
        .bind(g.grantee_kind.as_str())
        .bind(&g.grantee)
        .bind(json_text(&g.fields)?)
        .bind(&g.row_filter)
        .bind(json_text(&g.masks)?)
        .bind(&g.purpose)
        .bind(g.valid_from)
        .bind(g.expires_at)
        .bind(&g.granted_by)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .bind(&g.revoked_by);
        self.run(q).await.map(drop)
    }

    async fn get_grant(&self, id: Uuid) -> Result<Option<GrantRecord>> {
        self.map_one(sql("SELECT * FROM grants WHERE id = $1").bind(id), "grants", grant).await
    }

    async fn grants_for_resource(&self, resource_id: Uuid) -> Result<Vec<GrantRecord>> {
        // Verification grants give no rows: the gate never sees them (they live beside, in `verify_grants`).
        let q = sql("SELECT * FROM grants WHERE resource_id = $1 AND id NOT IN (SELECT grant_id FROM verify_grants) \
                     ORDER BY created_at DESC")
        .bind(resource_id);
        self.map(q, "grants", grant).await
    }

    async fn list_grants(
        &self,
        provider: Option<&str>,
        grantee_department: Option<&str>,
        grantee_user: Option<Uuid>,
    ) -> Result<Vec<GrantRecord>> {
        let mut q = sql("SELECT g.* FROM grants g JOIN resources r ON r.id = g.resource_id WHERE 1=1");
        if provider.is_some() || grantee_department.is_some() || grantee_user.is_some() {
            q.push(" AND (1=0");
            if let Some(p) = provider {
                q.push(" OR r.provider = ").push_bind(p);
            }
            if let Some(d) = grantee_department {
                q.push(" OR (g.grantee_kind = 'department' AND g.grantee = ").push_bind(d).push(")");
            }
            if let Some(u) = grantee_user {
                q.push(" OR (g.grantee_kind = 'user' AND g.grantee = ").push_bind(u.to_string()).push(")");
            }
            q.push(")");
        }
        q.push(" ORDER BY g.created_at DESC");
        self.map(q, "grants", grant).await
    }

    async fn revoke_grant(&self, id: Uuid, at: DateTime<Utc>, by: &str) -> Result<bool> {
        let q = sql("UPDATE grants SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(at)
            .bind(by)
            .bind(id);
        Ok(self.run(q).await? == 1)
    }
}
