//! The shared storage suite on PostgreSQL, each test in a fresh database. Runs only when
//! `CITYDATA_TEST_DATABASE_URL` names a server where the role may create databases.

use citydata_store::{AuditStore, Store};
use citydata_store_postgres::{PostgresStore, testing};
use std::sync::Arc;

async fn fresh() -> Option<(Arc<dyn Store>, ())> {
    let Some(admin_url) = testing::admin_url() else {
        eprintln!("skipped: set CITYDATA_TEST_DATABASE_URL to run the PostgreSQL suite");
        return None;
    };
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
    let Some(admin_url) = testing::admin_url() else { return };
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
