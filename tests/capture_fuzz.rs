//! Robustness: random bytes and random mutations of valid frames, for every link type, go through the whole decode
//! path (FrameDecoder → dedup_key_hash → parse_response) without panicking, and whatever comes out is consistent.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use network_mapper::sources::capture::dns::{DnsResponse, dedup_key_hash, parse_response};
use network_mapper::sources::capture::frame::{FrameDecoder, FrameOutcome, LinkType};
use proptest::prelude::*;
use testkit::packets::{self, Record, TCP_ACK, TCP_FIN, TCP_SYN};

/// Runs one frame through everything and checks the invariants that hold for any input.
fn exercise(decoder: &mut FrameDecoder, link: LinkType, frame: &[u8]) {
    let mut messages = 0;
    let outcome = decoder.decode(link, frame, &mut |m| {
        messages += 1;
        assert!(m.bytes.len() <= usize::from(u16::MAX));
        assert!(m.tcp || m.bytes.len() <= frame.len());
        assert_eq!(m.src.port(), 53, "only answers from port 53 come out");
        let _ = dedup_key_hash(m.bytes);
        if let DnsResponse::Answer(a) = parse_response(m.bytes) {
            assert!(!a.addresses.is_empty());
            assert_eq!(a.question, a.question.to_ascii_lowercase());
        }
    });
    assert_eq!(outcome == FrameOutcome::Dns, messages > 0, "{outcome:?} with {messages} messages");
}

fn link_type() -> impl Strategy<Value = LinkType> {
    prop::sample::select(LinkType::ALL.to_vec())
}

/// A valid frame of `link`: UDP or TCP, carrying one or two answers (with a CNAME), from port 53.
fn valid_frame(link: LinkType, tcp: bool, v6: bool) -> Vec<u8> {
    let v6 = match link {
        LinkType::Ipv4 => false,
        LinkType::Ipv6 => true,
        _ => v6,
    };
    let (server, client): (SocketAddr, SocketAddr) = if v6 {
        ("[2001:db8::53]:53".parse().unwrap(), "[2001:db8::7]:40000".parse().unwrap())
    } else {
        ("192.0.2.53:53".parse().unwrap(), "192.0.2.7:40000".parse().unwrap())
    };
    let answer = packets::response(
        3,
        "www.example.com",
        &[
            Record::Cname("www.example.com", "edge.example.net"),
            Record::A("edge.example.net", Ipv4Addr::new(192, 0, 2, 1)),
            Record::Aaaa("edge.example.net", Ipv6Addr::LOCALHOST),
        ],
    );
    let packet = if tcp {
        packets::tcp_packet(server, client, 77, TCP_ACK, &packets::tcp_dns_payload(&[&answer, &answer]))
    } else {
        packets::udp_packet(server, client, &answer)
    };
    match link {
        LinkType::Ethernet if v6 => packets::ethernet_frame(&[3, 4], &packet),
        _ => packets::frame(link.linktype(), &packet),
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut frame: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = frame.len().max(1);
        match *m {
            Mutation::Set(i, b) if !frame.is_empty() => frame[i % len] = b,
            Mutation::Truncate(i) => frame.truncate(i % len),
            Mutation::Insert(i, b) => frame.insert(i % (frame.len() + 1), b),
            Mutation::Remove(i) if !frame.is_empty() => {
                frame.remove(i % len);
            }
            _ => {}
        }
    }
    frame
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(link in link_type(), frame in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&mut FrameDecoder::new(), link, &frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        link in link_type(),
        tcp in any::<bool>(),
        v6 in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let frame = mutate(valid_frame(link, tcp, v6), &mutations);
        exercise(&mut FrameDecoder::new(), link, &frame);
    }

    #[test]
    fn mutated_tcp_segment_sequences_never_panic(
        link in link_type(),
        segments in prop::collection::vec(
            (prop::sample::select(vec![0u8, TCP_SYN, TCP_FIN, TCP_ACK, TCP_SYN | TCP_ACK]), any::<u32>(), 0usize..80,
             prop::collection::vec(mutation(), 0..3)),
            1..12,
        ),
    ) {
        // Segments of one flow with arbitrary sequence numbers, flags and cut, mutated stream slices.
        let mut decoder = FrameDecoder::with_tcp_limits(2, 300);
        let answer = packets::response(1, "a.example", &[Record::A("a.example", Ipv4Addr::LOCALHOST)]);
        let stream = packets::tcp_dns_payload(&[&answer, &answer, &answer]);
        let (server, client): (SocketAddr, SocketAddr) = match link {
            LinkType::Ipv6 => ("[2001:db8::53]:53".parse().unwrap(), "[2001:db8::7]:1".parse().unwrap()),
            _ => ("192.0.2.53:53".parse().unwrap(), "192.0.2.7:1".parse().unwrap()),
        };
        for (flags, seq, start, mutations) in segments {
            let start = start % stream.len();
            let payload = mutate(stream[start..].to_vec(), &mutations);
            let frame = packets::frame(link.linktype(), &packets::tcp_packet(server, client, seq % 512, flags, &payload));
            exercise(&mut decoder, link, &frame);
            prop_assert!(decoder.tcp_flows() <= 2);
        }
    }

    #[test]
    fn mutated_dns_messages_never_panic(mutations in prop::collection::vec(mutation(), 1..8)) {
        let answer = packets::response(
            9,
            "a.b.example",
            &[Record::Cname("a.b.example", "c.example"), Record::A("c.example", Ipv4Addr::LOCALHOST)],
        );
        let message = mutate(answer, &mutations);
        let _ = dedup_key_hash(&message);
        let _ = parse_response(&message);
    }
}
