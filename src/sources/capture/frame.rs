//! Link-layer frames → whole DNS messages. Owns the link/IP/UDP/TCP header walk and the bounded per-flow DNS-over-TCP
//! reassembly. Pure: bytes in, borrowed DNS message bytes out; no pcap types, no clock.
//!
//! Every read is bounds-checked; a frame that is shorter than its headers claim is [`FrameOutcome::Truncated`], one
//! whose fields contradict each other is [`FrameOutcome::Malformed`]. Nothing here panics on input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use super::message::DnsMessage;
use super::syn::{self, Syn};
use super::tcp::{Segment, TcpReassembler};

/// The link types the decoder understands (a capture on device `any` is SLL or SLL2; a NIC or veth is Ethernet; a
/// tun/WireGuard device is raw IP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    /// Raw IP, version taken from the first nibble.
    Raw,
    Ipv4,
    Ipv6,
}

impl LinkType {
    /// Maps a libpcap DLT (as returned by `pcap_datalink`) or a savefile LINKTYPE value to a link type.
    /// Raw IP is DLT 12 on Linux but LINKTYPE 101 in files; both are accepted.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            12 | 101 => Some(LinkType::Raw),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            _ => None,
        }
    }

    /// The LINKTYPE value written into savefile headers.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Raw => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
        }
    }

    /// The libpcap name of the link type, for logs.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Ethernet => "EN10MB",
            LinkType::LinuxSll => "LINUX_SLL",
            LinkType::LinuxSll2 => "LINUX_SLL2",
            LinkType::Raw => "RAW",
            LinkType::Ipv4 => "IPV4",
            LinkType::Ipv6 => "IPV6",
        }
    }

    pub const ALL: [LinkType; 6] =
        [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Raw, LinkType::Ipv4, LinkType::Ipv6];
}

/// What one frame turned out to be, for the packet metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameOutcome {
    /// At least one DNS message was handed to the callback.
    Dns,
    /// Not IP, not UDP/TCP, or not from port 53.
    NotDns,
    /// A client SYN (SYN set, ACK clear), handed to the SYN callback.
    Syn,
    /// A TCP segment from port 53 that completed no message: handshake, bare ACK, FIN/RST, a retransmission or
    /// duplicate copy, or part of a message still being reassembled.
    TcpNoMessage,
    /// Shorter than its headers say (snap length, or a cut record).
    Truncated,
    /// An IP fragment; DNS answers in fragments are not reassembled.
    Fragment,
    /// Header fields that contradict each other.
    Malformed,
}

impl FrameOutcome {
    /// Every outcome, for pre-creating metric series.
    pub const ALL: [FrameOutcome; 7] = [
        FrameOutcome::Dns,
        FrameOutcome::NotDns,
        FrameOutcome::Syn,
        FrameOutcome::TcpNoMessage,
        FrameOutcome::Truncated,
        FrameOutcome::Fragment,
        FrameOutcome::Malformed,
    ];

    pub fn metric_label(self) -> &'static str {
        match self {
            FrameOutcome::Dns => "dns",
            FrameOutcome::NotDns => "not_dns",
            FrameOutcome::Syn => "syn",
            FrameOutcome::TcpNoMessage => "tcp_no_message",
            FrameOutcome::Truncated => "truncated",
            FrameOutcome::Fragment => "fragment",
            FrameOutcome::Malformed => "malformed",
        }
    }
}

const DNS_PORT: u16 = 53;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const VLAN_ETHERTYPES: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// QinQ is two tags; allow a little more before calling the frame malformed.
const MAX_VLAN_TAGS: usize = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Decodes frames into DNS messages, keeping the bounded TCP reassembly state between frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    tcp: TcpReassembler,
}

/// The IP layer of a frame: addresses, transport protocol and its bytes (trimmed to the IP length, so Ethernet
/// padding never reaches the DNS parser).
struct IpPayload<'a> {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    bytes: &'a [u8],
}

type Layer<T> = Result<T, FrameOutcome>;

impl FrameDecoder {
    pub fn new() -> Self {
        FrameDecoder::default()
    }

    /// Bounds for the TCP reassembly state: at most `max_flows` flows (least recently used evicted) and at most
    /// `max_bytes_per_flow` buffered bytes per flow (a longer message drops the flow).
    pub fn with_tcp_limits(max_flows: usize, max_bytes_per_flow: usize) -> Self {
        FrameDecoder { tcp: TcpReassembler::new(max_flows, max_bytes_per_flow) }
    }

    /// Number of TCP flows currently holding reassembly state.
    pub fn tcp_flows(&self) -> usize {
        self.tcp.len()
    }

    /// Decodes one frame, calling `on_message` for every whole DNS message it completes. Client SYNs are
    /// reported as [`FrameOutcome::Syn`] and otherwise ignored.
    pub fn decode(&mut self, link: LinkType, frame: &[u8], on_message: &mut dyn FnMut(DnsMessage<'_>)) -> FrameOutcome {
        self.decode_with_syns(link, frame, on_message, &mut |_| {})
    }

    /// Decodes one frame, calling `on_message` for every whole DNS message it completes and `on_syn` for a
    /// client SYN.
    pub fn decode_with_syns(
        &mut self,
        link: LinkType,
        frame: &[u8],
        on_message: &mut dyn FnMut(DnsMessage<'_>),
        on_syn: &mut dyn FnMut(Syn),
    ) -> FrameOutcome {
        let outcome = ip_layer(link, frame).and_then(|ip| match ip.protocol {
            PROTO_UDP => udp(&ip, on_message),
            PROTO_TCP => self.tcp_segment(&ip, on_message, on_syn),
            _ => Ok(FrameOutcome::NotDns),
        });
        match outcome {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    fn tcp_segment(
        &mut self,
        ip: &IpPayload<'_>,
        on_message: &mut dyn FnMut(DnsMessage<'_>),
        on_syn: &mut dyn FnMut(Syn),
    ) -> Layer<FrameOutcome> {
        let b = ip.bytes;
        let (src_port, dst_port) = ports(b)?;
        if src_port != DNS_PORT {
            if b.len() < 20 {
                return Err(FrameOutcome::Truncated);
            }
            return Ok(match syn::decode(ip.src, ip.dst, b) {
                Some(found) => {
                    on_syn(found);
                    FrameOutcome::Syn
                }
                None => FrameOutcome::NotDns,
            });
        }
        let header = b.get(12).ok_or(FrameOutcome::Truncated)?;
        let header_len = usize::from(header >> 4) * 4;
        if header_len < 20 {
            return Err(FrameOutcome::Malformed);
        }
        let payload = b.get(header_len..).ok_or(FrameOutcome::Truncated)?;
        let segment = Segment {
            src: SocketAddr::new(ip.src, src_port),
            dst: SocketAddr::new(ip.dst, dst_port),
            seq: be_u32(b, 4)?,
            flags: b[13],
            payload,
        };
        let emitted = self.tcp.segment(segment, on_message);
        Ok(if emitted > 0 { FrameOutcome::Dns } else { FrameOutcome::TcpNoMessage })
    }
}

fn udp(ip: &IpPayload<'_>, on_message: &mut dyn FnMut(DnsMessage<'_>)) -> Layer<FrameOutcome> {
    let b = ip.bytes;
    let (src_port, dst_port) = ports(b)?;
    if src_port != DNS_PORT {
        return Ok(FrameOutcome::NotDns);
    }
    let length = usize::from(be_u16(b, 4)?);
    if length < 8 {
        return Err(FrameOutcome::Malformed);
    }
    let bytes = b.get(8..length).ok_or(FrameOutcome::Truncated)?;
    on_message(DnsMessage {
        src: SocketAddr::new(ip.src, src_port),
        dst: SocketAddr::new(ip.dst, dst_port),
        tcp: false,
        bytes,
    });
    Ok(FrameOutcome::Dns)
}

fn ip_layer(link: LinkType, frame: &[u8]) -> Layer<IpPayload<'_>> {
    match link {
        LinkType::Ethernet => ethertype_payload(be_u16(frame, 12)?, tail(frame, 14)?),
        LinkType::LinuxSll => ethertype_payload(be_u16(frame, 14)?, tail(frame, 16)?),
        LinkType::LinuxSll2 => ethertype_payload(be_u16(frame, 0)?, tail(frame, 20)?),
        LinkType::Raw => match frame.first().map(|b| b >> 4) {
            Some(4) => ipv4(frame),
            Some(6) => ipv6(frame),
            Some(_) => Err(FrameOutcome::NotDns),
            None => Err(FrameOutcome::Truncated),
        },
        LinkType::Ipv4 => ipv4(frame),
        LinkType::Ipv6 => ipv6(frame),
    }
}

/// Follows 802.1Q/802.1ad tags (libpcap re-inserts stripped tags after the Ethernet or SLL header) to the IP packet.
fn ethertype_payload(mut ethertype: u16, mut rest: &[u8]) -> Layer<IpPayload<'_>> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return ipv4(rest),
            ETHERTYPE_IPV6 => return ipv6(rest),
            t if VLAN_ETHERTYPES.contains(&t) => {
                ethertype = be_u16(rest, 2)?;
                rest = tail(rest, 4)?;
            }
            _ => return Err(FrameOutcome::NotDns),
        }
    }
    Err(FrameOutcome::Malformed)
}

fn ipv4(b: &[u8]) -> Layer<IpPayload<'_>> {
    let first = *b.first().ok_or(FrameOutcome::Truncated)?;
    let header_len = usize::from(first & 0x0F) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Err(FrameOutcome::Malformed);
    }
    if b.len() < header_len {
        return Err(FrameOutcome::Truncated);
    }
    // A total length of 0 is what TSO/GSO packets show when captured before segmentation: use what was captured.
    let total = match usize::from(be_u16(b, 2)?) {
        0 => b.len(),
        n if n < header_len => return Err(FrameOutcome::Malformed),
        n => n,
    };
    let fragment = be_u16(b, 6)?;
    if fragment & 0x3FFF != 0 {
        return Err(FrameOutcome::Fragment);
    }
    Ok(IpPayload {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        protocol: b[9],
        bytes: b.get(header_len..total).ok_or(FrameOutcome::Truncated)?,
    })
}

fn ipv6(b: &[u8]) -> Layer<IpPayload<'_>> {
    if b.len() < 40 {
        return Err(FrameOutcome::Truncated);
    }
    if b[0] >> 4 != 6 {
        return Err(FrameOutcome::Malformed);
    }
    let payload_len = usize::from(be_u16(b, 4)?);
    let end = if payload_len == 0 { b.len() } else { 40 + payload_len };
    let payload = b.get(40..end).ok_or(FrameOutcome::Truncated)?;
    let (protocol, bytes) = skip_ipv6_extensions(b[6], payload)?;
    Ok(IpPayload { src: IpAddr::V6(ipv6_addr(&b[8..24])), dst: IpAddr::V6(ipv6_addr(&b[24..40])), protocol, bytes })
}

/// Skips hop-by-hop, routing, destination-options, AH and mobility headers; a fragment header ends decoding.
fn skip_ipv6_extensions(mut next: u8, mut rest: &[u8]) -> Layer<(u8, &[u8])> {
    // Each extension header is at least 8 bytes, so this loop is bounded by the packet length.
    loop {
        let len = match next {
            0 | 43 | 60 | 135 | 139 | 140 => (usize::from(*rest.get(1).ok_or(FrameOutcome::Truncated)?) + 1) * 8,
            51 => (usize::from(*rest.get(1).ok_or(FrameOutcome::Truncated)?) + 2) * 4,
            44 => return Err(FrameOutcome::Fragment),
            _ => return Ok((next, rest)),
        };
        next = rest[0];
        rest = tail(rest, len)?;
    }
}

fn ipv6_addr(b: &[u8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(b);
    Ipv6Addr::from(octets)
}

fn ports(b: &[u8]) -> Layer<(u16, u16)> {
    Ok((be_u16(b, 0)?, be_u16(b, 2)?))
}

fn tail(b: &[u8], from: usize) -> Layer<&[u8]> {
    b.get(from..).ok_or(FrameOutcome::Truncated)
}

fn be_u16(b: &[u8], at: usize) -> Layer<u16> {
    match b.get(at..at + 2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(FrameOutcome::Truncated),
    }
}

fn be_u32(b: &[u8], at: usize) -> Layer<u32> {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => Ok(u32::from_be_bytes([a, c, d, e])),
        _ => Err(FrameOutcome::Truncated),
    }
}
