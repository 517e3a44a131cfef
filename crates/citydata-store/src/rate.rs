//! Rate counters shared by every node (issue #23): requests per scope (a client address, a
//! user) and window (a second, a minute, a day), taken by one compare-and-set `UPDATE`, so that
//! N nodes on one database allow the limit once, not N times.

use crate::Result;
use async_trait::async_trait;

#[async_trait]
pub trait RateStore: Send + Sync {
    /// Add `n` to the count of `scope` in `window` if it stays within `limit`: the count after,
    /// or `None` (nothing added) when it would exceed the limit. `until` is when the window
    /// ends (RFC 3339, UTC), for [`RateStore::prune_rates`].
    async fn take_rate(&self, scope: &str, window: &str, until: &str, n: i64, limit: i64) -> Result<Option<i64>>;
    /// Forget the windows that ended before `before` (RFC 3339, UTC); the number removed.
    async fn prune_rates(&self, before: &str) -> Result<u64>;
    /// The sum of `scope`'s windows that end after `now` (RFC 3339, UTC), and the earliest of
    /// their ends: a sliding window made of short fixed ones (the login throttle).
    async fn rate_live(&self, scope: &str, now: &str) -> Result<(i64, Option<String>)>;
    /// Forget every window of `scope` (a successful login clears its failures).
    async fn clear_rate(&self, scope: &str) -> Result<()>;
    /// Take one of `slots` concurrency slots of `scope` (the per-user SQL statements), shared by
    /// every node: a slot is free when no one holds it or its holder's lease ended before `now`
    /// (a node that died mid-statement). The slot's number, or `None` when all are held.
    /// `until` (RFC 3339 with microseconds, UTC) is the lease's end and the holder's token for
    /// [`RateStore::give_slot`].
    async fn take_slot(&self, scope: &str, slots: i64, now: &str, until: &str) -> Result<Option<i64>>;
    /// Give back a slot taken by [`RateStore::take_slot`] with that `until`.
    async fn give_slot(&self, scope: &str, slot: i64, until: &str) -> Result<()>;
}
