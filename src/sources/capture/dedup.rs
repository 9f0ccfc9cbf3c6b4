//! Drops the extra copies of one DNS answer that a capture on device `any` sees (pod veth, bridge, the DNS pod's
//! veth, before and after kube-proxy NAT). Owns the key and the bounded memory of recent answers.
//! Pure: callers pass packet timestamps, nothing reads a clock.
//!
//! The key is (client IP, client port, hash of DNS id + question). It deliberately leaves out the *source* address:
//! the copy seen after kube-proxy NAT carries the Service ClusterIP as source instead of the DNS pod's IP, while its
//! destination (the client) and payload are the same.
//!
//! The memory is a fixed table of 8-slot buckets (one 64-byte cache line each) holding a 32-bit tag of the key and
//! the time of its first sighting in units of 1,024 µs. An entry older than the window is dead where it lies:
//! nothing walks the table to expire it, and an insert overwrites the oldest slot of its bucket. So one sighting
//! costs one hash and one cache line of a 256 KiB table, whatever the rate; the cost of the cap is that under load
//! an entry may be overwritten before its window ends, which only shortens the window of that entry (as evicting
//! the oldest entry did), never makes a copy count twice within the time copies take to cross a node (see
//! [`DEFAULT_MAX_ENTRIES`]). The key's 64-bit hash picks the bucket with its high bits and the tag with its low
//! ones, so two different keys in the memory are taken for one another about once in 2^32 / 8 sightings.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use rustc_hash::FxHasher;

use crate::UnixMicros;

/// Copies of one answer arrive microseconds to milliseconds apart; 2 s covers queueing on a loaded node and
/// timestamps taken on different CPUs many times over. It stays below the 5 s retry timeout of glibc and musl, and a
/// client that asks again after the window is a new observation, as it should be. A different query reusing the same
/// port, id and question inside 2 s is a 1-in-65536 coincidence.
pub const DEFAULT_WINDOW_MICROS: i64 = 2_000_000;
/// Slots of the table: 8 bytes each, 256 KiB. At 1M answers/s a bucket takes a new entry every ~4 ms, so an entry
/// survives ~32 ms on average and rarely less than a few ms, far longer than the copies of one answer take to cross a
/// node's interfaces (microseconds).
pub const DEFAULT_MAX_ENTRIES: usize = 32_768;

/// Slots per bucket: 8 × 8 bytes, one cache line.
const WAYS: usize = 8;
/// Times are kept in units of 2^10 µs (~1 ms): 32 bits then span 50 days.
const TIME_SHIFT: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    pub client: IpAddr,
    pub client_port: u16,
    /// [`super::dns::dedup_key_hash`] of the message.
    pub message_hash: u64,
}

impl DedupKey {
    fn hash64(&self) -> u64 {
        let mut hasher = FxHasher::default();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// One remembered key: its tag (never 0 in a used slot) and its first sighting, in [`TIME_SHIFT`] units.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    tag: u32,
    at: u32,
}

/// The slots one key can live in: one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Bucket([Slot; WAYS]);

/// Remembers each key for `window_micros` after its first sighting, in at most `max_entries` (rounded up to whole
/// buckets of 8) slots.
#[derive(Debug)]
pub struct Deduplicator {
    window: i32,
    buckets: Box<[Bucket]>,
    bucket_mask: usize,
    /// The latest sighting's time: what [`Deduplicator::len`] measures the window from.
    newest: u32,
}

impl Deduplicator {
    pub fn new(window_micros: i64, max_entries: usize) -> Self {
        let buckets = max_entries.div_ceil(WAYS).max(1).next_power_of_two();
        // At least one unit, so that a window shorter than a unit still catches copies in the same unit.
        let window = i32::try_from((window_micros >> TIME_SHIFT).max(1)).unwrap_or(i32::MAX);
        Deduplicator {
            window,
            buckets: vec![Bucket::default(); buckets].into_boxed_slice(),
            bucket_mask: buckets - 1,
            newest: 0,
        }
    }

    /// True the first time `key` is seen within the window (count it), false for a copy (drop it). The window runs
    /// from the first sighting; copies do not extend it. A sighting timestamped before the first one (CPUs'
    /// clocks disagree by microseconds) is a copy too.
    pub fn first_sighting(&mut self, key: DedupKey, at: UnixMicros) -> bool {
        let hash = key.hash64();
        let tag = (hash as u32).max(1);
        // The high bits pick the bucket: FxHash mixes them best.
        let bucket = (hash >> 40) as usize & self.bucket_mask;
        let now = (at >> TIME_SHIFT) as u32;
        let slots = &mut self.buckets[bucket].0;
        let (mut victim, mut victim_age) = (0, -1i64);
        for (i, slot) in slots.iter().enumerate() {
            // Wrapping difference read as signed: a slot stamped later than `now` has a negative age.
            let age = now.wrapping_sub(slot.at) as i32;
            if slot.tag == tag && age < self.window {
                return false;
            }
            let age = if slot.tag == 0 { i64::MAX } else { i64::from(age) };
            if age > victim_age {
                (victim, victim_age) = (i, age);
            }
        }
        slots[victim] = Slot { tag, at: now };
        if (now.wrapping_sub(self.newest) as i32) > 0 {
            self.newest = now;
        }
        true
    }

    /// Keys remembered within the window of the latest sighting (a walk over the table: for tests and reports).
    pub fn len(&self) -> usize {
        let live =
            |slot: &&Slot| slot.tag != 0 && (0..self.window).contains(&(self.newest.wrapping_sub(slot.at) as i32));
        self.slots().filter(live).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the table: the most keys it can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.buckets.iter().flat_map(|bucket| bucket.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!((size_of::<Bucket>(), align_of::<Bucket>()), (64, 64));
        let dedup = Deduplicator::new(DEFAULT_WINDOW_MICROS, DEFAULT_MAX_ENTRIES);
        assert_eq!(dedup.capacity() * size_of::<Slot>(), 256 << 10);
    }
}
