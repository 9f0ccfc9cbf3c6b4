//! One connection, counted once: the memory shared by the SYN capture and the socket scan (docs/design.md §3).
//! Pure: callers pass timestamps, nothing reads a clock.
//!
//! The key is the client's end, (client IP, client port). It is the one part of a connection that every
//! sighting shares: device `any` shows a SYN before kube-proxy's DNAT (destination = the ClusterIP as dialled)
//! and after it (destination = the chosen pod), a retransmitted SYN repeats the first, and `/proc` shows the
//! client socket with the address it dialled as its remote end (the kernel reverses the NAT for the socket).
//! What is remembered per key tells the sightings apart:
//! - a SYN with the initial sequence number already remembered is a copy or a retransmission;
//! - a SYN or a socket whose destination is the dialled address remembered is the same connection;
//! - anything else on the same client port is a new connection that reused the port.
//!
//! The window must cover the time from a connection's SYN to the first socket scan that can see it (one scan
//! interval, plus the scan itself and the capture's lag) and the SYN retransmissions of an unanswered connect
//! (Linux resends after 1, 3, 7 and 15 s): [`window_for`] gives at least 20 s and twice the scan interval plus
//! 5 s. A port is not reused for the same destination within it (TIME_WAIT holds it for 60 s).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rustc_hash::FxHashMap as HashMap;

use crate::UnixMicros;

/// At ~120 bytes an entry, 12 MiB. Past the cap the oldest entries go first, which only shortens the window:
/// at 50,000 new connections/s, 131,072 entries still cover 2.6 s, longer than a SYN's copies take to cross
/// the node.
pub const DEFAULT_MAX_ENTRIES: usize = 131_072;

/// The window for a socket scan every `scan_interval`.
pub fn window_for(scan_interval: Duration) -> i64 {
    let scan = i64::try_from(scan_interval.as_micros()).unwrap_or(i64::MAX / 4);
    (2 * scan + 5_000_000).max(20_000_000)
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    at: UnixMicros,
    /// The SYN's initial sequence number; `None` while only the socket scan has seen the connection.
    isn: Option<u32>,
    /// The destination as dialled (the first SYN copy's, or the socket's remote end).
    dialled: SocketAddr,
}

/// Remembers recent connections by their client end.
#[derive(Debug)]
pub struct ConnectionMemory {
    window_micros: i64,
    max_entries: usize,
    by_client: HashMap<SocketAddr, Seen>,
    order: VecDeque<(UnixMicros, SocketAddr)>,
}

impl ConnectionMemory {
    pub fn new(window_micros: i64, max_entries: usize) -> Self {
        ConnectionMemory {
            window_micros,
            max_entries: max_entries.max(1),
            by_client: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// A SYN from `client` to `server` (as this copy shows it) with initial sequence number `isn`: true the
    /// first time the connection is seen (count it), false for a copy, a retransmission, or a connection the
    /// socket scan reported already.
    pub fn syn(&mut self, client: SocketAddr, server: SocketAddr, isn: u32, at: UnixMicros) -> bool {
        self.expire(at);
        if let Some(seen) = self.by_client.get_mut(&client).filter(|s| at.saturating_sub(s.at) < self.window_micros) {
            match seen.isn {
                Some(known) if known == isn => return false,
                None if seen.dialled == server => {
                    seen.isn = Some(isn);
                    return false;
                }
                _ => {}
            }
        }
        self.remember(client, Seen { at, isn: Some(isn), dialled: server });
        true
    }

    /// A client-side socket `local` → `remote` that the socket scan found for the first time: true unless a SYN
    /// (or an earlier scan) of the same connection was seen within the window.
    pub fn socket(&mut self, local: SocketAddr, remote: SocketAddr, at: UnixMicros) -> bool {
        self.expire(at);
        let known = self.by_client.get(&local).filter(|s| at.saturating_sub(s.at) < self.window_micros);
        if known.is_some_and(|s| s.dialled == remote) {
            return false;
        }
        self.remember(local, Seen { at, isn: None, dialled: remote });
        true
    }

    /// Connections remembered.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    fn remember(&mut self, client: SocketAddr, seen: Seen) {
        self.by_client.insert(client, seen);
        self.order.push_back((seen.at, client));
        while self.by_client.len() > self.max_entries || self.order.len() > 2 * self.max_entries {
            self.pop_oldest();
        }
    }

    fn expire(&mut self, now: UnixMicros) {
        let cutoff = now.saturating_sub(self.window_micros);
        while self.order.front().is_some_and(|(at, _)| *at <= cutoff) {
            self.pop_oldest();
        }
    }

    /// The map entry goes only if it still belongs to this queue entry (the port may have been reused since).
    fn pop_oldest(&mut self) {
        if let Some((at, client)) = self.order.pop_front()
            && self.by_client.get(&client).is_some_and(|s| s.at == at)
        {
            self.by_client.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 20_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_copy_after_nat_and_retransmissions_are_the_same_connection() {
        let mut memory = ConnectionMemory::new(WINDOW, 100);
        let client = addr("10.244.0.14:40000");
        assert!(memory.syn(client, addr("10.96.1.12:7070"), 777, 0));
        assert!(!memory.syn(client, addr("10.244.0.13:8080"), 777, 40), "the copy after DNAT");
        assert!(!memory.syn(client, addr("10.96.1.12:7070"), 777, 1_000_000), "retransmitted after 1 s");
        assert!(!memory.socket(client, addr("10.96.1.12:7070"), 4_000_000), "the socket scan sees it later");
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn a_socket_seen_before_its_syn_is_processed_counts_once() {
        let mut memory = ConnectionMemory::new(WINDOW, 100);
        let client = addr("10.244.0.14:40000");
        assert!(memory.socket(client, addr("10.96.1.12:7070"), 10));
        assert!(!memory.syn(client, addr("10.96.1.12:7070"), 5, 0), "its SYN, from a lagging capture");
        assert!(!memory.syn(client, addr("10.244.0.13:8080"), 5, 40), "and that SYN's copy after DNAT");
    }

    #[test]
    fn a_reused_port_is_a_new_connection() {
        let mut memory = ConnectionMemory::new(WINDOW, 100);
        let client = addr("10.244.0.14:40000");
        assert!(memory.syn(client, addr("10.96.1.12:7070"), 1, 0));
        assert!(memory.syn(client, addr("10.96.1.13:5050"), 2, 100), "another destination, another ISN");
        assert!(memory.socket(client, addr("10.96.2.10:50051"), 200), "a socket to a third destination");
        assert!(memory.syn(addr("10.244.0.15:40000"), addr("10.96.1.12:7070"), 1, 300), "another client");
    }

    #[test]
    fn after_the_window_a_sighting_counts_again_and_memory_is_bounded() {
        let mut memory = ConnectionMemory::new(WINDOW, 2);
        let client = addr("10.244.0.14:40000");
        assert!(memory.syn(client, addr("10.96.1.12:7070"), 1, 0));
        assert!(memory.syn(client, addr("10.96.1.12:7070"), 1, WINDOW));
        for port in 1..10 {
            memory.syn(SocketAddr::new(client.ip(), port), client, 9, WINDOW + i64::from(port));
        }
        assert_eq!(memory.len(), 2);
        assert!(window_for(Duration::from_secs(5)) >= 15_000_000);
        assert_eq!(window_for(Duration::from_secs(60)), 125_000_000);
    }
}
