//! The storage the index is built from: slots with stable ids found by key, and shared strings.
//!
//! A slot keeps its id for as long as it lives, so records refer to each other by a 4-byte id instead of by
//! name: following a reference is an array access, not a hash probe plus string compares. The key table holds
//! only ids and hashes the key kept in the slot itself, so no key is stored twice. Slots sit in fixed-size
//! chunks: growing never moves a slot nor copies the whole store, and wastes at most one chunk.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

/// A slot's id: an index into its store.
pub(super) type Id = u32;

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// What identifies an object in its store. `kind` is empty in the stores that hold a single kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key<'a> {
    pub namespace: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

impl Key<'_> {
    /// Fx: keys are names from our own API server or file, not attacker-chosen, and lookups are on the packet
    /// path.
    fn hash_value(&self) -> u64 {
        FxBuildHasher.hash_one(self)
    }
}

/// A value that carries its own key.
pub(super) trait Keyed {
    fn key(&self) -> Key<'_>;

    /// Whether this value has `key`; a store may answer without reading the key's strings.
    fn has_key(&self, key: Key<'_>) -> bool {
        self.key() == key
    }
}

/// Values of one kind, by stable id and by key.
#[derive(Debug)]
pub(super) struct Slots<T> {
    chunks: Vec<Vec<Option<T>>>,
    free: Vec<Id>,
    by_key: HashTable<Id>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { chunks: Vec::new(), free: Vec::new(), by_key: HashTable::new() }
    }
}

fn slot<T>(chunks: &[Vec<Option<T>>], id: Id) -> &T {
    let id = id as usize;
    chunks[id >> CHUNK_BITS][id & (CHUNK - 1)].as_ref().expect("ids of the index name live slots")
}

impl<T: Keyed> Slots<T> {
    /// The id of the value with this key.
    pub fn find(&self, key: Key<'_>) -> Option<Id> {
        self.by_key.find(key.hash_value(), |&id| slot(&self.chunks, id).has_key(key)).copied()
    }

    /// The value with this id; ids come from this store and are live.
    pub fn get(&self, id: Id) -> &T {
        slot(&self.chunks, id)
    }

    pub fn get_mut(&mut self, id: Id) -> &mut T {
        let id = id as usize;
        self.chunks[id >> CHUNK_BITS][id & (CHUNK - 1)].as_mut().expect("ids of the index name live slots")
    }

    /// The id of the value with this key, made by `make` (which must give a value with that key) if absent.
    pub fn find_or_insert(&mut self, key: Key<'_>, make: impl FnOnce() -> T) -> Id {
        match self.find(key) {
            Some(id) => id,
            None => self.insert(make()),
        }
    }

    /// Stores a value whose key is not in the store yet.
    fn insert(&mut self, value: T) -> Id {
        let hash = value.key().hash_value();
        let id = match self.free.pop() {
            Some(id) => {
                let id_usize = id as usize;
                self.chunks[id_usize >> CHUNK_BITS][id_usize & (CHUNK - 1)] = Some(value);
                id
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let id = (self.chunks.len() - 1) * CHUNK + self.chunks.last().map_or(0, Vec::len);
                self.chunks.last_mut().expect("a chunk with room was just ensured").push(Some(value));
                Id::try_from(id).expect("fewer than 4 billion objects")
            }
        };
        let chunks = &self.chunks;
        self.by_key.insert_unique(hash, id, |&other| slot(chunks, other).key().hash_value());
        id
    }

    /// Frees a slot; its id may be handed out again.
    pub fn remove(&mut self, id: Id) -> T {
        let hash = self.get(id).key().hash_value();
        if let Ok(entry) = self.by_key.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        let index = id as usize;
        let value = self.chunks[index >> CHUNK_BITS][index & (CHUNK - 1)].take().expect("live slot");
        self.free.push(id);
        value
    }

    /// How many slots live.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Every live slot.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> {
        self.chunks.iter().flatten().enumerate().filter_map(|(id, v)| Some((id as Id, v.as_ref()?)))
    }
}

/// A map keyed by IP address, with IPv4 keys in 4 bytes: the pod map has an entry per pod, and smaller
/// entries keep more of it in cache for the lookup every observation starts with.
#[derive(Debug)]
pub(super) struct IpMap<V> {
    v4: FxHashMap<u32, V>,
    v6: FxHashMap<u128, V>,
}

impl<V> Default for IpMap<V> {
    fn default() -> Self {
        IpMap { v4: FxHashMap::default(), v6: FxHashMap::default() }
    }
}

impl<V> IpMap<V> {
    pub fn get(&self, ip: &IpAddr) -> Option<&V> {
        match ip {
            IpAddr::V4(v4) => self.v4.get(&u32::from(*v4)),
            IpAddr::V6(v6) => self.v6.get(&u128::from(*v6)),
        }
    }

    pub fn get_mut(&mut self, ip: &IpAddr) -> Option<&mut V> {
        match ip {
            IpAddr::V4(v4) => self.v4.get_mut(&u32::from(*v4)),
            IpAddr::V6(v6) => self.v6.get_mut(&u128::from(*v6)),
        }
    }

    pub fn insert(&mut self, ip: IpAddr, value: V) -> Option<V> {
        match ip {
            IpAddr::V4(v4) => self.v4.insert(u32::from(v4), value),
            IpAddr::V6(v6) => self.v6.insert(u128::from(v6), value),
        }
    }

    pub fn remove(&mut self, ip: &IpAddr) -> Option<V> {
        match ip {
            IpAddr::V4(v4) => self.v4.remove(&u32::from(*v4)),
            IpAddr::V6(v6) => self.v6.remove(&u128::from(*v6)),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shares the strings that many records repeat (namespaces, node names, owner kinds): 100,000 pods name a few
/// hundred namespaces and nodes. Shared strings are also pointer-equal, which makes their compares cheap.
#[derive(Debug, Default)]
pub(super) struct Interner {
    strings: FxHashSet<Arc<str>>,
    prune_at: usize,
}

impl Interner {
    /// The shared copy of `s`.
    pub fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        if self.strings.len() >= self.prune_at {
            // Namespaces and nodes come and go; forget strings no record uses any more.
            self.strings.retain(|k| Arc::strong_count(k) > 1);
            self.prune_at = (self.strings.len() * 2).max(1024);
        }
        self.strings.insert(s.clone());
        s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Named(String);

    impl Keyed for Named {
        fn key(&self) -> Key<'_> {
            Key { namespace: "ns", kind: "", name: &self.0 }
        }
    }

    fn key(name: &str) -> Key<'_> {
        Key { namespace: "ns", kind: "", name }
    }

    #[test]
    fn ids_stay_stable_across_growth_and_are_reused_after_removal() {
        let mut slots = Slots::default();
        let ids: Vec<Id> =
            (0..3 * CHUNK).map(|i| slots.find_or_insert(key(&i.to_string()), || Named(i.to_string()))).collect();
        assert_eq!(ids, (0..3 * CHUNK as Id).collect::<Vec<_>>());
        assert_eq!(slots.find(key("1500")), Some(1500));
        assert_eq!(slots.get(1500), &Named("1500".into()));
        assert_eq!(slots.remove(7), Named("7".into()));
        assert_eq!(slots.find(key("7")), None);
        assert_eq!(slots.find_or_insert(key("new"), || Named("new".into())), 7);
        assert_eq!(slots.find(key("new")), Some(7));
        assert_eq!(slots.find_or_insert(key("new"), || unreachable!()), 7);
        assert_eq!(slots.iter().count(), 3 * CHUNK);
    }

    #[test]
    fn ip_maps_keep_v4_and_v6_apart() {
        let mut map = IpMap::default();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(map.insert(v4, 1), None);
        assert_eq!(map.insert(mapped, 2), None);
        assert_eq!((map.get(&v4), map.get(&mapped), map.len()), (Some(&1), Some(&2), 2));
        *map.get_mut(&v4).unwrap() = 3;
        assert_eq!(map.remove(&v4), Some(3));
        assert_eq!(map.get(&v4), None);
    }

    #[test]
    fn interned_strings_are_shared() {
        let mut strings = Interner::default();
        let a = strings.intern(&Arc::from("shop"));
        let b = strings.intern(&Arc::from("shop"));
        assert!(Arc::ptr_eq(&a, &b));
    }
}
