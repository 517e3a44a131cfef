//! A set of key hashes for uniqueness checks over millions of rows.
//!
//! One `HashSet<u64>` of 14 million keys doubled from 75 MB to 151 MB while the ingest ran,
//! holding both tables during the move (an ingest's memory peak). The set here is 256 shards,
//! each growing on its own, so a move holds one shard twice, not the whole set. The values
//! are already hashes: they are mixed with one multiplication instead of being hashed again
//! with SipHash.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

const SHARDS: usize = 256;

/// A hasher for values that are already hashes: one multiplication to spread the bits the
/// table indexes by (the shard took the top eight).
#[derive(Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = HashSet<u64, BuildHasherDefault<MixHasher>>;

/// Key hashes in 256 shards ([`crate::convert::key_hash`] values).
#[derive(Clone)]
pub struct KeySet {
    shards: Vec<Shard>,
}

impl Default for KeySet {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Shard::default()).collect() }
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.len())
    }
}

impl KeySet {
    fn shard(h: u64) -> usize {
        (h >> 56) as usize
    }
    /// `true` when `h` was not in the set.
    pub fn insert(&mut self, h: u64) -> bool {
        self.shards[Self::shard(h)].insert(h)
    }
    pub fn contains(&self, h: &u64) -> bool {
        self.shards[Self::shard(*h)].contains(h)
    }
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashSet::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashSet::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_and_lookups_agree_with_a_hash_set() {
        let mut ours = KeySet::default();
        let mut std_set = HashSet::new();
        let mut x: u64 = 0x1234_5678;
        for i in 0..200_000u64 {
            // A mix of spread values and values that differ only in their low or high bits.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = match i % 3 {
                0 => x,
                1 => i,
                _ => i << 56,
            };
            assert_eq!(ours.insert(v), std_set.insert(v), "insert {v}");
        }
        assert_eq!(ours.len(), std_set.len());
        for v in std_set.iter().take(10_000) {
            assert!(ours.contains(v));
        }
        assert!(!ours.contains(&0xdead_beef_dead_beef) || std_set.contains(&0xdead_beef_dead_beef));
        assert!(!ours.is_empty());
    }
}
