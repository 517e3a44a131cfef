//! The shared storage suite on SQLite, each test on a fresh database file.

use citydata_store::Store;
use citydata_store_sqlite::SqliteStore;
use std::sync::Arc;

async fn fresh() -> Option<(Arc<dyn Store>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some((Arc::new(store), dir))
}

citydata_store::store_suite!(fresh);

/// A row that does not decode is `StoreError::Corrupt` naming its table and column, never a
/// panic and never the SQL.
#[tokio::test]
async fn corrupt_rows_are_store_error_corrupt() {
    use citydata_store::{DepartmentStore, StoreError, UserStore, WebhookStore};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("meta.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    let pool = store.pool();
    let corrupt = |r: Result<(), StoreError>, column: &str| match r {
        Err(StoreError::Corrupt(m)) => assert!(m.starts_with(column), "{m}"),
        other => panic!("expected Corrupt naming {column}, got {other:?}"),
    };
    sqlx::query("INSERT INTO departments (code, name, region_code, level, created_at) VALUES ('gaj', '公安局', '321200', 'city', 0)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users (id, username, display_name, password_hash, disabled, created_at) VALUES ('not-a-uuid', 'u1', 'U', 'h', 0, 0)")
        .execute(pool)
        .await
        .unwrap();
    corrupt(store.list_users().await.map(drop), "users.id");
    sqlx::query("UPDATE users SET id = '00000000-0000-0000-0000-000000000001', created_at = 'yesterday'")
        .execute(pool)
        .await
        .unwrap();
    let wid = "00000000-0000-0000-0000-000000000002";
    sqlx::query("INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) VALUES (?, 'gaj', 'https://x', 's', 'not json', 'u1', 0)")
        .bind(wid)
        .execute(pool)
        .await
        .unwrap();
    corrupt(store.get_webhook(wid.parse().unwrap()).await.map(drop), "webhooks.events");
    sqlx::query("UPDATE webhooks SET events = '[]', created_at = 'noon'").execute(pool).await.unwrap();
    corrupt(store.list_webhooks(None).await.map(drop), "webhooks.created_at");
    sqlx::query("INSERT INTO departments (code, name, region_code, level, created_at) VALUES ('GAJ !', '坏', '321200', 'city', 0)")
        .execute(pool)
        .await
        .unwrap();
    corrupt(store.list_departments().await.map(drop), "departments.code");
}
