//! The shared storage suite on PostgreSQL, each test in a fresh database. Runs when
//! `CITYDATA_TEST_DATABASE_URL` names a server where the role may create databases; skips
//! without it, except under `CI=true`, where it fails (see `testing::admin_url_or_skip`).

use citydata_store::{AuditStore, Store};
use citydata_store_postgres::{PostgresStore, testing};
use std::sync::Arc;

async fn fresh() -> Option<(Arc<dyn Store>, ())> {
    let admin_url = testing::admin_url_or_skip("the PostgreSQL store suite")?;
    let url = testing::create_database(&admin_url).await.expect("create test database");
    let store = PostgresStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    Some((Arc::new(store), ()))
}

citydata_store::store_suite!(fresh);

/// Two stores on one database stand for two server processes: their appends interleave
/// and the chain still never forks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_appends_from_two_processes_serialize() {
    let Some(admin_url) = testing::admin_url_or_skip("audit_appends_from_two_processes_serialize") else { return };
    let url = testing::create_database(&admin_url).await.unwrap();
    let a = Arc::new(PostgresStore::connect(&url).await.unwrap());
    a.migrate().await.unwrap();
    let b = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let mut tasks = Vec::new();
    for (n, s) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let mut e = citydata_domain::audit::AuditEvent::new(
                    "test.append",
                    citydata_domain::audit::Outcome::Success,
                    chrono::Utc::now(),
                );
                e.actor = Some(format!("p{n}-{i}"));
                s.append_audit(&e).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut v = citydata_domain::audit::ChainVerifier::new();
    for e in a.audit_after(0, 1000).await.unwrap() {
        v.push(&e).unwrap();
    }
    let head = b.audit_head().await.unwrap();
    assert_eq!(v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))).unwrap(), 200);
}

/// A row that does not decode is `StoreError::Corrupt` naming its table and column, never a
/// panic and never the SQL.
#[tokio::test]
async fn corrupt_rows_are_store_error_corrupt() {
    use citydata_store::{DepartmentStore, StoreError, WebhookStore};
    let Some(admin_url) = testing::admin_url_or_skip("corrupt_rows_are_store_error_corrupt") else { return };
    let store = PostgresStore::connect(&testing::create_database(&admin_url).await.unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    let pool = store.pool();
    let corrupt = |r: Result<(), StoreError>, column: &str| match r {
        Err(StoreError::Corrupt(m)) => assert!(m.starts_with(column), "{m}"),
        other => panic!("expected Corrupt naming {column}, got {other:?}"),
    };
    sqlx::query("INSERT INTO departments (code, name, region_code, level) VALUES ('gaj', '公安局', '321200', 'city')")
        .execute(pool)
        .await
        .unwrap();
    let wid = uuid::Uuid::from_u128(2);
    sqlx::query("INSERT INTO webhooks (id, department, url, secret, events, created_by, created_at) VALUES ($1, 'gaj', 'https://x', 's', 'not json', 'u1', now())")
        .bind(wid)
        .execute(pool)
        .await
        .unwrap();
    corrupt(store.get_webhook(wid).await.map(drop), "webhooks.events");
    sqlx::query("INSERT INTO departments (code, name, region_code, level) VALUES ('GAJ !', '坏', '321200', 'city')")
        .execute(pool)
        .await
        .unwrap();
    corrupt(store.list_departments().await.map(drop), "departments.code");
}
