//! The node filter (docs/design.md §7): the kernel passes only answers to this node's pods that can count, and
//! replacing the filter as pods come and go loses no answer that both filters pass. The expression is checked
//! against the header rules on synthetic frames of each kind; then a real dnsmasq answers real queries from three
//! client addresses, and the capture on the root side of the veth is filtered to some of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use network_mapper::sources::capture::frame::FrameDecoder;
use network_mapper::sources::capture::node_filter::{self, NodeAddresses};
use network_mapper::sources::capture::prefilter::header_verdict;
use network_mapper::sources::capture::source::{
    BLOCK_TIMEOUT_MS, DEFAULT_FILTER, Delivery, Next, PacketSource, open_file, open_live, open_live_with,
};
use network_mapper::sources::capture::syn::SYN_FILTER;
use simple_dns::TYPE;
use testkit::capfile::Pcap;
use testkit::cmd::ok;
use testkit::lab::{DnsLab, tcp_exchange, udp_exchange};
use testkit::packets::{self, dlt};

const RECORDS: &[&str] = &["--address=/svc.example/10.99.0.7", "--local=/nx.example/"];

/// [`packets::messages_of_each_kind`] (ids 1 to 7), and a header cut short (id 8, 6 bytes).
fn messages_of_each_kind() -> Vec<Vec<u8>> {
    let mut messages = packets::messages_of_each_kind();
    messages.push(vec![0, 8, 0x81, 0x80, 0, 1]);
    messages
}

/// The ids of the messages that pass `filter` over `transport` on a capture file of LINKTYPE `link`.
/// `transport` takes each message with its index (a TCP message needs a connection of its own).
fn passed(link: u32, filter: &str, transport: impl Fn(usize, &[u8]) -> Vec<u8>) -> Vec<u16> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.pcap");
    let mut file = Pcap::create(&path, link).unwrap();
    for (at, message) in messages_of_each_kind().iter().enumerate() {
        file.write(at as i64, &packets::frame(link, &transport(at, message)));
    }
    file.finish().unwrap();
    let mut source = open_file(&path, Some(filter)).unwrap();
    let (link, mut decoder, mut ids) = (source.link_type(), FrameDecoder::new(), Vec::new());
    while let Next::Packet(p) = source.next().unwrap() {
        decoder.decode(link, p.data, &mut |m| ids.push(u16::from_be_bytes([m.bytes[0], m.bytes[1]])));
    }
    ids
}

#[test]
fn the_node_filter_passes_udp_answers_that_can_count_and_every_tcp_answer() {
    let node = NodeAddresses {
        hosts: vec!["10.244.3.5".parse().unwrap(), "fd00::5".parse().unwrap()],
        ..NodeAddresses::default()
    };
    let filter = node_filter::for_node(&node_filter::countable_answers(), Some(SYN_FILTER), &node).unwrap();
    // What user space would make of each: only an answer the header rules let through can count; a header cut
    // short must reach user space to be counted malformed.
    let can_count: Vec<u16> = messages_of_each_kind()
        .iter()
        .filter(|m| m.len() < 12 || header_verdict(m).is_ok())
        .map(|m| u16::from_be_bytes([m[0], m[1]]))
        .collect();
    assert_eq!(can_count, [1, 7, 8]);
    let all: Vec<u16> = (1..=8).collect();
    for link in [dlt::EN10MB, dlt::LINUX_SLL2, dlt::RAW] {
        for (server, client) in [("10.96.0.10:53", "10.244.3.5"), ("[fd00::53]:53", "fd00::5")] {
            let (server, client): (SocketAddr, IpAddr) = (server.parse().unwrap(), client.parse().unwrap());
            let port = |i: usize| SocketAddr::new(client, 40_000 + i as u16);
            let udp = passed(link, &filter, |i, m| packets::udp_packet(server, port(i), m));
            assert_eq!(udp, can_count, "UDP from {server} on LINKTYPE {link}");
            let segment = |i, m: &[u8]| {
                let push = packets::TCP_ACK | packets::TCP_PSH;
                packets::tcp_packet(server, port(i), 1, push, &packets::tcp_dns_payload(&[m]))
            };
            let tcp = passed(link, &filter, segment);
            assert_eq!(tcp, all, "TCP from {server} on LINKTYPE {link}: the DNS header's place is not fixed");
            let elsewhere =
                SocketAddr::new(if server.is_ipv4() { "10.244.9.5" } else { "fd00::9" }.parse().unwrap(), 1);
            let to_elsewhere = passed(link, &filter, |_, m| packets::udp_packet(server, elsewhere, m));
            assert!(to_elsewhere.is_empty(), "another node's pod: {to_elsewhere:?}");
        }
    }
}

/// The lab plus two more client addresses on the root side, routed from the server's namespace.
struct Clients {
    lab: DnsLab,
    addresses: [IpAddr; 3],
}

impl Clients {
    fn start() -> Clients {
        let lab = DnsLab::start(RECORDS, "svc.example");
        let third = (std::process::id() % 250) as u8;
        let extra = [Ipv4Addr::new(198, 18, third, 1), Ipv4Addr::new(198, 18, third, 2)];
        for ip in extra {
            ok(testkit::cmd::run("ip", &["addr", "add", &format!("{ip}/32"), "dev", &lab.veth.root_if]));
        }
        ok(lab.netns.ip(&["route", "add", &format!("198.18.{third}.0/24"), "dev", &lab.veth.ns_if]));
        let addresses = [IpAddr::V4(lab.veth.root_v4), IpAddr::V4(extra[0]), IpAddr::V4(extra[1])];
        Clients { lab, addresses }
    }

    fn ask(&self, from: IpAddr, id: u16) {
        let query = packets::query(id, "svc.example", TYPE::A);
        ok(udp_exchange(from, self.lab.server_v4(), &query, Duration::from_secs(2)));
    }
}

fn filter_for(hosts: &[IpAddr]) -> String {
    let node = NodeAddresses { hosts: hosts.to_vec(), ..NodeAddresses::default() };
    node_filter::for_node(DEFAULT_FILTER, Some(SYN_FILTER), &node).unwrap()
}

/// Reads `source` until `stop` and a quiet spell, counting DNS messages by destination; calls `between` after
/// every read.
fn count_answers(
    source: &mut dyn PacketSource,
    stop: &AtomicBool,
    mut between: impl FnMut(&mut dyn PacketSource),
) -> HashMap<IpAddr, usize> {
    let (link, mut decoder, mut seen) = (source.link_type(), FrameDecoder::new(), HashMap::new());
    let mut quiet_since = None;
    loop {
        match source.next().unwrap() {
            Next::Packet(p) => {
                decoder.decode(link, p.data, &mut |m| *seen.entry(m.dst.ip()).or_insert(0) += 1);
                quiet_since = None;
            }
            Next::Idle | Next::End if stop.load(Ordering::Acquire) => {
                let quiet = Duration::from_millis(BLOCK_TIMEOUT_MS as u64 + 300);
                if quiet_since.get_or_insert_with(Instant::now).elapsed() > quiet {
                    return seen;
                }
            }
            Next::Idle | Next::End => {}
        }
        between(source);
    }
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn the_node_filter_passes_only_answers_to_the_nodes_pods() {
    let clients = Clients::start();
    let [pod, other_a, other_b] = clients.addresses;
    let mut source = open_live(&clients.lab.veth.root_if, DEFAULT_FILTER).unwrap();
    source.replace_filter(&filter_for(&[pod])).unwrap();
    for id in 0..50 {
        for from in clients.addresses {
            clients.ask(from, id);
        }
    }
    let seen = count_answers(source.as_mut(), &AtomicBool::new(true), |_| {});
    assert_eq!(seen.get(&pod), Some(&50), "{seen:?}");
    assert_eq!((seen.get(&other_a), seen.get(&other_b)), (None, None), "{seen:?}");
    assert_eq!(source.kernel_stats().unwrap().dropped, 0);
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn answers_that_cannot_count_stay_in_the_kernel() {
    let clients = Clients::start();
    let pod = clients.addresses[0];
    let node = NodeAddresses { hosts: vec![pod], ..NodeAddresses::default() };
    let mut source = open_live(&clients.lab.veth.root_if, DEFAULT_FILTER).unwrap();
    source.replace_filter(&node_filter::for_node(&node_filter::countable_answers(), None, &node).unwrap()).unwrap();
    let timeout = Duration::from_secs(2);
    for (id, name, qtype) in [(1, "svc.example", TYPE::A), (2, "nx.example", TYPE::A), (3, "svc.example", TYPE::AAAA)] {
        ok(udp_exchange(pod, clients.lab.server_v4(), &packets::query(id, name, qtype), timeout));
    }
    ok(tcp_exchange(clients.lab.server_v4(), &packets::query(4, "nx.example", TYPE::A), timeout));

    let (link, mut decoder, mut ids) = (source.link_type(), FrameDecoder::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_millis(BLOCK_TIMEOUT_MS as u64 + 600);
    while Instant::now() < deadline {
        if let Next::Packet(p) = source.next().unwrap() {
            decoder.decode(link, p.data, &mut |m| ids.push(u16::from_be_bytes([m.bytes[0], m.bytes[1]])));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 4], "the answer, and the NXDOMAIN over TCP; not the NXDOMAIN or NODATA over UDP");
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn replacing_the_filter_while_answers_flow_loses_none_of_them() {
    let clients = Arc::new(Clients::start());
    let [pod, other_a, other_b] = clients.addresses;
    // Immediate delivery hands the reader every answer as it arrives, so the replacements after each read overlap
    // the answers still flowing in (a batched reader reads a block at a time and replaces between blocks). The
    // replacement is the socket's, whichever ring the kernel fills.
    let mut source = open_live_with(&clients.lab.veth.root_if, DEFAULT_FILTER, Delivery::Immediate).unwrap();
    source.replace_filter(&filter_for(&[pod])).unwrap();
    const ANSWERS: u16 = 3_000;
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (clients, done) = (clients.clone(), done.clone());
        std::thread::spawn(move || {
            (0..ANSWERS).for_each(|id| clients.ask(pod, id));
            done.store(true, Ordering::Release);
        })
    };
    // Pods come and go around the one that asks: the filter is replaced after every read, cycling through sets
    // that all hold it.
    let sets = [vec![pod], vec![pod, other_a], vec![other_b, pod, other_a]];
    let mut replaced = 0usize;
    let seen = count_answers(source.as_mut(), &done, |source| {
        source.replace_filter(&filter_for(&sets[replaced % sets.len()])).unwrap();
        replaced += 1;
    });
    sender.join().unwrap();
    assert!(replaced > usize::from(ANSWERS), "the filter was replaced {replaced} times");
    assert_eq!(seen.get(&pod), Some(&usize::from(ANSWERS)), "every answer to the pod, through {replaced} replacements");
    assert_eq!(source.kernel_stats().unwrap().dropped, 0);
}
