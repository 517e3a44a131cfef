//! Delta Sharing profiles: the API tokens' statements on `sharing_profiles`.

use super::{Cols, Db, SqlBackend, SqlRow, sql};
use crate::{Result, SharingStore, TokenRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn profile<R: SqlRow>(r: &Cols<'_, R>) -> Result<TokenRecord> {
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
        // A profile reads through Delta Sharing only; API scopes do not apply to it.
        scopes: None,
        resources: None,
    })
}

#[async_trait]
impl<B: SqlBackend> SharingStore for B {
    async fn create_sharing_profile(&self, t: &TokenRecord) -> Result<()> {
        let q = sql("INSERT INTO sharing_profiles (id, user_id, name, prefix, secret_hash, created_at, expires_at, \
                     last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(t.id)
        .bind(t.user_id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at);
        self.run(q).await.map(drop)
    }

    async fn get_sharing_profile_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        let q = sql("SELECT * FROM sharing_profiles WHERE secret_hash = $1").bind(secret_hash);
        self.map_one(q, "sharing_profiles", profile).await
    }

    async fn list_sharing_profiles(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
        let q = sql("SELECT * FROM sharing_profiles WHERE user_id = $1 ORDER BY created_at DESC, id").bind(user_id);
        self.map(q, "sharing_profiles", profile).await
    }

    async fn revoke_sharing_profile(&self, user_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let q =
            sql("UPDATE sharing_profiles SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .bind(user_id);
        Ok(self.run(q).await? == 1)
    }

    async fn touch_sharing_profile(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.run(sql("UPDATE sharing_profiles SET last_used_at = $1 WHERE id = $2").bind(at).bind(id)).await.map(drop)
    }
}
