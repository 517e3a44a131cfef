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
