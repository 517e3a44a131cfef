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
