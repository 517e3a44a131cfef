//! Rate counters: one row per (scope, window), taken by a compare-and-set `UPDATE`.

use super::{Db, SqlBackend, sql};
use crate::{RateStore, Result};
use async_trait::async_trait;

#[async_trait]
impl<B: SqlBackend> RateStore for B {
    async fn take_rate(&self, scope: &str, window: &str, until: &str, n: i64, limit: i64) -> Result<Option<i64>> {
        let seed = sql("INSERT INTO rate_counters (scope, win, until, used) VALUES ($1, $2, $3, 0) \
                        ON CONFLICT (scope, win) DO NOTHING")
        .bind(scope)
        .bind(window)
        .bind(until);
        self.run(seed).await?;
        let take = sql("UPDATE rate_counters SET used = used + $1 WHERE scope = $2 AND win = $3 AND used + $1 <= $4")
            .bind(n)
            .bind(scope)
            .bind(window)
            .bind(limit);
        if self.run(take).await? == 0 {
            return Ok(None);
        }
        let q = sql("SELECT CAST(used AS BIGINT) AS used FROM rate_counters WHERE scope = $1 AND win = $2")
            .bind(scope)
            .bind(window);
        Ok(self.map_one(q, "rate_counters", |r| r.i64("used")).await?)
    }

    async fn prune_rates(&self, before: &str) -> Result<u64> {
        self.run(sql("DELETE FROM rate_counters WHERE until < $1").bind(before)).await
    }

    async fn rate_live(&self, scope: &str, now: &str) -> Result<(i64, Option<String>)> {
        let q = sql("SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) AS used, MIN(until) AS until \
                     FROM rate_counters WHERE scope = $1 AND until > $2")
        .bind(scope)
        .bind(now);
        let got = self.map_one(q, "rate_counters", |r| Ok((r.i64("used")?, r.opt_text("until")?))).await?;
        Ok(got.unwrap_or((0, None)))
    }

    async fn clear_rate(&self, scope: &str) -> Result<()> {
        self.run(sql("DELETE FROM rate_counters WHERE scope = $1").bind(scope)).await.map(drop)
    }

    async fn take_slot(&self, scope: &str, slots: i64, now: &str, until: &str) -> Result<Option<i64>> {
        for slot in 0..slots.max(1) {
            let win = format!("slot:{slot}");
            let seed = sql("INSERT INTO rate_counters (scope, win, until, used) VALUES ($1, $2, $3, 0) \
                            ON CONFLICT (scope, win) DO NOTHING")
            .bind(scope)
            .bind(&win)
            .bind(now);
            self.run(seed).await?;
            // Compare-and-set: only one node's UPDATE finds the slot free.
            let take = sql("UPDATE rate_counters SET used = 1, until = $1 \
                            WHERE scope = $2 AND win = $3 AND (used = 0 OR until < $4)")
            .bind(until)
            .bind(scope)
            .bind(&win)
            .bind(now);
            if self.run(take).await? == 1 {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    async fn give_slot(&self, scope: &str, slot: i64, until: &str) -> Result<()> {
        let q = sql("UPDATE rate_counters SET used = 0 WHERE scope = $1 AND win = $2 AND until = $3")
            .bind(scope)
            .bind(format!("slot:{slot}"))
            .bind(until);
        self.run(q).await.map(drop)
    }
}
