//! Concurrency slots shared by every node (the per-user SQL statements).

use crate::Store;
use std::sync::Arc;

pub async fn concurrency_slots(store: Arc<dyn Store>) {
    let now = "2026-12-04T10:00:00.000000Z";
    let lease = "2026-12-04T10:01:00.000000Z";
    // Two slots: two holders get slots 0 and 1, a third is refused.
    assert_eq!(store.take_slot("sql:u", 2, now, lease).await.unwrap(), Some(0));
    assert_eq!(store.take_slot("sql:u", 2, now, "2026-12-04T10:01:00.000001Z").await.unwrap(), Some(1));
    assert_eq!(store.take_slot("sql:u", 2, now, lease).await.unwrap(), None);
    // Another scope (user) is not affected.
    assert_eq!(store.take_slot("sql:v", 2, now, lease).await.unwrap(), Some(0));
    // Giving back with another holder's token frees nothing; with its own, the slot is free.
    store.give_slot("sql:u", 0, "2026-12-04T10:01:00.000001Z").await.unwrap();
    assert_eq!(store.take_slot("sql:u", 2, now, lease).await.unwrap(), None);
    store.give_slot("sql:u", 0, lease).await.unwrap();
    let next = "2026-12-04T10:02:00.000000Z";
    assert_eq!(store.take_slot("sql:u", 2, now, next).await.unwrap(), Some(0));
    // A holder that died: its lease ends, and the slot is taken over.
    let later = "2026-12-04T10:01:30.000000Z";
    assert_eq!(store.take_slot("sql:u", 2, later, "2026-12-04T10:02:30.000000Z").await.unwrap(), Some(1));
    assert_eq!(store.take_slot("sql:u", 2, later, "2026-12-04T10:02:30.000000Z").await.unwrap(), None);
    // Concurrent takers on the last free slot: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.take_slot("sql:w", 1, now, &format!("2026-12-04T10:01:00.00000{i}Z")).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
}
