//! The published catalog's records cached in memory for the metadata reads (`GET
//! /api/v1/resources/{id}`), so a read of a resource's elements touches no database.
//!
//! Correctness rests on the catalog change sequence (`catalog_changes`), which every write of a
//! resource row appends to in the same transaction:
//! - this node's own catalog writes end in [`Core::sync_search`], which empties the cache before
//!   it answers, so a caller reads its own writes;
//! - writes by other nodes or the command line are seen by comparing the sequence's last value
//!   with the one the cache was filled under, at most [`RECHECK`] apart: another node's change
//!   shows here within that time (the search index follows the same sequence).
//!
//! An entry read from the store is kept only if no invalidation happened while it was being
//! read (the generation counter), so a record read before a change can never be stored after
//! the change emptied the cache.
//!
//! The cache holds records, not answers: who may see a record is decided on every request, in
//! memory, exactly as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citydata_domain::resource::Resource;
use citydata_store::HarvestRecord;

use crate::{Core, CoreError};

/// How long this node trusts the cache before asking the database for the change sequence.
pub const RECHECK: Duration = Duration::from_secs(1);

/// At most this many keys are cached; past it the cache starts again empty (a catalog of a
/// city is a few tens of thousands of resources; keys are ids, codes and slugs).
const MAX_KEYS: usize = 50_000;

pub struct CatalogCache<T = Cached> {
    state: Mutex<State<T>>,
}

impl<T> Default for CatalogCache<T> {
    fn default() -> Self {
        Self { state: Mutex::new(State { seq: 0, checked: None, generation: 0, by_key: HashMap::new() }) }
    }
}

struct State<T> {
    /// The last catalog change the entries are known to include.
    seq: i64,
    /// When `seq` was read from the database (`None`: never, or forgotten).
    checked: Option<Instant>,
    /// Bumped by every invalidation; an insert carries the generation it started under.
    generation: u64,
    by_key: HashMap<String, Arc<T>>,
}

/// A resource record and where it was harvested from.
pub struct Cached {
    pub resource: Resource,
    pub origin: Option<HarvestRecord>,
}

impl<T> CatalogCache<T> {
    /// Forget everything (this node changed the catalog).
    pub fn invalidate(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.generation += 1;
            s.by_key.clear();
            s.checked = None;
        }
    }

    fn lookup(&self, key: &str) -> (u64, Option<Arc<T>>, bool) {
        let Ok(s) = self.state.lock() else { return (0, None, true) };
        let stale = s.checked.is_none_or(|at| at.elapsed() >= RECHECK);
        (s.generation, s.by_key.get(key).cloned(), stale)
    }

    /// The database's sequence is `seq`: drop everything if it moved.
    fn checked(&self, seq: i64) {
        if let Ok(mut s) = self.state.lock() {
            if s.seq != seq {
                s.seq = seq;
                s.generation += 1;
                s.by_key.clear();
            }
            s.checked = Some(Instant::now());
        }
    }

    fn insert(&self, generation: u64, key: &str, entry: Arc<T>) {
        if let Ok(mut s) = self.state.lock()
            && s.generation == generation
        {
            if s.by_key.len() >= MAX_KEYS {
                s.by_key.clear();
            }
            s.by_key.insert(key.to_string(), entry);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map(|s| s.by_key.len()).unwrap_or(0)
    }
}

impl Core {
    /// A resource's record and origin by UUID, code or slug, from the cache when it is current
    /// (`None`: no such resource). Visibility is the caller's business.
    pub(crate) async fn cached_resource(&self, key: &str) -> Result<Option<Arc<Cached>>, CoreError> {
        let cache = &self.catalog_cache;
        let (mut generation, hit, stale) = cache.lookup(key);
        if stale {
            cache.checked(self.store.last_catalog_change().await?);
            let (g, hit, _) = cache.lookup(key);
            generation = g;
            if let Some(hit) = hit {
                return Ok(Some(hit));
            }
        } else if let Some(hit) = hit {
            return Ok(Some(hit));
        }
        let Some(resource) = self.store.find_resource(key).await? else { return Ok(None) };
        let origin = self.store.harvest_origin(resource.id).await?;
        let entry = Arc::new(Cached { resource, origin });
        cache.insert(generation, key, entry.clone());
        Ok(Some(entry))
    }

    /// Forget cached catalog records (after a change on this node).
    pub(crate) fn forget_catalog_records(&self) {
        self.catalog_cache.invalidate();
    }

    /// The records cached for `id` (tests).
    #[doc(hidden)]
    pub fn catalog_cache_holds(&self, key: &str) -> bool {
        self.catalog_cache.lookup(key).1.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Arc<String> {
        Arc::new("record".to_string())
    }

    #[test]
    fn an_entry_read_before_an_invalidation_is_not_kept() {
        let c = CatalogCache::<String>::default();
        let (g, _, _) = c.lookup("a");
        c.invalidate();
        c.insert(g, "a", entry());
        assert_eq!(c.len(), 0);
        let (g, _, _) = c.lookup("a");
        c.insert(g, "a", entry());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_moved_sequence_empties_the_cache() {
        let c = CatalogCache::<String>::default();
        c.checked(5);
        let (g, _, stale) = c.lookup("a");
        assert!(!stale);
        c.insert(g, "a", entry());
        c.checked(5);
        assert_eq!(c.len(), 1);
        c.checked(6);
        assert_eq!(c.len(), 0);
    }
}
