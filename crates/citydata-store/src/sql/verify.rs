//! Verification grants' terms and quota counters. Taking quota is one compare-and-set
//! `UPDATE` (`used + n <= limit`), so concurrent batches on any number of nodes never exceed it.

use super::{Cols, Db, SqlBackend, SqlRow, sql};
use crate::{GrantRecord, Result, VerifyStore, VerifyTermsRecord};
use async_trait::async_trait;
use uuid::Uuid;

fn terms<R: SqlRow>(r: &Cols<'_, R>) -> Result<VerifyTermsRecord> {
    Ok(VerifyTermsRecord {
        grant_id: r.uuid("grant_id")?,
        daily_quota: r.i64("daily_quota")?,
        max_batch: r.i64("max_batch")?,
    })
}

#[async_trait]
impl<B: SqlBackend> VerifyStore for B {
    async fn create_verify_terms(&self, t: &VerifyTermsRecord) -> Result<()> {
        let q = sql("INSERT INTO verify_grants (grant_id, daily_quota, max_batch) VALUES ($1, $2, $3)")
            .bind(t.grant_id)
            .bind(t.daily_quota)
            .bind(t.max_batch);
        self.run(q).await.map(drop)
    }

    async fn verify_terms(&self, grant_id: Uuid) -> Result<Option<VerifyTermsRecord>> {
        let q =
            sql("SELECT grant_id, CAST(daily_quota AS BIGINT) AS daily_quota, CAST(max_batch AS BIGINT) AS max_batch \
                     FROM verify_grants WHERE grant_id = $1")
            .bind(grant_id);
        self.map_one(q, "verify_grants", terms).await
    }

    async fn verify_grants_for_resource(&self, resource_id: Uuid) -> Result<Vec<GrantRecord>> {
        let q = sql("SELECT * FROM grants WHERE resource_id = $1 AND id IN (SELECT grant_id FROM verify_grants) \
                     ORDER BY created_at DESC")
        .bind(resource_id);
        self.map(q, "grants", super::grants::grant).await
    }

    async fn take_verify_quota(&self, scope: &str, day: &str, n: i64, limit: i64) -> Result<Option<i64>> {
        let seed =
            sql("INSERT INTO verify_usage (scope, day, used) VALUES ($1, $2, 0) ON CONFLICT (scope, day) DO NOTHING")
                .bind(scope)
                .bind(day);
        self.run(seed).await?;
        let take = sql("UPDATE verify_usage SET used = used + $1 WHERE scope = $2 AND day = $3 AND used + $1 <= $4")
            .bind(n)
            .bind(scope)
            .bind(day)
            .bind(limit);
        if self.run(take).await? == 0 {
            return Ok(None);
        }
        let q = sql("SELECT CAST(used AS BIGINT) AS used FROM verify_usage WHERE scope = $1 AND day = $2")
            .bind(scope)
            .bind(day);
        Ok(self.map_one(q, "verify_usage", |r| r.i64("used")).await?)
    }

    async fn mark_verify_request(&self, request_id: Uuid) -> Result<()> {
        self.run(sql("INSERT INTO verify_requests (request_id) VALUES ($1)").bind(request_id)).await.map(drop)
    }

    async fn is_verify_request(&self, request_id: Uuid) -> Result<bool> {
        let q = sql("SELECT COUNT(*) AS n FROM verify_requests WHERE request_id = $1").bind(request_id);
        Ok(self.count(q, "verify_requests").await? > 0)
    }

    async fn return_verify_quota(&self, scope: &str, day: &str, n: i64) -> Result<()> {
        let q =
            sql("UPDATE verify_usage SET used = used - $1 WHERE scope = $2 AND day = $3").bind(n).bind(scope).bind(day);
        self.run(q).await.map(drop)
    }
}
