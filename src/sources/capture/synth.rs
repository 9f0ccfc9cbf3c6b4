//! Builders for tests, benchmarks and fixtures — not used by the exporter itself. They make the bytes the decoders
//! read: DNS messages (through simple-dns), UDP/TCP over IPv4/IPv6 with real checksums, frames for every supported
//! link type, and small classic-pcap and pcapng writers, so capture files can be generated without libpcap.
//!
//! The builders panic on impossible requests (mixed address families, a name simple-dns cannot encode): they are
//! called with literals from tests, never with captured input.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use simple_dns::rdata::{A, AAAA, CNAME, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE};

use super::frame::LinkType;
use crate::UnixMicros;

/// One answer record of a synthetic response.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    A(&'a str, Ipv4Addr),
    Aaaa(&'a str, Ipv6Addr),
    /// `Cname(owner, target)`.
    Cname(&'a str, &'a str),
}

/// A NOERROR response to an A question for `question`, with the given answer records.
pub fn response(id: u16, question: &str, answers: &[Record<'_>]) -> Vec<u8> {
    response_with(id, question, TYPE::A, RCODE::NoError, answers)
}

/// An NXDOMAIN response with no answers.
pub fn nxdomain(id: u16, question: &str) -> Vec<u8> {
    response_with(id, question, TYPE::A, RCODE::NameError, &[])
}

/// A response with any question type and RCODE.
pub fn response_with(id: u16, question: &str, qtype: TYPE, rcode: RCODE, answers: &[Record<'_>]) -> Vec<u8> {
    let mut packet = Packet::new_reply(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    *packet.rcode_mut() = rcode;
    packet.questions.push(question_for(question, qtype));
    packet.answers.extend(answers.iter().map(record));
    packet.build_bytes_vec_compressed().expect("synthetic DNS response encodes")
}

/// A recursive query, as a stub resolver sends it.
pub fn query(id: u16, question: &str, qtype: TYPE) -> Vec<u8> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    packet.questions.push(question_for(question, qtype));
    packet.build_bytes_vec().expect("synthetic DNS query encodes")
}

fn question_for(name: &str, qtype: TYPE) -> Question<'_> {
    Question::new(dns_name(name), QTYPE::TYPE(qtype), QCLASS::CLASS(CLASS::IN), false)
}

fn dns_name(name: &str) -> Name<'_> {
    Name::new(name).expect("valid synthetic DNS name")
}

fn record<'a>(r: &Record<'a>) -> ResourceRecord<'a> {
    let (owner, rdata) = match *r {
        Record::A(owner, ip) => (owner, RData::A(A::from(ip))),
        Record::Aaaa(owner, ip) => (owner, RData::AAAA(AAAA::from(ip))),
        Record::Cname(owner, target) => (owner, RData::CNAME(CNAME(dns_name(target)))),
    };
    ResourceRecord::new(dns_name(owner), CLASS::IN, 30, rdata)
}

/// Concatenates messages with their DNS-over-TCP 2-byte length prefixes.
pub fn tcp_dns_payload(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// An IPv4 or IPv6 packet (by the address family) carrying a UDP datagram.
pub fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::with_capacity(8 + payload.len());
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    set_checksum(&mut udp, 6, src.ip(), dst.ip(), PROTO_UDP);
    ip_packet(src.ip(), dst.ip(), PROTO_UDP, &udp)
}

/// An IPv4 or IPv6 packet carrying a TCP segment with the given sequence number and flags (ACK number 1).
pub fn tcp_packet(src: SocketAddr, dst: SocketAddr, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&1u32.to_be_bytes());
    tcp.extend_from_slice(&[5 << 4, flags, 0xFF, 0xFF, 0, 0, 0, 0]);
    tcp.extend_from_slice(payload);
    set_checksum(&mut tcp, 16, src.ip(), dst.ip(), PROTO_TCP);
    ip_packet(src.ip(), dst.ip(), PROTO_TCP, &tcp)
}

/// A client SYN as Linux sends it: a 40-byte TCP header whose options are MSS 1460, SACK permitted, a
/// timestamp and window scale 7.
pub fn tcp_syn(src: SocketAddr, dst: SocketAddr, isn: u32) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(40);
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&isn.to_be_bytes());
    tcp.extend_from_slice(&0u32.to_be_bytes());
    tcp.extend_from_slice(&[10 << 4, TCP_SYN, 0xFA, 0xF0, 0, 0, 0, 0]);
    tcp.extend_from_slice(&[2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
    set_checksum(&mut tcp, 16, src.ip(), dst.ip(), PROTO_TCP);
    ip_packet(src.ip(), dst.ip(), PROTO_TCP, &tcp)
}

/// An IP header around a transport payload; both addresses must be of the same family.
pub fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, transport: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_packet(s, d, protocol, &[], transport),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_packet(s, d, protocol, &[], transport),
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
}

/// An IPv4 packet; `options` (a multiple of 4 bytes) go between the fixed header and the payload.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, options: &[u8], transport: &[u8]) -> Vec<u8> {
    assert!(options.len().is_multiple_of(4) && options.len() <= 40, "IPv4 options are whole words");
    let header_len = 20 + options.len();
    let total = (header_len + transport.len()) as u16;
    let mut p = vec![0x40 | (header_len / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]); // id, DF, TTL
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    let checksum = !fold(sum_words(&p, 0));
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p.extend_from_slice(transport);
    p
}

/// An IPv6 packet with extension headers given as `(header type, body)`; each body is padded so the header is a
/// whole number of 8-byte units (4-byte units for AH, type 51).
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    protocol: u8,
    extensions: &[(u8, &[u8])],
    transport: &[u8],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, body)) in extensions.iter().enumerate() {
        let next = extensions.get(i + 1).map_or(protocol, |(kind, _)| *kind);
        let mut header = vec![next, 0];
        header.extend_from_slice(body);
        header.resize(header.len().next_multiple_of(8), 0);
        header[1] = match extensions[i].0 {
            51 => (header.len() / 4 - 2) as u8,
            44 => 0,
            _ => (header.len() / 8 - 1) as u8,
        };
        chain.extend_from_slice(&header);
    }
    let first = extensions.first().map_or(protocol, |(kind, _)| *kind);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((chain.len() + transport.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(transport);
    p
}

/// Wraps an IP packet in the link-layer header of `link` (no VLAN tags for Ethernet).
pub fn frame(link: LinkType, ip_packet: &[u8]) -> Vec<u8> {
    let ethertype = ethertype_of(ip_packet);
    let mut out = match link {
        LinkType::Ethernet => return ethernet_frame(&[], ip_packet),
        LinkType::LinuxSll => {
            // Packet type 4 (outgoing), ARPHRD_ETHER, a 6-byte address padded to 8.
            let mut h = vec![0, 4, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0];
            h.extend_from_slice(&ethertype.to_be_bytes());
            h
        }
        LinkType::LinuxSll2 => {
            let mut h = ethertype.to_be_bytes().to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, 4, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0]);
            h
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => Vec::new(),
    };
    out.extend_from_slice(ip_packet);
    out
}

/// An Ethernet frame with 802.1Q tags (the first tag outermost; use two for QinQ).
pub fn ethernet_frame(vlan_tags: &[u16], ip_packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for (i, tag) in vlan_tags.iter().enumerate() {
        // The outer tag of a QinQ pair is an 802.1ad service tag.
        let tpid: u16 = if i == 0 && vlan_tags.len() > 1 { 0x88A8 } else { 0x8100 };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&tag.to_be_bytes());
    }
    out.extend_from_slice(&ethertype_of(ip_packet).to_be_bytes());
    out.extend_from_slice(ip_packet);
    out
}

fn ethertype_of(ip_packet: &[u8]) -> u16 {
    match ip_packet.first().map(|b| b >> 4) {
        Some(6) => 0x86DD,
        _ => 0x0800,
    }
}

fn set_checksum(segment: &mut [u8], at: usize, src: IpAddr, dst: IpAddr, protocol: u8) {
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
        }
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    let checksum = match !fold(sum_words(segment, sum_words(&pseudo, 0))) {
        0 if protocol == PROTO_UDP => 0xFFFF,
        c => c,
    };
    segment[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
}

fn sum_words(bytes: &[u8], start: u64) -> u64 {
    bytes
        .chunks(2)
        .fold(start, |sum, pair| sum + u64::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)])))
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Writes a classic pcap file (microsecond timestamps, little endian) of any LINKTYPE.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        header.extend_from_slice(&65_535u32.to_le_bytes());
        header.extend_from_slice(&linktype.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    pub fn write(&mut self, at: UnixMicros, frame: &[u8]) -> io::Result<()> {
        self.write_record(at, frame.len() as u32, frame)
    }

    /// A record whose original length may exceed what was captured (a snap-length cut).
    pub fn write_record(&mut self, at: UnixMicros, original_len: u32, captured: &[u8]) -> io::Result<()> {
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(&(at.div_euclid(1_000_000) as u32).to_le_bytes());
        header.extend_from_slice(&(at.rem_euclid(1_000_000) as u32).to_le_bytes());
        header.extend_from_slice(&(captured.len() as u32).to_le_bytes());
        header.extend_from_slice(&original_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(captured)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a minimal pcapng file: one section, one interface of any LINKTYPE, enhanced packet blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut section = Vec::new();
        section.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        section.extend_from_slice(&1u16.to_le_bytes());
        section.extend_from_slice(&0u16.to_le_bytes());
        section.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut out, 0x0A0D_0D0A, &section)?;
        let mut interface = Vec::new();
        interface.extend_from_slice(&(linktype as u16).to_le_bytes());
        interface.extend_from_slice(&0u16.to_le_bytes());
        interface.extend_from_slice(&65_535u32.to_le_bytes());
        write_block(&mut out, 1, &interface)?;
        Ok(PcapngWriter { out })
    }

    pub fn write(&mut self, at: UnixMicros, frame: &[u8]) -> io::Result<()> {
        let ts = at as u64;
        let mut body = Vec::with_capacity(20 + frame.len() + 3);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(frame);
        body.resize(body.len().next_multiple_of(4), 0);
        write_block(&mut self.out, 6, &body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_block<W: Write>(out: &mut W, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}
