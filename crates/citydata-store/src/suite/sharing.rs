//! Delta Sharing profiles: their own table, never found as API tokens and the reverse.

use super::new_user;
use crate::{Store, TokenRecord};
use chrono::{Duration, SubsecRound, Utc};
use std::sync::Arc;
use uuid::Uuid;

pub async fn sharing_profiles(s: Arc<dyn Store>) {
    let a = new_user("alice", vec![]);
    let b = new_user("bob", vec![]);
    s.create_user(&a).await.unwrap();
    s.create_user(&b).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let p = TokenRecord {
        id: Uuid::new_v4(),
        user_id: a.id,
        name: "pandas".into(),
        prefix: "cds_abcdef".into(),
        secret_hash: "shp".into(),
        created_at: now,
        expires_at: Some(now + Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
        scopes: None,
        resources: None,
    };
    s.create_sharing_profile(&p).await.unwrap();
    assert_eq!(s.get_sharing_profile_by_hash("shp").await.unwrap(), Some(p.clone()));
    assert_eq!(s.get_token_by_hash("shp").await.unwrap(), None, "a profile is no API token");
    assert_eq!(s.list_sharing_profiles(a.id).await.unwrap(), vec![p.clone()]);
    assert!(s.list_sharing_profiles(b.id).await.unwrap().is_empty());
    assert!(s.list_tokens(a.id).await.unwrap().is_empty());
    assert!(!s.revoke_sharing_profile(b.id, p.id, now).await.unwrap(), "another user's profile stays");
    s.touch_sharing_profile(p.id, now).await.unwrap();
    assert!(s.revoke_sharing_profile(a.id, p.id, now).await.unwrap());
    assert!(!s.revoke_sharing_profile(a.id, p.id, now).await.unwrap(), "revoking twice reports false");
    let got = s.get_sharing_profile_by_hash("shp").await.unwrap().unwrap();
    assert_eq!((got.revoked_at, got.last_used_at), (Some(now), Some(now)));
}
