//! Service accounts (issue #21).

use super::{dept, member, new_user};
use crate::{Store, StoreError};
use citydata_domain::user::Role;
use std::sync::Arc;

pub async fn service_accounts(s: Arc<dyn Store>) {
    s.create_department(&dept("wjw", None)).await.unwrap();
    let u = new_user("wjw-etl", vec![member("wjw", Role::Analyst)]);
    s.create_service_account(&u, "夜间同步", "wjw-admin").await.unwrap();
    let got = s.get_service_account(u.id).await.unwrap().unwrap();
    assert_eq!(
        (got.username.as_str(), got.department.as_str(), got.created_by.as_str()),
        ("wjw-etl", "wjw", "wjw-admin")
    );
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().memberships.len(), 1, "a user with its membership");
    assert_eq!(s.list_service_accounts(Some("wjw")).await.unwrap().len(), 1);
    assert!(s.list_service_accounts(Some("gaj")).await.unwrap().is_empty());
    let again = new_user("wjw-etl", vec![member("wjw", Role::Analyst)]);
    assert!(matches!(s.create_service_account(&again, "", "x").await, Err(StoreError::Conflict(_))));
    // An unknown department writes nothing: no half-made user is left behind.
    let lost = new_user("lost-etl", vec![member("nope", Role::Analyst)]);
    assert!(matches!(s.create_service_account(&lost, "", "x").await, Err(StoreError::NotFound(_))));
    assert!(s.get_user_by_username(&lost.username).await.unwrap().is_none());
    // An ordinary user is no service account.
    let person = new_user("person", vec![]);
    s.create_user(&person).await.unwrap();
    assert!(s.get_service_account(person.id).await.unwrap().is_none());
}

pub async fn session_details(s: Arc<dyn Store>) {
    use crate::SessionRecord;
    use chrono::{Duration, SubsecRound, Utc};
    let u = new_user("walker", vec![]);
    s.create_user(&u).await.unwrap();
    let now = Utc::now().trunc_subsecs(6);
    let rec = |h: &str, exp| SessionRecord { id_hash: h.into(), user_id: u.id, created_at: now, expires_at: exp };
    s.create_session(&rec("h1", now + Duration::hours(1))).await.unwrap();
    s.create_session(&rec("h2", now + Duration::hours(1))).await.unwrap();
    s.create_session(&rec("h3", now - Duration::hours(1))).await.unwrap();
    s.describe_session("h1", "p1", Some("10.0.0.1"), Some("Firefox"), now).await.unwrap();
    s.describe_session("h2", "p2", None, None, now + Duration::minutes(5)).await.unwrap();
    let got = s.live_session("h1", now).await.unwrap().unwrap();
    assert_eq!(
        (got.public_id.as_deref(), got.client.as_deref(), got.user_agent.as_deref()),
        (Some("p1"), Some("10.0.0.1"), Some("Firefox"))
    );
    assert_eq!(got.last_seen_at, Some(now));
    assert!(s.live_session("h3", now).await.unwrap().is_none(), "expired");
    let list = s.list_user_sessions(u.id, now).await.unwrap();
    assert_eq!(
        list.iter().map(|x| x.id_hash.as_str()).collect::<Vec<_>>(),
        ["h2", "h1"],
        "most recent first, live only"
    );
    s.touch_session("h1", now + Duration::minutes(10)).await.unwrap();
    assert_eq!(s.list_user_sessions(u.id, now).await.unwrap()[0].id_hash, "h1");
    assert_eq!(s.find_session("p2").await.unwrap().unwrap().id_hash, "h2");
    assert!(s.find_session("nope").await.unwrap().is_none());
}
