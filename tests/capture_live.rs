//! Live capture end to end: a real dnsmasq in a network namespace answers real queries sent from the root namespace;
//! `open_live` on the root side of the veth pair must yield those answers, decoded, with the right client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use network_mapper::sources::capture::Error;
use network_mapper::sources::capture::dns::{self, DnsResponse, NotAnswerReason};
use network_mapper::sources::capture::frame::{FrameDecoder, LinkType};
use network_mapper::sources::capture::source::{DEFAULT_FILTER, KernelStats, Next, open_live};
use simple_dns::TYPE;
use testkit::lab::{DnsLab, tcp_exchange, udp_exchange};
use testkit::live;
use testkit::packets;

const RECORDS: &[&str] = &[
    "--address=/svc.example/10.99.0.7",
    "--address=/svc.example/2001:db8:99::7",
    "--host-record=web.example,10.99.0.8",
    "--cname=www.example,web.example",
    "--local=/nx.example/",
];

/// What the capture thread saw for one DNS id.
#[derive(Debug)]
struct Seen {
    server: SocketAddr,
    client: SocketAddr,
    tcp: bool,
    response: DnsResponse,
}

struct CaptureResult {
    by_id: HashMap<u16, Seen>,
    idle_reports: usize,
    link: LinkType,
    stats: Option<KernelStats>,
}

/// Reads the live source until `stop` is set, decoding every frame.
fn capture_until(interface: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<CaptureResult, Error>> {
    let mut source = open_live(interface, DEFAULT_FILTER).expect("open live capture on the veth");
    std::thread::spawn(move || {
        let link = source.link_type();
        let mut decoder = FrameDecoder::new();
        let (mut by_id, mut idle_reports) = (HashMap::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            match source.next()? {
                Next::Packet(p) => {
                    decoder.decode(link, p.data, &mut |m| {
                        let id = u16::from_be_bytes([m.bytes[0], m.bytes[1]]);
                        let response = dns::parse_response(m.bytes);
                        by_id.insert(id, Seen { server: m.src, client: m.dst, tcp: m.tcp, response });
                    });
                }
                Next::Idle => idle_reports += 1,
                Next::End => break,
            }
        }
        Ok(CaptureResult { by_id, idle_reports, link, stats: source.kernel_stats() })
    })
}

fn addresses(seen: &Seen) -> (&str, &[IpAddr]) {
    match &seen.response {
        DnsResponse::Answer(a) => (a.question.as_str(), a.addresses.as_slice()),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn live_capture_decodes_real_dnsmasq_answers_over_udp_tcp_ipv4_and_ipv6() {
    let lab = DnsLab::start(RECORDS, "svc.example");
    let stop = Arc::new(AtomicBool::new(false));
    let capture = capture_until(&lab.veth.root_if, stop.clone());
    let root_v4 = IpAddr::V4(lab.veth.root_v4);
    let timeout = Duration::from_secs(3);

    let queries = [(0x1001, "svc.example", TYPE::A), (0x1002, "WWW.example", TYPE::A), (0x1003, "nx.example", TYPE::A)];
    let mut clients = HashMap::new();
    for (id, name, qtype) in queries {
        let (client, _) = udp_exchange(root_v4, lab.server_v4(), &packets::query(id, name, qtype), timeout).unwrap();
        clients.insert(id, client);
    }
    let v6_query = packets::query(0x1004, "svc.example", TYPE::AAAA);
    let (client, _) = udp_exchange(IpAddr::V6(lab.veth.root_v6), lab.server_v6(), &v6_query, timeout).unwrap();
    clients.insert(0x1004, client);
    let (client, _) = tcp_exchange(lab.server_v4(), &packets::query(0x1005, "svc.example", TYPE::A), timeout).unwrap();
    clients.insert(0x1005, client);

    // Let the capture see the last answers and at least one idle timeout, then stop it.
    let deadline = Instant::now() + Duration::from_millis(600);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let result = capture.join().expect("capture thread").expect("capture read");

    assert_eq!(result.link, LinkType::Ethernet, "a veth captures as Ethernet");
    assert!(result.idle_reports > 0, "a quiet live capture reports Idle so shutdown can be noticed");
    let stats = result.stats.expect("live captures have kernel stats");
    assert!(stats.received >= 5 && stats.dropped == 0, "{stats:?}");

    for (id, client) in &clients {
        let seen = result.by_id.get(id).unwrap_or_else(|| panic!("answer {id:#x} not captured: {:?}", result.by_id));
        assert_eq!(seen.client, *client, "client of {id:#x} is the response's destination");
        assert_eq!(seen.server.port(), 53);
        assert_eq!(seen.tcp, *id == 0x1005, "transport of {id:#x}");
    }
    let v4 = |last| IpAddr::V4(Ipv4Addr::new(10, 99, 0, last));
    assert_eq!(addresses(&result.by_id[&0x1001]), ("svc.example", &[v4(7)][..]));
    assert_eq!(addresses(&result.by_id[&0x1002]), ("www.example", &[v4(8)][..]), "through the CNAME");
    assert_eq!(result.by_id[&0x1003].response, DnsResponse::NotAnswer(NotAnswerReason::NxDomain));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 7));
    assert_eq!(addresses(&result.by_id[&0x1004]), ("svc.example", &[v6][..]));
    assert_eq!(result.by_id[&0x1004].server, lab.server_v6());
    assert_eq!(addresses(&result.by_id[&0x1005]), ("svc.example", &[v4(7)][..]), "over TCP");
}

#[test]
#[ignore = "live: needs root for CAP_NET_RAW (run by `make test`)"]
fn opening_a_missing_interface_fails_with_its_name() {
    live::require(live::ROOT);
    let err = open_live("nm-no-such-if", DEFAULT_FILTER).err().expect("no such interface");
    assert!(matches!(err, Error::OpenDevice { .. }), "{err}");
    assert!(err.to_string().contains("nm-no-such-if"), "{err}");
    assert!(!err.is_bad_input());
}

#[test]
#[ignore = "live: needs root for CAP_NET_RAW (run by `make test`)"]
fn a_bad_live_filter_is_reported() {
    live::require(live::ROOT);
    let err = open_live("lo", "port fifty-three").err().expect("bad filter");
    assert!(matches!(err, Error::BadFilter { .. }), "{err}");
    assert!(err.is_bad_input());
}

const EPERM_PROBE: &str = "NETMAP_TEST_EPERM_PROBE";

#[test]
#[ignore = "live: needs root and setpriv to drop to an unprivileged user (run by `make test`)"]
fn capturing_without_cap_net_raw_says_which_capability_is_missing() {
    if std::env::var_os(EPERM_PROBE).is_some() {
        // The re-executed copy below, running as nobody with no capabilities.
        let err = open_live("lo", DEFAULT_FILTER).err().expect("capture must be refused without CAP_NET_RAW");
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        assert_eq!(err.metric_label(), "permission_denied");
        let message = err.to_string();
        println!("unprivileged open_live: {message}");
        assert!(message.contains("CAP_NET_RAW") && message.contains("securityContext"), "{message}");
        return;
    }
    live::require(&[live::Need::Root, live::Need::Tool("setpriv", "util-linux")]);
    let me = std::env::current_exe().unwrap();
    let name = "capturing_without_cap_net_raw_says_which_capability_is_missing";
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(&me)
        .args(["--exact", name, "--include-ignored", "--nocapture"])
        .env(EPERM_PROBE, "1")
        .output()
        .expect("run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "unprivileged probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The kernel ring must hold a burst while the reading thread is busy: with a 65,535-byte snaplen an 8 MiB ring
/// held only 128 frames in immediate mode, and a burst was mostly dropped.
#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn a_burst_of_answers_waits_in_the_ring_while_the_reader_is_busy() {
    let lab = DnsLab::start(RECORDS, "svc.example");
    let mut source = open_live(&lab.veth.root_if, DEFAULT_FILTER).unwrap();
    let root_v4 = IpAddr::V4(lab.veth.root_v4);
    const BURST: u16 = 1_500;
    for id in 0..BURST {
        let query = packets::query(id, "svc.example", TYPE::A);
        udp_exchange(root_v4, lab.server_v4(), &query, Duration::from_secs(2)).unwrap();
    }
    // Only now does the reader look: every answer must still be in the ring.
    let (mut captured, deadline) = (0u32, Instant::now() + Duration::from_secs(5));
    while captured < u32::from(BURST) && Instant::now() < deadline {
        if let Next::Packet(_) = source.next().unwrap() {
            captured += 1;
        }
    }
    let stats = source.kernel_stats().expect("live captures have kernel stats");
    assert_eq!((captured, stats.dropped), (u32::from(BURST), 0), "{stats:?}");
}
