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
        if inode == 0 {
            SocketKey::Tuple(local, remote)
        } else {
            SocketKey::Inode(inode)
        }
    }
}

/// The seen set. `namespace` is any number stable for the namespace's lifetime (the scanner uses the `net/tcp`
/// inode, which is known for every namespace it reads).
#[derive(Debug, Default)]
pub struct SeenConnections {
    previous: HashSet<(u64, SocketKey)>,
    current: HashSet<(u64, SocketKey)>,
}

impl SeenConnections {
    /// Records that the connection is open now; true when the previous scan did not have it.
    pub fn observe(&mut self, namespace: u64, key: SocketKey) -> bool {
        let entry = (namespace, key);
        self.current.insert(entry);
        !self.previous.contains(&entry)
    }

    /// Ends a scan: what was observed becomes what is remembered; everything else is forgotten.
    pub fn finish_scan(&mut self) {
        self.previous = mem::take(&mut self.current);
        // Keep the old capacity around for the next scan instead of growing a fresh set from zero.
        self.current.reserve(self.previous.len());
    }

    /// How many connections are remembered.
    pub fn len(&self) -> usize {
        self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.previous.is_empty()
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
        let (a, b, c) = (
            addr("10.0.0.1:1000"),
            addr("10.0.0.2:80"),
            addr("10.0.0.3:80"),
        );
        assert_eq!(SocketKey::new(0, a, b), SocketKey::Tuple(a, b));
        assert_ne!(SocketKey::new(0, a, b), SocketKey::new(0, a, c));
        assert_eq!(SocketKey::new(5, a, b), SocketKey::Inode(5));
    }
}
