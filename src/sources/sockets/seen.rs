//! Remembers which client-side connections were already reported, so each one counts once.
//!
//! Memory is bounded by the connections open at the last scan: every scan builds the set anew from what it
//! observed, so a closed connection (or a whole namespace that went away) is forgotten one scan later.

use std::collections::HashSet;
use std::mem;
use std::net::SocketAddr;

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
    previous: Generation,
    current: Generation,
}

/// One scan's connections. Inode keys, nearly all of them, sit in a set of 16-byte entries: lookups in the
/// previous scan's set are random memory accesses, and small entries keep tens of thousands of them in cache.
#[derive(Debug, Default)]
struct Generation {
    inodes: HashSet<(u64, u64)>,
    tuples: HashSet<(u64, SocketAddr, SocketAddr)>,
}

impl Generation {
    fn insert(&mut self, namespace: u64, key: SocketKey) {
        match key {
            SocketKey::Inode(inode) => self.inodes.insert((namespace, inode)),
            SocketKey::Tuple(local, remote) => self.tuples.insert((namespace, local, remote)),
        };
    }

    fn contains(&self, namespace: u64, key: SocketKey) -> bool {
        match key {
            SocketKey::Inode(inode) => self.inodes.contains(&(namespace, inode)),
            SocketKey::Tuple(local, remote) => self.tuples.contains(&(namespace, local, remote)),
        }
    }

    fn len(&self) -> usize {
        self.inodes.len() + self.tuples.len()
    }

    /// Empties the sets, keeping their capacity for the next scan.
    fn clear(&mut self) {
        self.inodes.clear();
        self.tuples.clear();
    }
}

impl SeenConnections {
    /// Records that the connection is open now; true when the previous scan did not have it.
    pub fn observe(&mut self, namespace: u64, key: SocketKey) -> bool {
        self.current.insert(namespace, key);
        !self.previous.contains(namespace, key)
    }

    /// Ends a scan: what was observed becomes what is remembered; everything else is forgotten.
    pub fn finish_scan(&mut self) {
        mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
    }

    /// How many connections are remembered.
    pub fn len(&self) -> usize {
        self.previous.len()
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
    fn the_same_inode_in_another_namespace_is_another_connection() {
        let mut seen = SeenConnections::default();
        assert!(seen.observe(7, SocketKey::Inode(100)));
        assert!(seen.observe(8, SocketKey::Inode(100)));
    }

    #[test]
    fn inode_zero_falls_back_to_the_four_tuple() {
        let (a, b, c) = (addr("10.0.0.1:1000"), addr("10.0.0.2:80"), addr("10.0.0.3:80"));
        assert_eq!(SocketKey::new(0, a, b), SocketKey::Tuple(a, b));
        assert_ne!(SocketKey::new(0, a, b), SocketKey::new(0, a, c));
        assert_eq!(SocketKey::new(5, a, b), SocketKey::Inode(5));
    }
}
