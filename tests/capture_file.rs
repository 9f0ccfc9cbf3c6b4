//! The savefile source: generated pcap and pcapng files round-trip through libpcap; broken files and unsupported
//! link types are errors that name the file and the problem.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use network_mapper::sources::capture::Error;
use network_mapper::sources::capture::frame::{FrameDecoder, FrameOutcome, LinkType};
use network_mapper::sources::capture::source::{DEFAULT_FILTER, Next, PacketSource, open_file};
use testkit::capfile::{Pcap, Pcapng};
use testkit::packets::{self, Record};

/// (server, client): IPv6 for the IPv6-only link type, IPv4 otherwise.
fn endpoints(link: LinkType) -> (SocketAddr, SocketAddr) {
    let (server, client) = match link {
        LinkType::Ipv6 => ("[2001:db8::53]:53", "[2001:db8::7]:41000"),
        _ => ("10.96.0.10:53", "10.244.1.7:41000"),
    };
    (server.parse().unwrap(), client.parse().unwrap())
}

/// Frames for one link type: an answer over UDP, a query (not an answer), and an answer over TCP.
fn frames(link: LinkType) -> Vec<Vec<u8>> {
    let answer = packets::response(1, "a.example", &[Record::A("a.example", Ipv4Addr::new(192, 0, 2, 1))]);
    let (server, client) = endpoints(link);
    let tcp_answer = packets::response(2, "b.example", &[Record::A("b.example", Ipv4Addr::new(192, 0, 2, 2))]);
    vec![
        packets::frame(link.linktype(), &packets::udp_packet(server, client, &answer)),
        packets::frame(link.linktype(), &packets::udp_packet(client, server, &answer)),
        packets::frame(
            link.linktype(),
            &packets::tcp_packet(server, client, 9, 0x18, &packets::tcp_dns_payload(&[&tcp_answer])),
        ),
    ]
}

fn write_pcap(path: &Path, linktype: u32, frames: &[Vec<u8>]) {
    let mut writer = Pcap::create(path, linktype).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        writer.write(1_700_000_000_000_000 + i as i64 * 1_500, frame);
    }
    writer.finish().unwrap();
}

/// Reads every packet: (timestamp, frame outcome, decoded message count).
fn read_all(source: &mut dyn PacketSource) -> Result<Vec<(i64, FrameOutcome, usize)>, Error> {
    let link = source.link_type();
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    loop {
        match source.next()? {
            Next::Packet(p) => {
                let mut messages = 0;
                let outcome = decoder.decode(link, p.data, &mut |_| messages += 1);
                out.push((p.at, outcome, messages));
            }
            Next::End => return Ok(out),
            Next::Idle => panic!("a file source is never idle"),
        }
    }
}

#[test]
fn pcap_files_of_every_link_type_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for link in LinkType::ALL {
        let path = dir.path().join(format!("{}.pcap", link.name()));
        write_pcap(&path, link.linktype(), &frames(link));
        let mut source = open_file(&path, None).unwrap();
        assert_eq!(source.link_type(), link);
        assert!(source.describe().contains(&path.display().to_string()));
        assert_eq!(source.kernel_stats(), None);
        let packets = read_all(source.as_mut()).unwrap();
        let expected = vec![
            (1_700_000_000_000_000, FrameOutcome::Dns, 1),
            (1_700_000_000_001_500, FrameOutcome::NotDns, 0),
            (1_700_000_000_003_000, FrameOutcome::Dns, 1),
        ];
        assert_eq!(packets, expected, "{link:?}");
    }
}

#[test]
fn pcapng_files_are_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sll2.pcapng");
    let mut writer = Pcapng::new(std::fs::File::create(&path).unwrap(), LinkType::LinuxSll2.linktype()).unwrap();
    for frame in frames(LinkType::LinuxSll2) {
        writer.write(1_700_000_000_250_000, &frame).unwrap();
    }
    drop(writer);
    let mut source = open_file(&path, None).unwrap();
    assert_eq!(source.link_type(), LinkType::LinuxSll2);
    let packets = read_all(source.as_mut()).unwrap();
    assert_eq!(packets.len(), 3);
    assert!(packets.iter().all(|(at, _, _)| *at == 1_700_000_000_250_000));
}

#[test]
fn a_bpf_filter_applies_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eth.pcap");
    write_pcap(&path, 1, &frames(LinkType::Ethernet));
    let mut source = open_file(&path, Some(DEFAULT_FILTER)).unwrap();
    let outcomes: Vec<_> = read_all(source.as_mut()).unwrap().into_iter().map(|(_, o, _)| o).collect();
    assert_eq!(outcomes, vec![FrameOutcome::Dns, FrameOutcome::Dns], "the query from the client is filtered out");
}

#[test]
fn a_bad_filter_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eth.pcap");
    write_pcap(&path, 1, &frames(LinkType::Ethernet));
    let err = open_file(&path, Some("udp src prt 53")).err().expect("invalid filter");
    assert!(matches!(err, Error::BadFilter { .. }), "{err}");
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("udp src prt 53"), "{err}");
}

#[test]
fn a_record_cut_mid_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    write_pcap(&path, 1, &frames(LinkType::Ethernet));
    let full = std::fs::read(&path).unwrap();
    for cut in [full.len() - 5, full.len() - frames(LinkType::Ethernet)[2].len() - 8] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let mut source = open_file(&path, None).unwrap();
        let err = read_all(source.as_mut()).expect_err("truncated file");
        assert!(matches!(err, Error::CorruptFile { .. }), "{err}");
        assert!(err.is_bad_input());
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()) && message.contains("truncated"), "{message}");
    }
}

#[test]
fn garbage_missing_and_empty_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file, just some text that goes on for a while").unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.pcap");
    for path in [garbage, empty, missing] {
        let err = open_file(&path, None).err().expect("not a capture file");
        assert!(matches!(err, Error::OpenFile { .. }), "{err}");
        assert!(err.is_bad_input());
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn an_unsupported_link_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user0.pcap");
    write_pcap(&path, 147, &[vec![1, 2, 3]]);
    let err = open_file(&path, None).err().expect("unsupported link type");
    assert!(matches!(err, Error::UnsupportedLinkType { dlt: 147, .. }), "{err}");
    assert!(err.is_bad_input());
    assert_eq!(err.metric_label(), "unsupported_link_type");
    let message = err.to_string();
    assert!(message.contains("unsupported link type 147 (USER0)"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}
