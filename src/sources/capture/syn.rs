//! Client SYNs: the first segment of a TCP connection (SYN set, ACK clear), which the capture takes next to DNS
//! answers so that connections no DNS answer announces, and that close before any socket scan, are still seen
//! (docs/design.md §3 "SYN capture"). Pure: the frame walk hands over the addresses and the TCP header bytes.
//!
//! The decoder keeps the initial sequence number: every copy of one SYN carries the same one (device `any` shows
//! a SYN on the client's veth with the ClusterIP as destination, and again after kube-proxy's DNAT with the pod's
//! address), and so does every retransmission, while a new connection from the same port draws a new one. That
//! is what lets the pipeline count a connection once.

use std::net::{IpAddr, SocketAddr};

/// TCP flag bits (byte 13 of the header).
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_ACK: u8 = 0x10;

/// libpcap's `tcp[...]` indexing is IPv4-only, so IPv6 SYNs are matched by offset: next header TCP (no
/// extension headers) and the flags byte at 40 + 13.
pub const SYN_FILTER: &str =
    "(tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn) or (ip6 and ip6[6] == 6 and ip6[53] & 0x12 == 0x02)";

/// One client SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Syn {
    /// The connecting side: source address and port.
    pub client: SocketAddr,
    /// The destination as this copy shows it (a ClusterIP before NAT, a pod IP after).
    pub server: SocketAddr,
    /// The initial sequence number: the same in every copy and retransmission of this SYN.
    pub isn: u32,
}

/// The SYN in a TCP header (`tcp` starts at the TCP header), or `None` when the segment is not a client SYN
/// (SYN-ACK, data, a header cut short by the snap length).
pub fn decode(src: IpAddr, dst: IpAddr, tcp: &[u8]) -> Option<Syn> {
    let flags = *tcp.get(13)?;
    if flags & (FLAG_SYN | FLAG_ACK) != FLAG_SYN {
        return None;
    }
    let port = |at: usize| u16::from_be_bytes([tcp[at], tcp[at + 1]]);
    let isn = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    Some(Syn { client: SocketAddr::new(src, port(0)), server: SocketAddr::new(dst, port(2)), isn })
}
