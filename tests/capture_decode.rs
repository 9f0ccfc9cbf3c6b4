//! Frame decoding over every link type, IP version, UDP and TCP (with reassembly), against bytes built by
//! `testkit::packets`; and the truncated/malformed cases at every layer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use network_mapper::sources::capture::dns::{self, DnsResponse};
use network_mapper::sources::capture::frame::{FrameDecoder, FrameOutcome, LinkType};
use testkit::packets::{self, Record, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, dlt};

fn server4() -> SocketAddr {
    "10.96.0.10:53".parse().unwrap()
}
fn client4() -> SocketAddr {
    "10.244.1.7:41000".parse().unwrap()
}
fn server6() -> SocketAddr {
    "[fd00:10:96::a]:53".parse().unwrap()
}
fn client6() -> SocketAddr {
    "[fd00:10:244:1::7]:41000".parse().unwrap()
}

fn answer(id: u16, name: &str, last_octet: u8) -> Vec<u8> {
    packets::response(id, name, &[Record::A(name, Ipv4Addr::new(10, 0, 0, last_octet))])
}

/// Decoded messages, owned: (src, dst, tcp, bytes).
type Seen = Vec<(SocketAddr, SocketAddr, bool, Vec<u8>)>;

fn decode(decoder: &mut FrameDecoder, link: LinkType, frame: &[u8]) -> (FrameOutcome, Seen) {
    let mut seen = Vec::new();
    let outcome = decoder.decode(link, frame, &mut |m| seen.push((m.src, m.dst, m.tcp, m.bytes.to_vec())));
    (outcome, seen)
}

fn decode_one(link: LinkType, frame: &[u8]) -> (FrameOutcome, Seen) {
    decode(&mut FrameDecoder::new(), link, frame)
}

#[test]
fn udp_answer_decodes_on_every_link_type_and_ip_version() {
    let message = answer(7, "cartservice.shop.svc.cluster.local", 5);
    for (server, client) in [(server4(), client4()), (server6(), client6())] {
        let packet = packets::udp_packet(server, client, &message);
        for link in LinkType::ALL {
            if (link == LinkType::Ipv4 && server.is_ipv6()) || (link == LinkType::Ipv6 && server.is_ipv4()) {
                continue;
            }
            let (outcome, seen) = decode_one(link, &packets::frame(link.linktype(), &packet));
            assert_eq!(outcome, FrameOutcome::Dns, "{link:?} {server}");
            assert_eq!(seen, vec![(server, client, false, message.clone())], "{link:?} {server}");
        }
    }
}

#[test]
fn vlan_and_qinq_tags_are_followed() {
    let message = answer(8, "a.example", 1);
    for tags in [&[100u16][..], &[10, 20][..]] {
        for (server, client) in [(server4(), client4()), (server6(), client6())] {
            let frame = packets::ethernet_frame(tags, &packets::udp_packet(server, client, &message));
            let (outcome, seen) = decode_one(LinkType::Ethernet, &frame);
            assert_eq!(outcome, FrameOutcome::Dns, "tags {tags:?}");
            assert_eq!(seen[0].3, message);
        }
    }
}

#[test]
fn vlan_tag_after_sll_header_is_followed() {
    // libpcap re-inserts a stripped VLAN tag after the cooked header on device `any`.
    let message = answer(9, "b.example", 2);
    let mut frame = packets::frame(dlt::LINUX_SLL, &packets::udp_packet(server4(), client4(), &message));
    frame.splice(14..16, [0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
    let (outcome, seen) = decode_one(LinkType::LinuxSll, &frame);
    assert_eq!(outcome, FrameOutcome::Dns);
    assert_eq!(seen[0].3, message);
}

#[test]
fn ipv4_options_are_skipped_and_ethernet_padding_is_trimmed() {
    let message = answer(10, "c.example", 3);
    let udp_only = &packets::udp_packet(server4(), client4(), &message)[20..];
    let (IpAddr::V4(s), IpAddr::V4(d)) = (server4().ip(), client4().ip()) else { unreachable!() };
    let packet = packets::ipv4_packet(s, d, 17, &[1, 1, 1, 0, 0x94, 0x04, 0, 0], udp_only);
    let mut frame = packets::ethernet_frame(&[], &packet);
    frame.extend_from_slice(&[0; 12]); // padding after the IP packet
    let (outcome, seen) = decode_one(LinkType::Ethernet, &frame);
    assert_eq!(outcome, FrameOutcome::Dns);
    assert_eq!(seen[0].3, message);
}

#[test]
fn ipv6_extension_headers_are_skipped_and_fragments_reported() {
    let message = answer(11, "d.example", 4);
    let udp_only = &packets::udp_packet(server6(), client6(), &message)[40..];
    let (IpAddr::V6(s), IpAddr::V6(d)) = (server6().ip(), client6().ip()) else { unreachable!() };
    let hop_by_hop: &[u8] = &[1, 4, 0, 0, 0, 0];
    let auth: &[u8] = &[0; 18];
    let packet = packets::ipv6_packet(s, d, 17, &[(0, hop_by_hop), (60, &[1, 0]), (51, auth)], udp_only);
    let (outcome, seen) = decode_one(LinkType::Ipv6, &packet);
    assert_eq!(outcome, FrameOutcome::Dns);
    assert_eq!(seen[0].3, message);

    let fragment = packets::ipv6_packet(s, d, 17, &[(44, &[0, 1, 0, 0, 0, 7])], udp_only);
    assert_eq!(decode_one(LinkType::Ipv6, &fragment).0, FrameOutcome::Fragment);
}

#[test]
fn ipv4_fragments_are_reported() {
    let mut packet = packets::udp_packet(server4(), client4(), &answer(12, "e.example", 5));
    packet[6] = 0x20; // more fragments
    assert_eq!(decode_one(LinkType::Raw, &packet).0, FrameOutcome::Fragment);
    packet[6] = 0x00;
    packet[7] = 0x10; // a later fragment
    assert_eq!(decode_one(LinkType::Raw, &packet).0, FrameOutcome::Fragment);
}

#[test]
fn traffic_not_from_port_53_is_not_dns() {
    let message = answer(13, "f.example", 6);
    let query_direction = packets::udp_packet(client4(), server4(), &message);
    assert_eq!(decode_one(LinkType::Raw, &query_direction).0, FrameOutcome::NotDns);
    let tcp = packets::tcp_packet(client4(), server4(), 1, TCP_ACK, &packets::tcp_dns_payload(&[&message]));
    assert_eq!(decode_one(LinkType::Raw, &tcp).0, FrameOutcome::NotDns);
    let icmp = packets::ip_packet(server4().ip(), client4().ip(), 1, &[8, 0, 0, 0]);
    assert_eq!(decode_one(LinkType::Raw, &icmp).0, FrameOutcome::NotDns);
    let mut arp = packets::ethernet_frame(&[], &[0; 28]);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(decode_one(LinkType::Ethernet, &arp).0, FrameOutcome::NotDns);
}

#[test]
fn every_cut_of_a_frame_is_truncated_never_a_message() {
    let message = answer(14, "g.example", 7);
    for (server, client) in [(server4(), client4()), (server6(), client6())] {
        for link in [LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Raw] {
            let frame = packets::frame(link.linktype(), &packets::udp_packet(server, client, &message));
            for cut in 0..frame.len() {
                let (outcome, seen) = decode_one(link, &frame[..cut]);
                assert_eq!(outcome, FrameOutcome::Truncated, "{link:?} cut at {cut}");
                assert!(seen.is_empty());
            }
        }
    }
}

#[test]
fn contradictory_headers_are_malformed() {
    let packet = packets::udp_packet(server4(), client4(), &answer(15, "h.example", 8));
    let mut bad_ihl = packet.clone();
    bad_ihl[0] = 0x43;
    assert_eq!(decode_one(LinkType::Ipv4, &bad_ihl).0, FrameOutcome::Malformed);
    let mut bad_total = packet.clone();
    bad_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(decode_one(LinkType::Ipv4, &bad_total).0, FrameOutcome::Malformed);
    let mut bad_udp_len = packet.clone();
    bad_udp_len[24..26].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(decode_one(LinkType::Ipv4, &bad_udp_len).0, FrameOutcome::Malformed);
    let mut v6_on_v4_link = packet.clone();
    v6_on_v4_link[0] = 0x65;
    assert_eq!(decode_one(LinkType::Ipv4, &v6_on_v4_link).0, FrameOutcome::Malformed);
    let mut bad_tcp_offset = packets::tcp_packet(server4(), client4(), 1, TCP_ACK, b"xx");
    bad_tcp_offset[32] = 0x20;
    assert_eq!(decode_one(LinkType::Ipv4, &bad_tcp_offset).0, FrameOutcome::Malformed);
    let five_tags = packets::ethernet_frame(&[1, 2, 3, 4, 5], &packet);
    assert_eq!(decode_one(LinkType::Ethernet, &five_tags).0, FrameOutcome::Malformed);
}

/// Feeds a sequence of TCP segments (seq, flags, payload) from the server to one decoder.
fn feed_tcp(decoder: &mut FrameDecoder, segments: &[(u32, u8, &[u8])]) -> (Vec<FrameOutcome>, Vec<Vec<u8>>) {
    let mut outcomes = Vec::new();
    let mut messages = Vec::new();
    for (seq, flags, payload) in segments {
        let frame = packets::frame(dlt::LINUX_SLL2, &packets::tcp_packet(server4(), client4(), *seq, *flags, payload));
        let (outcome, seen) = decode(decoder, LinkType::LinuxSll2, &frame);
        outcomes.push(outcome);
        for (src, dst, tcp, bytes) in seen {
            assert_eq!((src, dst, tcp), (server4(), client4(), true));
            messages.push(bytes);
        }
    }
    (outcomes, messages)
}

#[test]
fn tcp_handshake_then_several_messages_in_one_segment() {
    let (m1, m2) = (answer(1, "one.example", 1), answer(2, "two.example", 2));
    let stream = packets::tcp_dns_payload(&[&m1, &m2]);
    let mut decoder = FrameDecoder::new();
    let (outcomes, messages) =
        feed_tcp(&mut decoder, &[(999, TCP_SYN | TCP_ACK, b""), (1000, TCP_PSH | TCP_ACK, &stream)]);
    assert_eq!(outcomes, vec![FrameOutcome::TcpNoMessage, FrameOutcome::Dns]);
    assert_eq!(messages, vec![m1, m2]);
    assert_eq!(decoder.tcp_flows(), 1);
    feed_tcp(&mut decoder, &[(1000 + stream.len() as u32, TCP_FIN | TCP_ACK, b"")]);
    assert_eq!(decoder.tcp_flows(), 0, "FIN drops the flow");
}

#[test]
fn tcp_message_split_over_segments_even_inside_the_prefix() {
    let (m1, m2) = (answer(1, "one.example", 1), answer(2, "two.example", 2));
    let stream = packets::tcp_dns_payload(&[&m1, &m2]);
    for first_cut in [1, 2, 10, m1.len() + 2, m1.len() + 3] {
        let second_cut = (first_cut + 7).min(stream.len());
        let seq = |at: usize| 5000 + at as u32;
        let (outcomes, messages) = feed_tcp(
            &mut FrameDecoder::new(),
            &[
                (4999, TCP_SYN | TCP_ACK, b""),
                (seq(0), TCP_ACK, &stream[..first_cut]),
                (seq(first_cut), TCP_ACK, &stream[first_cut..second_cut]),
                (seq(second_cut), TCP_ACK, &stream[second_cut..]),
            ],
        );
        assert_eq!(messages, vec![m1.clone(), m2.clone()], "cut at {first_cut}");
        assert_eq!(outcomes[3], FrameOutcome::Dns);
    }
}

#[test]
fn tcp_retransmissions_and_duplicate_copies_are_ignored() {
    let (m1, m2) = (answer(1, "one.example", 1), answer(2, "two.example", 2));
    let stream = packets::tcp_dns_payload(&[&m1, &m2]);
    let half = m1.len() / 2;
    let (outcomes, messages) = feed_tcp(
        &mut FrameDecoder::new(),
        &[
            (0, TCP_SYN | TCP_ACK, b""),
            (0, TCP_SYN | TCP_ACK, b""), // the copy on another interface
            (1, TCP_ACK, &stream[..half]),
            (1, TCP_ACK, &stream[..half]),         // duplicate copy
            (1, TCP_ACK, &stream[..m1.len() + 2]), // retransmission that overlaps and completes m1
            (1, TCP_ACK, &stream[..m1.len() + 2]),
            (1 + m1.len() as u32 + 2, TCP_ACK, &stream[m1.len() + 2..]),
        ],
    );
    assert_eq!(messages, vec![m1, m2]);
    assert_eq!(outcomes[5], FrameOutcome::TcpNoMessage);
}

#[test]
fn tcp_gap_resets_the_flow_and_a_mid_stream_start_assumes_a_message_boundary() {
    let (m1, m2) = (answer(1, "one.example", 1), answer(2, "two.example", 2));
    let first = packets::tcp_dns_payload(&[&m1]);
    let second = packets::tcp_dns_payload(&[&m2]);
    let (_, messages) = feed_tcp(
        &mut FrameDecoder::new(),
        &[
            (100, TCP_ACK, &first[..5]), // no handshake seen: starts a flow
            // bytes 105..200 lost: the partial m1 is dropped, m2 starts a fresh message
            (200, TCP_ACK, &second),
        ],
    );
    assert_eq!(messages, vec![m2]);
}

#[test]
fn tcp_sequence_numbers_wrap() {
    let (m1, m2) = (answer(1, "one.example", 1), answer(2, "two.example", 2));
    let stream = packets::tcp_dns_payload(&[&m1, &m2]);
    let start = u32::MAX - 10;
    let (_, messages) = feed_tcp(
        &mut FrameDecoder::new(),
        &[
            (start - 1, TCP_SYN | TCP_ACK, b""),
            (start, TCP_ACK, &stream[..20]),
            (start.wrapping_add(20), TCP_ACK, &stream[20..]),
            (start, TCP_ACK, &stream[..20]), // old copy after the wrap
        ],
    );
    assert_eq!(messages, vec![m1, m2]);
}

#[test]
fn tcp_rst_drops_the_flow_and_its_partial_message() {
    let m1 = answer(1, "one.example", 1);
    let stream = packets::tcp_dns_payload(&[&m1]);
    let mut decoder = FrameDecoder::new();
    let (_, messages) =
        feed_tcp(&mut decoder, &[(0, TCP_SYN | TCP_ACK, b""), (1, TCP_ACK, &stream[..10]), (11, TCP_RST, b"")]);
    assert!(messages.is_empty());
    assert_eq!(decoder.tcp_flows(), 0);
}

#[test]
fn tcp_state_is_bounded_by_flows_and_bytes() {
    let mut decoder = FrameDecoder::with_tcp_limits(4, 100);
    for port in 0..20u16 {
        let client = SocketAddr::new(client4().ip(), 30000 + port);
        let frame = packets::tcp_packet(server4(), client, 0, TCP_SYN | TCP_ACK, b"");
        decode(&mut decoder, LinkType::Raw, &frame);
    }
    assert_eq!(decoder.tcp_flows(), 4);

    // A message longer than the per-flow cap is skipped whole; the next one is still found.
    let big = packets::response(1, "big.example", &[Record::A("big.example", Ipv4Addr::LOCALHOST); 10]);
    let small = answer(2, "small.example", 2);
    assert!(big.len() > 100);
    let stream = packets::tcp_dns_payload(&[&big, &small]);
    let (_, messages) = feed_tcp(
        &mut decoder,
        &[(0, TCP_SYN | TCP_ACK, b""), (1, TCP_ACK, &stream[..50]), (51, TCP_ACK, &stream[50..])],
    );
    assert_eq!(messages, vec![small]);
}

#[test]
fn tcp_over_ipv6_decodes() {
    let m1 = answer(3, "six.example", 6);
    let packet = packets::tcp_packet(server6(), client6(), 7, TCP_ACK | TCP_PSH, &packets::tcp_dns_payload(&[&m1]));
    let (outcome, seen) = decode_one(LinkType::Ethernet, &packets::ethernet_frame(&[5], &packet));
    assert_eq!(outcome, FrameOutcome::Dns);
    assert_eq!(seen, vec![(server6(), client6(), true, m1)]);
}

#[test]
fn frame_outcomes_have_distinct_metric_labels() {
    let labels: std::collections::HashSet<_> = FrameOutcome::ALL.iter().map(|o| o.metric_label()).collect();
    assert_eq!(labels.len(), FrameOutcome::ALL.len());
}

#[test]
fn link_types_map_from_dlt_and_back() {
    for link in LinkType::ALL {
        assert_eq!(LinkType::from_dlt(link.linktype() as i32), Some(link));
    }
    assert_eq!(LinkType::from_dlt(12), Some(LinkType::Raw), "DLT_RAW as libpcap reports it on Linux");
    assert_eq!(LinkType::from_dlt(147), None);
    assert_eq!(LinkType::from_dlt(0), None);
}

#[test]
fn decoded_udp_message_parses_to_the_answer() {
    let message = packets::response(
        42,
        "Api.Example.COM",
        &[Record::Cname("api.example.com", "lb.example.net"), Record::Aaaa("lb.example.net", Ipv6Addr::LOCALHOST)],
    );
    let (_, seen) = decode_one(
        LinkType::LinuxSll,
        &packets::frame(dlt::LINUX_SLL, &packets::udp_packet(server4(), client4(), &message)),
    );
    match dns::parse_response(&seen[0].3) {
        DnsResponse::Answer(a) => {
            assert_eq!(a.question, "api.example.com");
            assert_eq!(a.addresses, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        }
        other => panic!("expected an answer, got {other:?}"),
    }
}
