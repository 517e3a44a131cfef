//! A set of key hashes for uniqueness checks over millions of rows.
//!
//! An ingest holds one hash per key of its file until the file is read (and, for an append,
//! one per key already in the table). A hash table of 14,000,000 64-bit hashes holds 16.8
//! million buckets of 9 bytes (151 MB), and doubles to 302 MB a little further on: it was the
//! largest part of an ingest's memory peak. Here the top 16 bits of a hash choose one of 65,536
//! shards, and a shard keeps the other 48 bits in a sorted array of 6-byte values grown by an
//! eighth at a time: about 6.5 bytes a key (93 MB for 14,000,000) with no doubling step. A
//! shard of 14,000,000 keys holds about 220 values, so an insertion is a binary search and a
//! move of a few hundred bytes.
//!
//! The hashes are not secret, so a caller could craft keys that all fall into one shard and
//! make every insertion move the whole shard. A shard that grows past [`SORTED_MAX`] values
//! becomes a hash table, which keeps each insertion O(1) whatever the keys.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

const SHARD_BITS: u32 = 16;
const SHARDS: usize = 1 << SHARD_BITS;
/// Values a sorted shard holds before it becomes a hash table (about 60 times the mean shard
/// of a 14,000,000-key file).
const SORTED_MAX: usize = 16_384;

/// A hasher for values that are already hashes: one multiplication to spread the bits the
/// table indexes by.
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
    /// Arrow's 16-byte string views ([`crate::group_count`]): both halves folded, then mixed.
    fn write_u128(&mut self, v: u128) {
        self.write_u64((v as u64) ^ ((v >> 64) as u64).rotate_left(29));
    }
}

/// The low 48 bits of a hash, big-endian (so byte order is numeric order).
type Low = [u8; 6];

#[derive(Clone)]
enum Shard {
    Sorted(Vec<Low>),
    Hashed(HashSet<Low, BuildHasherDefault<MixHasher>>),
}

/// Key hashes ([`crate::convert::key_hash`] values) in 65,536 shards.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Empty until the first insertion (a converter that never sees a key allocates nothing).
    shards: Vec<Shard>,
    len: usize,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.len())
    }
}

fn split(h: u64) -> (usize, Low) {
    let b = h.to_be_bytes();
    ((h >> (64 - SHARD_BITS)) as usize, [b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl KeySet {
    /// `true` when `h` was not in the set.
    pub fn insert(&mut self, h: u64) -> bool {
        if self.shards.is_empty() {
            self.shards = vec![Shard::Sorted(Vec::new()); SHARDS];
        }
        let (s, low) = split(h);
        let added = match &mut self.shards[s] {
            Shard::Hashed(set) => set.insert(low),
            Shard::Sorted(v) => match v.binary_search(&low) {
                Ok(_) => false,
                Err(at) => {
                    if v.len() == SORTED_MAX {
                        let mut set: HashSet<Low, BuildHasherDefault<MixHasher>> =
                            HashSet::with_capacity_and_hasher(SORTED_MAX * 2, Default::default());
                        set.extend(v.iter().copied());
                        set.insert(low);
                        self.shards[s] = Shard::Hashed(set);
                    } else {
                        if v.len() == v.capacity() {
                            // An eighth at a time: at most 12.5% of a shard unused.
                            v.reserve_exact((v.len() / 8).max(4));
                        }
                        v.insert(at, low);
                    }
                    true
                }
            },
        };
        self.len += usize::from(added);
        added
    }

    pub fn contains(&self, h: &u64) -> bool {
        if self.shards.is_empty() {
            return false;
        }
        let (s, low) = split(*h);
        match &self.shards[s] {
            Shard::Sorted(v) => v.binary_search(&low).is_ok(),
            Shard::Hashed(set) => set.contains(&low),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_and_lookups_agree_with_a_hash_set() {
        let mut ours = KeySet::default();
        assert!(!ours.contains(&7) && ours.is_empty());
        let mut std_set = HashSet::new();
        let mut x: u64 = 0x1234_5678;
        for i in 0..200_000u64 {
            // A mix of spread values and values that differ only in their low or high bits.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = match i % 4 {
                0 => x,
                1 => i,
                2 => i << 56,
                _ => (i % 1000) << 40,
            };
            assert_eq!(ours.insert(v), std_set.insert(v), "insert {v}");
        }
        assert_eq!(ours.len(), std_set.len());
        for v in &std_set {
            assert!(ours.contains(v), "{v}");
        }
        for v in [0xdead_beef_dead_beef_u64, 1 << 63, 3 << 47] {
            assert_eq!(ours.contains(&v), std_set.contains(&v), "{v}");
        }
        assert!(!ours.is_empty());
    }

    /// Keys crafted to share their top 16 bits land in one shard, which turns into a hash
    /// table past SORTED_MAX values and keeps answering exactly.
    #[test]
    fn one_crowded_shard_becomes_a_hash_table_and_stays_exact() {
        let mut ours = KeySet::default();
        let n = (SORTED_MAX * 3) as u64;
        let crowded = |i: u64| (0xABCD_u64 << 48) | (i.wrapping_mul(0x9E37_79B9) & 0xFFFF_FFFF_FFFF);
        for i in 0..n {
            assert!(ours.insert(crowded(i)), "first insertion of {i}");
        }
        assert!(matches!(ours.shards[0xABCD], Shard::Hashed(_)));
        for i in 0..n {
            assert!(!ours.insert(crowded(i)), "second insertion of {i}");
            assert!(ours.contains(&crowded(i)));
        }
        assert!(!ours.contains(&crowded(n + 1)));
        // The same low bits in another shard are another key.
        assert!(ours.insert((0xABCE_u64 << 48) | (crowded(5) & 0xFFFF_FFFF_FFFF)));
        assert_eq!(ours.len(), n as usize + 1);
    }
}
