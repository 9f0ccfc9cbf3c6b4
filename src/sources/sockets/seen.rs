//! Remembers which client-side connections were already reported, so each one counts once.
//!
//! Kept per namespace. A scan that reads a namespace's tables builds its set anew from what it observed, so a
//! closed connection is forgotten at the next read of its namespace; a namespace the gate left unread
//! ([`super::gate`]) keeps its set as it was, and a namespace that went away is forgotten one scan later.
//! Memory is bounded by the connections open at the last read of each namespace.

use std::collections::{HashMap, HashSet};
use std::mem;
use std::net::SocketAddr;

use rustc_hash::FxHashSet;

/// Identity of one connection inside its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKey {
    Inode(u64),
    /// For inode 0 (a socket no longer owned by a file descriptor), the 4-tuple is all there is.
    Tuple(SocketAddr, SocketAddr),
}

impl SocketKey {
    pub fn new(inode: u64, local: SocketAddr, remote: SocketAddr) -> Self {
        if inode == 0 { SocketKey::Tuple(local, remote) } else { SocketKey::Inode(inode) }
    }
}

/// The seen set. `namespace` is any number stable for the namespace's lifetime (the scanner uses the `net/tcp`
/// inode, which is known for every namespace it reads).
#[derive(Debug, Default)]
pub struct SeenConnections {
    previous: HashMap<u64, Namespace>,
    current: HashMap<u64, Namespace>,
    /// Emptied sets kept for their capacity, so steady scans do not allocate.
    spare: Vec<Namespace>,
}

/// One namespace's connections. Inode keys, nearly all of them, sit in a set of 8-byte entries: lookups in the
/// previous read's set are random memory accesses, and small entries keep tens of thousands of them in cache.
#[derive(Debug, Default)]
struct Namespace {
    inodes: HashSet<u64>,
    /// Keyed by the 4-tuple: sockets without an inode, and connections a mesh proxy intercepted (their socket and
    /// their conntrack entry are one), a hundred or more per read in a busy meshed pod: hashed with Fx, not SipHash.
    tuples: FxHashSet<(SocketAddr, SocketAddr)>,
}

impl Namespace {
    /// True when the key was not there yet.
    fn insert(&mut self, key: SocketKey) -> bool {
        match key {
            SocketKey::Inode(inode) => self.inodes.insert(inode),
            SocketKey::Tuple(local, remote) => self.tuples.insert((local, remote)),
        }
    }

    fn contains(&self, key: SocketKey) -> bool {
        match key {
            SocketKey::Inode(inode) => self.inodes.contains(&inode),
            SocketKey::Tuple(local, remote) => self.tuples.contains(&(local, remote)),
        }
    }

    fn len(&self) -> usize {
        self.inodes.len() + self.tuples.len()
    }
}

impl SeenConnections {
    /// Records that the connection is open now; true when neither the previous read of its namespace nor an
    /// earlier sighting in this one had it (one connection may be seen twice in a read: a mesh-intercepted socket
    /// and its connection tracking entry).
    pub fn observe(&mut self, namespace: u64, key: SocketKey) -> bool {
        let spare = &mut self.spare;
        let fresh = self.current.entry(namespace).or_insert_with(|| spare.pop().unwrap_or_default()).insert(key);
        fresh && !self.previous.get(&namespace).is_some_and(|seen| seen.contains(key))
    }

    /// Keeps a namespace's connections as the previous read left them: its tables were not read this scan.
    /// Call it instead of [`SeenConnections::observe`] for that namespace, not as well.
    pub fn carry(&mut self, namespace: u64) {
        if let Some(seen) = self.previous.remove(&namespace) {
            self.current.insert(namespace, seen);
        }
    }

    /// Ends a scan: what was observed or carried becomes what is remembered; everything else is forgotten.
    pub fn finish_scan(&mut self) {
        mem::swap(&mut self.previous, &mut self.current);
        for (_, mut seen) in self.current.drain() {
            seen.inodes.clear();
            seen.tuples.clear();
            self.spare.push(seen);
        }
    }

    /// How many connections are remembered.
    pub fn len(&self) -> usize {
        self.previous.values().map(Namespace::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_connection_is_new_once_and_forgotten_after_a_scan_without_it() {
        let mut seen = SeenConnections::default();
        assert!(seen.observe(7, SocketKey::Inode(100)));
        seen.finish_scan();
        assert!(!seen.observe(7, SocketKey::Inode(100)));
        seen.finish_scan();
        assert_eq!(seen.len(), 1);
        seen.finish_scan();
        assert!(seen.is_empty());
        assert!(seen.observe(7, SocketKey::Inode(100)));
    }

    #[test]
    fn a_second_sighting_in_the_same_read_is_not_new() {
        let mut seen = SeenConnections::default();
        let key = SocketKey::Tuple(addr("10.0.0.1:1000"), addr("10.96.0.2:80"));
        assert!(seen.observe(7, key));
        assert!(!seen.observe(7, key), "the conntrack entry of the socket just seen");
    }

    #[test]
    fn the_same_inode_in_another_namespace_is_another_connection() {
        let mut seen = SeenConnections::default();
        assert!(seen.observe(7, SocketKey::Inode(100)));
        assert!(seen.observe(8, SocketKey::Inode(100)));
    }

    #[test]
    fn a_carried_namespace_keeps_its_connections_and_an_observed_one_is_rebuilt() {
        let mut seen = SeenConnections::default();
        seen.observe(7, SocketKey::Inode(100));
        seen.observe(8, SocketKey::Inode(200));
        seen.finish_scan();
        seen.carry(7);
        assert!(seen.observe(8, SocketKey::Inode(201)));
        seen.finish_scan();
        assert_eq!(seen.len(), 2, "7's 100 carried, 8's 200 forgotten");
        assert!(!seen.observe(7, SocketKey::Inode(100)));
        assert!(seen.observe(8, SocketKey::Inode(200)));
    }

    #[test]
    fn inode_zero_falls_back_to_the_four_tuple() {
        let (a, b, c) = (addr("10.0.0.1:1000"), addr("10.0.0.2:80"), addr("10.0.0.3:80"));
        assert_eq!(SocketKey::new(0, a, b), SocketKey::Tuple(a, b));
        assert_ne!(SocketKey::new(0, a, b), SocketKey::new(0, a, c));
        assert_eq!(SocketKey::new(5, a, b), SocketKey::Inode(5));
    }
}
