//! Drops the extra copies of one DNS answer that a capture on device `any` sees (pod veth, bridge, the DNS pod's
//! veth, before and after kube-proxy NAT). Owns the key and the bounded, time-ordered memory of recent answers.
//! Pure: callers pass packet timestamps, nothing reads a clock.
//!
//! The key is (client IP, client port, hash of DNS id + question). It deliberately leaves out the *source* address:
//! the copy seen after kube-proxy NAT carries the Service ClusterIP as source instead of the DNS pod's IP, while its
//! destination (the client) and payload are the same.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use rustc_hash::FxHashMap as HashMap;

use crate::UnixMicros;

/// Copies of one answer arrive microseconds to milliseconds apart; 2 s covers queueing on a loaded node and
/// timestamps taken on different CPUs many times over. It stays below the 5 s retry timeout of glibc and musl, and a
/// client that asks again after the window is a new observation, as it should be. A different query reusing the same
/// port, id and question inside 2 s is a 1-in-65536 coincidence.
pub const DEFAULT_WINDOW_MICROS: i64 = 2_000_000;
/// About 100 bytes per entry: ~6 MB. Past the cap the oldest entries go first, which only shortens the effective
/// window: even at 1M answers/s, 65,536 entries cover 65 ms, far longer than the copies of one answer take to
/// cross a node's interfaces.
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    pub client: IpAddr,
    pub client_port: u16,
    /// [`super::dns::dedup_key_hash`] of the message.
    pub message_hash: u64,
}

/// Remembers each key for `window_micros` after its first sighting.
#[derive(Debug)]
pub struct Deduplicator {
    window_micros: i64,
    max_entries: usize,
    first_seen: HashMap<DedupKey, UnixMicros>,
    /// Keys in the order they were first seen; expiry and the size cap both pop from the front.
    order: VecDeque<(UnixMicros, DedupKey)>,
}

impl Deduplicator {
    pub fn new(window_micros: i64, max_entries: usize) -> Self {
        Deduplicator {
            window_micros,
            max_entries: max_entries.max(1),
            first_seen: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `key` is seen within the window (count it), false for a copy (drop it). The window runs
    /// from the first sighting; copies do not extend it.
    pub fn first_sighting(&mut self, key: DedupKey, at: UnixMicros) -> bool {
        self.expire(at);
        match self.first_seen.entry(key) {
            Entry::Occupied(seen) if at.saturating_sub(*seen.get()) < self.window_micros => {
                return false;
            }
            Entry::Occupied(mut seen) => {
                seen.insert(at);
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
        self.order.push_back((at, key));
        while self.first_seen.len() > self.max_entries || self.order.len() > 2 * self.max_entries {
            self.pop_oldest();
        }
        true
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }

    fn expire(&mut self, now: UnixMicros) {
        let cutoff = now.saturating_sub(self.window_micros);
        while self.order.front().is_some_and(|(at, _)| *at <= cutoff) {
            self.pop_oldest();
        }
    }

    /// Forgets the oldest entry. The map entry goes only if it still belongs to this queue entry: the key may have
    /// been seen again (after its window) and queued anew.
    fn pop_oldest(&mut self) {
        if let Some((at, key)) = self.order.pop_front()
            && self.first_seen.get(&key) == Some(&at)
        {
            self.first_seen.remove(&key);
        }
    }
}
