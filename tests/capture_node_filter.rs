//! The node filter on a real capture (docs/design.md §7): the kernel passes only answers to this node's pods, and
//! replacing the filter as pods come and go loses no answer that both filters pass. A real dnsmasq answers real
//! queries from three client addresses; the capture on the root side of the veth is filtered to some of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use network_mapper::sources::capture::frame::FrameDecoder;
use network_mapper::sources::capture::node_filter::{self, NodeAddresses};
use network_mapper::sources::capture::source::{DEFAULT_FILTER, Next, PacketSource, open_live};
use network_mapper::sources::capture::syn::SYN_FILTER;
use simple_dns::TYPE;
use testkit::cmd::ok;
use testkit::lab::{DnsLab, udp_exchange};
use testkit::packets;

const RECORDS: &[&str] = &["--address=/svc.example/10.99.0.7"];

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
                if quiet_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(300) {
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
fn replacing_the_filter_while_answers_flow_loses_none_of_them() {
    let clients = Arc::new(Clients::start());
    let [pod, other_a, other_b] = clients.addresses;
    let mut source = open_live(&clients.lab.veth.root_if, DEFAULT_FILTER).unwrap();
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
