//! TOTP secrets and recovery codes (issue #21).

use super::{Cols, Db, SqlBackend, SqlRow, sql};
use crate::{Result, StoreError, TotpRecord, TotpStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

fn record<R: SqlRow>(r: &Cols<'_, R>) -> Result<TotpRecord> {
    Ok(TotpRecord {
        user_id: r.uuid("user_id")?,
        secret: r.text("secret")?,
        created_at: r.time("created_at")?,
        confirmed_at: r.opt_time("confirmed_at")?,
        last_step: r.opt_i64("last_step")?,
    })
}

#[async_trait]
impl<B: SqlBackend> TotpStore for B {
    async fn put_totp_secret(&self, user_id: Uuid, sealed: &str, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        let n = self
            .tx_run(&mut tx, sql("DELETE FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NULL").bind(user_id))
            .await?;
        let _ = n;
        let q = sql("INSERT INTO totp_secrets (user_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(sealed)
            .bind(at);
        match self.execute(Some(&mut tx), q).await {
            Ok(_) => {}
            Err(e) if super::unique(&e) => return Err(StoreError::Conflict("totp".into())),
            Err(e) => return Err(B::error(e)),
        }
        self.tx_commit(tx).await
    }

    async fn get_totp(&self, user_id: Uuid) -> Result<Option<TotpRecord>> {
        self.map_one(sql("SELECT * FROM totp_secrets WHERE user_id = $1").bind(user_id), "totp_secrets", record).await
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        let n = self
            .tx_run(
                &mut tx,
                sql("UPDATE totp_secrets SET confirmed_at = $1, last_step = $2 \
                     WHERE user_id = $3 AND confirmed_at IS NULL")
                .bind(at)
                .bind(step)
                .bind(user_id),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict("totp".into()));
        }
        self.tx_run(&mut tx, sql("DELETE FROM totp_recovery_codes WHERE user_id = $1").bind(user_id)).await?;
        for h in recovery_hashes {
            self.tx_run(
                &mut tx,
                sql("INSERT INTO totp_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(h.as_str()),
            )
            .await?;
        }
        self.tx_commit(tx).await
    }

    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool> {
        let q = sql("UPDATE totp_secrets SET last_step = $1 \
                     WHERE user_id = $2 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $1)")
        .bind(step)
        .bind(user_id);
        Ok(self.run(q).await? == 1)
    }

    async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<Vec<String>> {
        let q =
            sql("SELECT code_hash FROM totp_recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY code_hash")
                .bind(user_id);
        self.map(q, "totp_recovery_codes", |r| r.text("code_hash")).await
    }

    async fn use_recovery_code(&self, user_id: Uuid, code_hash: &str, at: DateTime<Utc>) -> Result<bool> {
        let q = sql("UPDATE totp_recovery_codes SET used_at = $1 \
                     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL")
        .bind(at)
        .bind(user_id)
        .bind(code_hash);
        Ok(self.run(q).await? == 1)
    }
}
