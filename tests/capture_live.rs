//! Live capture end to end: a real dnsmasq in a network namespace answers real queries sent from the root namespace;
//! `open_live` on the root side of the veth pair must yield those answers, decoded, with the right client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use network_mapper::sources::capture::Error;
use network_mapper::sources::capture::dns::{self, DnsResponse, NotAnswerReason};
use network_mapper::sources::capture::frame::{FrameDecoder, FrameOutcome, LinkType};
use network_mapper::sources::capture::source::{
    BLOCK_TIMEOUT_MS, DEFAULT_FILTER, Delivery, IDLE_WAIT_MS, KernelStats, Next, PacketSource, RING_BYTES, SNAPLEN,
    Waker, open_live, open_live_with,
};
use simple_dns::TYPE;
use testkit::lab::{DnsLab, tcp_exchange, udp_exchange};
use testkit::live;
use testkit::packets;
use testkit::threads::ThreadUsage;

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

    // Let the capture see the last answers (a block is handed over within its timeout) and report the drained ring
    // as Idle, then stop it.
    let deadline = Instant::now() + after_a_block();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let result = capture.join().expect("capture thread").expect("capture read");

    assert_eq!(result.link, LinkType::Ethernet, "a veth captures as Ethernet");
    assert!(result.idle_reports > 0, "a drained live capture reports Idle, so the reader can do its chores");
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

/// What a reader thread saw: when each packet reached it, how often it reported Idle, its thread id.
struct Reading {
    arrivals: Vec<Instant>,
    idle_reports: usize,
    stats: Option<KernelStats>,
}

/// Long enough for the kernel to hand over a block that holds packets (its timeout), with room to read it.
fn after_a_block() -> Duration {
    Duration::from_millis(BLOCK_TIMEOUT_MS as u64 + 400)
}

/// Reads `source` on its own thread until `stop` (wake `waker` after setting it); returns the thread's id (for
/// [`ThreadUsage::of`]) and its handle.
fn read_until(
    mut source: Box<dyn PacketSource>,
    stop: Arc<AtomicBool>,
    waker: &Waker,
) -> (i32, std::thread::JoinHandle<Reading>) {
    source.wake_with(waker.clone());
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tid_tx.send(ThreadUsage::current_tid()).unwrap();
        let (mut arrivals, mut idle_reports) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            match source.next().expect("live read") {
                Next::Packet(_) => arrivals.push(Instant::now()),
                Next::Idle => idle_reports += 1,
                Next::End => break,
            }
        }
        Reading { arrivals, idle_reports, stats: source.kernel_stats() }
    });
    (tid_rx.recv().unwrap(), reader)
}

/// Sizes of this process's mappings of packet sockets (the kernel rings libpcap maps), from `/proc/self/maps`.
fn packet_ring_mappings() -> Vec<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.contains("socket:"))
        .map(|l| {
            let (start, end) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
            usize::from_str_radix(end, 16).unwrap() - usize::from_str_radix(start, 16).unwrap()
        })
        .collect()
}

/// What libpcap cannot do with a TPACKET_V3 ring: its own wait blocks without a timeout while no packet arrives, and
/// the kernel hands over no empty block. Our poll(2) must still report Idle (so the reader can do its chores), must
/// not spin, must end at once when woken (shutdown), and a lone answer must reach the reader within about one block
/// timeout.
#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn a_lone_answer_on_an_idle_interface_is_read_within_the_block_timeout_and_idle_costs_nothing() {
    let lab = DnsLab::start(RECORDS, "svc.example");
    let source = open_live(&lab.veth.root_if, DEFAULT_FILTER).unwrap();
    let rings = packet_ring_mappings();
    assert!(rings.contains(&RING_BYTES), "libpcap maps the ring it was asked for: {rings:?}");
    let (stop, waker) = (Arc::new(AtomicBool::new(false)), Waker::new().unwrap());
    let (tid, reader) = read_until(source, stop.clone(), &waker);

    std::thread::sleep(Duration::from_millis(300));
    let (before, idle) = (ThreadUsage::of(tid), Duration::from_secs(3));
    std::thread::sleep(idle);
    let usage = ThreadUsage::of(tid).since(before);
    println!("idle reader over {idle:?}: {usage:?}");
    assert!(usage.cpu_ticks <= 1, "an idle capture thread must not spin: {usage:?}");
    let polls = idle.as_millis() as u64 / IDLE_WAIT_MS as u64;
    assert!(usage.wakeups <= polls + 10, "one wakeup per {IDLE_WAIT_MS} ms poll at most: {usage:?}");

    let query = packets::query(0x2001, "svc.example", TYPE::A);
    udp_exchange(IpAddr::V4(lab.veth.root_v4), lab.server_v4(), &query, Duration::from_secs(2)).unwrap();
    let answered = Instant::now();
    std::thread::sleep(after_a_block());
    stop.store(true, Ordering::Relaxed);
    let woken = Instant::now();
    waker.wake();
    let reading = reader.join().unwrap();
    let stopping = woken.elapsed();
    assert_eq!(reading.arrivals.len(), 1, "exactly the one answer");
    let latency = reading.arrivals[0].saturating_duration_since(answered);
    println!("lone answer read {latency:?} after the client had it (block timeout {BLOCK_TIMEOUT_MS} ms)");
    assert!(latency < Duration::from_millis(BLOCK_TIMEOUT_MS as u64 + 200), "read after {latency:?}");
    let waits = idle.as_millis() as usize / IDLE_WAIT_MS as usize;
    assert!(reading.idle_reports >= waits, "Idle every {IDLE_WAIT_MS} ms while quiet: {}", reading.idle_reports);
    println!("the reader stopped {stopping:?} after it was woken");
    assert!(stopping < Duration::from_millis(IDLE_WAIT_MS as u64 / 4), "a wake ends the wait: {stopping:?}");
}

/// Sends `answers` queries, one per millisecond or so, with a reader running in `delivery` mode; returns how many
/// answers it read, how often its thread woke up, and the kernel's counters.
fn trickle(lab: &DnsLab, delivery: Delivery, answers: u16) -> (usize, ThreadUsage, KernelStats) {
    let source = open_live_with(&lab.veth.root_if, DEFAULT_FILTER, delivery).unwrap();
    let (stop, waker) = (Arc::new(AtomicBool::new(false)), Waker::new().unwrap());
    let (tid, reader) = read_until(source, stop.clone(), &waker);
    let before = ThreadUsage::of(tid);
    for id in 0..answers {
        let query = packets::query(id, "svc.example", TYPE::A);
        udp_exchange(IpAddr::V4(lab.veth.root_v4), lab.server_v4(), &query, Duration::from_secs(2)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(after_a_block());
    let usage = ThreadUsage::of(tid).since(before);
    stop.store(true, Ordering::Relaxed);
    waker.wake();
    let reading = reader.join().unwrap();
    (reading.arrivals.len(), usage, reading.stats.expect("live captures have kernel stats"))
}

/// The point of batching: a steady trickle of answers wakes the reader once per block (every
/// [`BLOCK_TIMEOUT_MS`] at most), where immediate mode wakes it once per answer.
#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn a_trickle_of_answers_wakes_the_reader_once_per_block_not_once_per_answer() {
    let lab = DnsLab::start(RECORDS, "svc.example");
    const ANSWERS: u16 = 400;
    let (read, batched, stats) = trickle(&lab, Delivery::Batched, ANSWERS);
    let (read_immediate, immediate, _) = trickle(&lab, Delivery::Immediate, ANSWERS);
    println!("{ANSWERS} answers: batched {batched:?}, immediate {immediate:?}");
    assert_eq!((read, stats.dropped), (usize::from(ANSWERS), 0), "{stats:?}");
    assert_eq!(read_immediate, usize::from(ANSWERS));
    assert!(batched.wakeups * 4 < u64::from(ANSWERS), "batched reader woke {} times", batched.wakeups);
    assert!(immediate.wakeups > 2 * batched.wakeups, "immediate {immediate:?} vs batched {batched:?}");
}

/// The snaplen still cuts: a ~5 KB answer over TCP, in one segment on a 9,000-byte MTU, is captured as its first
/// [`SNAPLEN`] bytes, and the decoder reports the frame as truncated rather than a message.
#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn an_answer_longer_than_the_snaplen_is_cut_and_decodes_as_truncated() {
    let strings: String = (0..20).map(|i| format!(",{}", char::from(b'a' + i).to_string().repeat(250))).collect();
    let big = format!("--txt-record=big.example{strings}");
    let lab = DnsLab::start(&[RECORDS, &[big.as_str()]].concat(), "svc.example");
    testkit::cmd::ok(testkit::cmd::run("ip", &["link", "set", &lab.veth.root_if, "mtu", "9000"]));
    testkit::cmd::ok(testkit::cmd::run("ip", &["-n", &lab.netns.name, "link", "set", &lab.veth.ns_if, "mtu", "9000"]));
    let mut source = open_live(&lab.veth.root_if, DEFAULT_FILTER).unwrap();
    let (_, response) =
        tcp_exchange(lab.server_v4(), &packets::query(0x3001, "big.example", TYPE::TXT), Duration::from_secs(3))
            .unwrap();
    assert!(response.len() > SNAPLEN as usize, "the answer is {} bytes", response.len());

    let (link, mut decoder, mut cut, mut decoded) = (source.link_type(), FrameDecoder::new(), Vec::new(), Vec::new());
    let deadline = Instant::now() + after_a_block();
    while Instant::now() < deadline {
        if let Next::Packet(p) = source.next().unwrap() {
            let outcome = decoder.decode(link, p.data, &mut |m| decoded.push(m.bytes.len()));
            if p.data.len() == SNAPLEN as usize {
                cut.push(outcome);
            }
        }
    }
    assert_eq!(cut, vec![FrameOutcome::Truncated], "one frame cut at the snaplen, reported truncated");
    assert!(decoded.is_empty(), "no message from a cut frame: {decoded:?}");
}
