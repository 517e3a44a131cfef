//! Sessions people can manage (issue #21): one's own sessions with where they were opened and
//! when last used; ending one (one's own, or any user's for a platform admin); the idle timeout
//! beside the absolute one (`session_ttl`). Sessions are identified outside by a public id,
//! never by the cookie or its hash.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{DateTime, Utc};
use citydata_domain::principal::Principal;
use citydata_domain::user::Username;
use citydata_store::SessionInfo;

/// How often `last_seen_at` is written (at most), to keep requests cheap.
const TOUCH_EVERY_SECS: i64 = 60;

/// A session as listed.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// The id to end it with.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The absolute end (`session_ttl_hours` after login).
    pub expires_at: DateTime<Utc>,
    /// The client address at login.
    pub client: Option<String>,
    /// The browser or program (`User-Agent`) at login.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

fn view(s: SessionInfo, current: Option<&str>) -> Option<SessionView> {
    Some(SessionView {
        current: current.is_some_and(|c| c == s.id_hash),
        id: s.public_id?,
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        client: s.client,
        user_agent: s.user_agent,
    })
}

fn no_such(id: &str) -> CoreError {
    let id: String = id.chars().take(64).collect();
    CoreError::NotFound(format!("会话不存在或已结束：{id} / no such session: {id}"))
}

impl Core {
    /// Record where a new session was opened.
    pub(crate) async fn describe_new_session(&self, meta: &RequestMeta, id_hash: &str) -> Result<(), CoreError> {
        let public_id = uuid::Uuid::now_v7().simple().to_string();
        let ua: Option<String> = meta.user_agent.as_deref().map(|u| u.chars().take(200).collect());
        self.store.describe_session(id_hash, &public_id, meta.client.as_deref(), ua.as_deref(), Utc::now()).await?;
        Ok(())
    }

    /// The live session behind `id_hash`, ended here when idle too long; its last use is
    /// recorded at most once a minute.
    pub(crate) async fn live_session(&self, id_hash: &str) -> Result<Option<SessionInfo>, CoreError> {
        let now = Utc::now();
        let Some(s) = self.store.live_session(id_hash, now).await? else { return Ok(None) };
        let last = s.last_seen_at.unwrap_or(s.created_at);
        if let Some(idle) = self.config.session_idle
            && now - last > idle
        {
            self.store.delete_session(id_hash).await?;
            return Ok(None);
        }
        if (now - last).num_seconds() >= TOUCH_EVERY_SECS {
            self.store.touch_session(id_hash, now).await?;
        }
        Ok(Some(s))
    }

    /// The caller's sessions, or (platform admins) those of `user`. `current_cookie` marks the
    /// caller's own session.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        user: Option<&str>,
        current_cookie: Option<&str>,
    ) -> Result<Vec<SessionView>, CoreError> {
        let user_id = match user {
            None => principal.user_id,
            Some(_) if !principal.is_admin() => return Err(CoreError::forbidden()),
            Some(name) => {
                let u = Username::parse(name).map_err(|e| citydata_domain::FieldError { field: "user".into(), ..e })?;
                match self.store.get_user_by_username(&u).await? {
                    Some((u, _)) => u.id,
                    None => return Err(CoreError::NotFound(format!("用户不存在：{u} / no such user: {u}"))),
                }
            }
        };
        let current = current_cookie.map(crate::auth::sha256_hex);
        let list = self.store.list_user_sessions(user_id, Utc::now()).await?;
        Ok(list.into_iter().filter_map(|s| view(s, current.as_deref())).collect())
    }

    /// End session `id`: one's own, or any user's for a platform admin. Others' sessions are
    /// `not_found`, as unknown ones are.
    pub async fn end_session(&self, meta: &RequestMeta, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let result = async {
            let s = self.store.find_session(id).await?.ok_or_else(|| no_such(id))?;
            if s.user_id != principal.user_id && !principal.is_admin() {
                return Err(no_such(id));
            }
            self.store.delete_session(&s.id_hash).await?;
            Ok(s.user_id)
        }
        .await;
        let mut details = serde_json::Map::new();
        if let Ok(owner) = &result {
            details.insert("user_id".into(), owner.to_string().into());
        }
        let target = Some(format!("session:{}", id.chars().take(64).collect::<String>()));
        self.audited_with(meta, Actor::Principal(principal), "session.end", target, details, result).await.map(drop)
    }

    /// End every session of the caller except the one behind `current_cookie` ("sign out
    /// everywhere else"); returns how many ended.
    pub async fn end_other_sessions(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        current_cookie: Option<&str>,
    ) -> Result<u64, CoreError> {
        let keep = current_cookie.map(crate::auth::sha256_hex);
        let result = self.store.delete_user_sessions(principal.user_id, keep.as_deref()).await.map_err(CoreError::from);
        let mut details = serde_json::Map::new();
        if let Ok(n) = &result {
            details.insert("ended".into(), (*n).into());
        }
        let target = Some(format!("user:{}", principal.username));
        self.audited_with(meta, Actor::Principal(principal), "session.end_others", target, details, result).await
    }
}
