//! The bytes the capture decoders read: DNS messages (through simple-dns), UDP/TCP over IPv4/IPv6 with real
//! checksums (headers written by etherparse), and frames for every link type the exporter supports. Capture files
//! are written by [`crate::capfile`].
//!
//! Link types are the numbers of libpcap's LINKTYPE list ([`dlt`]); the product's `LinkType::linktype()` gives
//! them. etherparse writes no LINUX_SLL2 header, at most two VLAN tags, and no IPv6 extension headers with
//! arbitrary bodies; those few are written here by hand (the decoder tests need five tags and odd extensions).
//!
//! The builders panic on impossible requests (mixed address families, a name simple-dns cannot encode): they are
//! called with literals from tests, never with captured input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{
    ArpHardwareId, EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv4Options, Ipv6Header, LinuxSllHeader,
    LinuxSllPacketType, LinuxSllProtocolType, TcpHeader, UdpHeader,
};
use simple_dns::rdata::{A, AAAA, CNAME, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE};

/// LINKTYPE numbers of the link layers the exporter decodes.
pub mod dlt {
    pub const EN10MB: u32 = 1;
    pub const LINUX_SLL: u32 = 113;
    pub const LINUX_SLL2: u32 = 276;
    pub const RAW: u32 = 101;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
}

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

/// One DNS message of each kind the header rules tell apart, ids 1 to 7 in this order: an answer with an address,
/// NXDOMAIN, SERVFAIL, NODATA (an AAAA question, no record), a query, a NOTIFY, and an answer whose only record is
/// a CNAME out of the answer (it passes the header, and the parse finds no address).
pub fn messages_of_each_kind() -> Vec<Vec<u8>> {
    let name = "cart.shop.svc.cluster.local";
    let a = Record::A(name, "10.96.0.20".parse().unwrap());
    let mut query = response(5, name, &[a]);
    query[2] &= 0x7F;
    let mut notify = response(6, name, &[a]);
    notify[2] |= 4 << 3;
    vec![
        response(1, name, &[a]),
        nxdomain(2, "x.shop.svc.cluster.local"),
        response_with(3, name, TYPE::A, RCODE::ServerFailure, &[]),
        response_with(4, name, TYPE::AAAA, RCODE::NoError, &[]),
        query,
        notify,
        response(7, name, &[Record::Cname(name, "elsewhere.example")]),
    ]
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
    let mut udp = UdpHeader {
        source_port: src.port(),
        destination_port: dst.port(),
        length: (UdpHeader::LEN + payload.len()) as u16,
        checksum: 0,
    };
    udp.checksum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => udp.calc_checksum_ipv4_raw(s.octets(), d.octets(), payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => udp.calc_checksum_ipv6_raw(s.octets(), d.octets(), payload),
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
    .expect("synthetic UDP payload fits");
    let mut transport = udp.to_bytes().to_vec();
    transport.extend_from_slice(payload);
    ip_packet(src.ip(), dst.ip(), PROTO_UDP, &transport)
}

/// An IPv4 or IPv6 packet carrying a TCP segment with the given sequence number and flags (ACK number 1, window
/// 65,535).
pub fn tcp_packet(src: SocketAddr, dst: SocketAddr, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut tcp = TcpHeader::new(src.port(), dst.port(), seq, 0xFFFF);
    tcp.acknowledgment_number = 1;
    tcp.fin = flags & TCP_FIN != 0;
    tcp.syn = flags & TCP_SYN != 0;
    tcp.rst = flags & TCP_RST != 0;
    tcp.psh = flags & TCP_PSH != 0;
    tcp.ack = flags & TCP_ACK != 0;
    tcp.urg = flags & 0x20 != 0;
    tcp.ece = flags & 0x40 != 0;
    tcp.cwr = flags & 0x80 != 0;
    tcp.checksum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => tcp.calc_checksum_ipv4_raw(s.octets(), d.octets(), payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => tcp.calc_checksum_ipv6_raw(s.octets(), d.octets(), payload),
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
    .expect("synthetic TCP payload fits");
    let mut transport = tcp.to_bytes().to_vec();
    transport.extend_from_slice(payload);
    ip_packet(src.ip(), dst.ip(), PROTO_TCP, &transport)
}

/// A client SYN as Linux sends it: a 40-byte TCP header whose options are MSS 1460, SACK permitted, a
/// timestamp and window scale 7.
pub fn tcp_syn(src: SocketAddr, dst: SocketAddr, isn: u32) -> Vec<u8> {
    use etherparse::TcpOptionElement::{
        MaximumSegmentSize, Noop, SelectiveAcknowledgementPermitted, Timestamp, WindowScale,
    };
    let mut tcp = TcpHeader::new(src.port(), dst.port(), isn, 0xFAF0);
    tcp.syn = true;
    tcp.set_options(&[
        MaximumSegmentSize(1460),
        SelectiveAcknowledgementPermitted,
        Timestamp(1, 0),
        Noop,
        WindowScale(7),
    ])
    .expect("the options of a SYN fit");
    tcp.checksum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => tcp.calc_checksum_ipv4_raw(s.octets(), d.octets(), &[]),
        (IpAddr::V6(s), IpAddr::V6(d)) => tcp.calc_checksum_ipv6_raw(s.octets(), d.octets(), &[]),
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
    .expect("a SYN has no payload");
    ip_packet(src.ip(), dst.ip(), PROTO_TCP, &tcp.to_bytes())
}

/// An IP header around a transport payload; both addresses must be of the same family.
pub fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, transport: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_packet(s, d, protocol, &[], transport),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_packet(s, d, protocol, &[], transport),
        _ => panic!("synthetic packet mixes IPv4 and IPv6 addresses"),
    }
}

/// An IPv4 packet (identification 0x1234, don't fragment, TTL 64); `options` (a multiple of 4 bytes) go between
/// the fixed header and the payload.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, options: &[u8], transport: &[u8]) -> Vec<u8> {
    let mut header = Ipv4Header::new(0, 64, IpNumber(protocol), src.octets(), dst.octets()).expect("empty payload");
    header.options = Ipv4Options::try_from(options).expect("IPv4 options are whole words, at most 40 bytes");
    header.identification = 0x1234;
    header.set_payload_len(transport.len()).expect("synthetic IPv4 payload fits");
    header.header_checksum = header.calc_header_checksum();
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(transport);
    packet
}

/// An IPv6 packet (hop limit 64) with extension headers given as `(header type, body)`; each body is padded so
/// the header is a whole number of 8-byte units (4-byte units for AH, type 51).
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    protocol: u8,
    extensions: &[(u8, &[u8])],
    transport: &[u8],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (kind, body)) in extensions.iter().enumerate() {
        let next = extensions.get(i + 1).map_or(protocol, |(kind, _)| *kind);
        let mut header = vec![next, 0];
        header.extend_from_slice(body);
        header.resize(header.len().next_multiple_of(8), 0);
        header[1] = match kind {
            51 => (header.len() / 4 - 2) as u8,
            44 => 0,
            _ => (header.len() / 8 - 1) as u8,
        };
        chain.extend_from_slice(&header);
    }
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (chain.len() + transport.len()) as u16,
        next_header: IpNumber(extensions.first().map_or(protocol, |(kind, _)| *kind)),
        hop_limit: 64,
        source: src.octets(),
        destination: dst.octets(),
    };
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(&chain);
    packet.extend_from_slice(transport);
    packet
}

/// Wraps an IP packet in the link-layer header of LINKTYPE `link` (see [`dlt`]; no VLAN tags for Ethernet).
pub fn frame(link: u32, ip_packet: &[u8]) -> Vec<u8> {
    let ether_type = ethertype_of(ip_packet);
    let mut out = match link {
        dlt::EN10MB => return ethernet_frame(&[], ip_packet),
        dlt::LINUX_SLL => LinuxSllHeader {
            packet_type: LinuxSllPacketType::OUTGOING,
            arp_hrd_type: ArpHardwareId::ETHERNET,
            sender_address_valid_length: 6,
            sender_address: [0x02, 0, 0, 0, 0, 0x01, 0, 0],
            protocol_type: LinuxSllProtocolType::EtherType(ether_type),
        }
        .to_bytes()
        .to_vec(),
        dlt::LINUX_SLL2 => {
            // Protocol, reserved, interface index 7, ARPHRD_ETHER, outgoing, a 6-byte address padded to 8.
            let mut h = ether_type.0.to_be_bytes().to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, 4, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0]);
            h
        }
        dlt::RAW | dlt::IPV4 | dlt::IPV6 => Vec::new(),
        other => panic!("no synthetic frames for LINKTYPE {other}"),
    };
    out.extend_from_slice(ip_packet);
    out
}

/// An Ethernet frame with 802.1Q tags (the first tag outermost; use two for QinQ).
pub fn ethernet_frame(vlan_tags: &[u16], ip_packet: &[u8]) -> Vec<u8> {
    let first_type = match vlan_tags.len() {
        0 => ethertype_of(ip_packet),
        // The outer tag of a QinQ pair is an 802.1ad service tag.
        1 => EtherType::VLAN_TAGGED_FRAME,
        _ => EtherType::PROVIDER_BRIDGING,
    };
    let ethernet = Ethernet2Header {
        destination: [0x02, 0, 0, 0, 0, 0x02],
        source: [0x02, 0, 0, 0, 0, 0x01],
        ether_type: first_type,
    };
    let mut out = ethernet.to_bytes().to_vec();
    for (i, tag) in vlan_tags.iter().enumerate() {
        let inner = vlan_tags.get(i + 1).map_or(ethertype_of(ip_packet), |_| EtherType::VLAN_TAGGED_FRAME);
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&inner.0.to_be_bytes());
    }
    out.extend_from_slice(ip_packet);
    out
}

fn ethertype_of(ip_packet: &[u8]) -> EtherType {
    match ip_packet.first().map(|b| b >> 4) {
        Some(6) => EtherType::IPV6,
        _ => EtherType::IPV4,
    }
}
