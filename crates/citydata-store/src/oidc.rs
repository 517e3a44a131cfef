//! 统一身份认证 (OpenID Connect sign-in): accounts linked to a provider by (issuer, subject),
//! sign-ins under way (state, nonce, PKCE verifier; each taken once), and the ID token of a
//! session a provider opened (for RP-initiated logout).

use crate::{NewUser, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use citydata_domain::user::Membership;
use uuid::Uuid;

/// A sign-in under way, keyed by the SHA-256 of its `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcStateRecord {
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The local path to go to after signing in.
    pub next: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The link between a local account and a provider's subject.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
    pub provider: String,
    pub user_id: Uuid,
    /// A department admin fixed the roles: sign-ins leave the memberships alone.
    pub roles_pinned: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Keep a sign-in under way (and forget the expired ones).
    async fn put_oidc_state(&self, s: &OidcStateRecord) -> Result<()>;
    /// Take a sign-in under way: it is deleted in the same statement, so a second take of the
    /// same state finds nothing.
    async fn take_oidc_state(&self, state_hash: &str) -> Result<Option<OidcStateRecord>>;
    async fn find_oidc_identity(&self, issuer: &str, subject: &str) -> Result<Option<OidcIdentity>>;
    async fn oidc_identity_of(&self, user_id: Uuid) -> Result<Option<OidcIdentity>>;
    /// Insert the user (with its memberships) and its link in one transaction.
    async fn create_oidc_user(&self, user: &NewUser, identity: &OidcIdentity) -> Result<()>;
    /// At a sign-in: the display name, the memberships when `Some` (claims govern), and when.
    async fn refresh_oidc_user(
        &self,
        user_id: Uuid,
        display_name: &str,
        memberships: Option<&[Membership]>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Replace the memberships and set whether they are pinned, in one transaction.
    async fn pin_oidc_roles(&self, user_id: Uuid, memberships: &[Membership], pinned: bool) -> Result<()>;
    async fn put_oidc_session(&self, session_hash: &str, provider: &str, id_token: &str) -> Result<()>;
    /// The provider and ID token of a session a provider opened.
    async fn get_oidc_session(&self, session_hash: &str) -> Result<Option<(String, String)>>;
}
