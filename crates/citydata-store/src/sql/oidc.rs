//! OpenID Connect links, sign-ins under way and provider sessions (issue #21).

use super::{Cols, Db, SqlBackend, SqlRow, foreign_key, sql, unique};
use crate::{NewUser, OidcIdentity, OidcStateRecord, OidcStore, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::user::Membership;
use uuid::Uuid;

fn state<R: SqlRow>(r: &Cols<'_, R>) -> Result<OidcStateRecord> {
    Ok(OidcStateRecord {
        state_hash: r.text("state_hash")?,
        provider: r.text("provider")?,
        nonce: r.text("nonce")?,
        pkce_verifier: r.text("pkce_verifier")?,
        next: r.text("next")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
    })
}

fn identity<R: SqlRow>(r: &Cols<'_, R>) -> Result<OidcIdentity> {
    Ok(OidcIdentity {
        issuer: r.text("issuer")?,
        subject: r.text("subject")?,
        provider: r.text("provider")?,
        user_id: r.uuid("user_id")?,
        roles_pinned: r.flag("roles_pinned")?,
        created_at: r.time("created_at")?,
        last_login_at: r.time("last_login_at")?,
    })
}

/// Replace a user's memberships inside `tx`.
async fn replace_memberships<B: SqlBackend>(
    db: &B,
    tx: &mut B::Tx,
    user_id: Uuid,
    memberships: &[Membership],
) -> Result<()> {
    db.tx_run(tx, sql("DELETE FROM memberships WHERE user_id = $1").bind(user_id)).await?;
    for (i, m) in memberships.iter().enumerate() {
        let q = sql("INSERT INTO memberships (user_id, department, role, position) VALUES ($1, $2, $3, $4)")
            .bind(user_id)
            .bind(m.department.as_str())
            .bind(m.role.as_str())
            .bind(i32::try_from(i).unwrap_or(i32::MAX));
        match db.execute(Some(tx), q).await {
            Ok(_) => {}
            Err(e) if foreign_key(&e) => return Err(StoreError::NotFound(format!("department {}", m.department))),
            Err(e) if unique(&e) => {
                return Err(StoreError::Conflict(format!("membership {} {}", m.department, m.role.as_str())));
            }
            Err(e) => return Err(B::error(e)),
        }
    }
    Ok(())
}

#[async_trait]
impl<B: SqlBackend> OidcStore for B {
    async fn put_oidc_state(&self, s: &OidcStateRecord) -> Result<()> {
        self.run(sql("DELETE FROM oidc_states WHERE expires_at <= $1").bind(s.created_at)).await?;
        let q =
            sql("INSERT INTO oidc_states (state_hash, provider, nonce, pkce_verifier, next, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(s.state_hash.as_str())
            .bind(s.provider.as_str())
            .bind(s.nonce.as_str())
            .bind(s.pkce_verifier.as_str())
            .bind(s.next.as_str())
            .bind(s.created_at)
            .bind(s.expires_at);
        self.run(q).await.map(drop)
    }

    async fn take_oidc_state(&self, state_hash: &str) -> Result<Option<OidcStateRecord>> {
        let q = sql("DELETE FROM oidc_states WHERE state_hash = $1 RETURNING *").bind(state_hash);
        self.map_one(q, "oidc_states", state).await
    }

    async fn find_oidc_identity(&self, issuer: &str, subject: &str) -> Result<Option<OidcIdentity>> {
        let q = sql("SELECT * FROM oidc_identities WHERE issuer = $1 AND subject = $2").bind(issuer).bind(subject);
        self.map_one(q, "oidc_identities", identity).await
    }

    async fn oidc_identity_of(&self, user_id: Uuid) -> Result<Option<OidcIdentity>> {
        let q = sql("SELECT * FROM oidc_identities WHERE user_id = $1").bind(user_id);
        self.map_one(q, "oidc_identities", identity).await
    }

    async fn create_oidc_user(&self, u: &NewUser, i: &OidcIdentity) -> Result<()> {
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
        replace_memberships(self, &mut tx, u.id, &u.memberships).await?;
        let q = sql("INSERT INTO oidc_identities \
                     (issuer, subject, provider, user_id, roles_pinned, created_at, last_login_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(i.issuer.as_str())
        .bind(i.subject.as_str())
        .bind(i.provider.as_str())
        .bind(u.id)
        .bind(i.roles_pinned)
        .bind(i.created_at)
        .bind(i.last_login_at);
        match self.execute(Some(&mut tx), q).await {
            Ok(_) => {}
            Err(e) if unique(&e) => return Err(StoreError::Conflict(format!("identity {}", i.subject))),
            Err(e) => return Err(B::error(e)),
        }
        self.tx_commit(tx).await
    }

    async fn refresh_oidc_user(
        &self,
        user_id: Uuid,
        display_name: &str,
        memberships: Option<&[Membership]>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        self.tx_run(&mut tx, sql("UPDATE users SET display_name = $1 WHERE id = $2").bind(display_name).bind(user_id))
            .await?;
        if let Some(m) = memberships {
            replace_memberships(self, &mut tx, user_id, m).await?;
        }
        self.tx_run(
            &mut tx,
            sql("UPDATE oidc_identities SET last_login_at = $1 WHERE user_id = $2").bind(at).bind(user_id),
        )
        .await?;
        self.tx_commit(tx).await
    }

    async fn pin_oidc_roles(&self, user_id: Uuid, memberships: &[Membership], pinned: bool) -> Result<()> {
        let mut tx = self.tx_begin().await?;
        replace_memberships(self, &mut tx, user_id, memberships).await?;
        let n = self
            .tx_run(
                &mut tx,
                sql("UPDATE oidc_identities SET roles_pinned = $1 WHERE user_id = $2").bind(pinned).bind(user_id),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("identity of {user_id}")));
        }
        self.tx_commit(tx).await
    }

    async fn put_oidc_session(&self, session_hash: &str, provider: &str, id_token: &str) -> Result<()> {
        let q = sql("INSERT INTO oidc_sessions (session_hash, provider, id_token) VALUES ($1, $2, $3)")
            .bind(session_hash)
            .bind(provider)
            .bind(id_token);
        self.run(q).await.map(drop)
    }

    async fn get_oidc_session(&self, session_hash: &str) -> Result<Option<(String, String)>> {
        let q = sql("SELECT provider, id_token FROM oidc_sessions WHERE session_hash = $1").bind(session_hash);
        self.map_one(q, "oidc_sessions", |r| Ok((r.text("provider")?, r.text("id_token")?))).await
    }
}
