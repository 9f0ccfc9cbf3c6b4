//! CPU of the capture path under a SYN load, next to the CPU of a DNS answer.
//!
//! Generates three LINUX_SLL2 captures (as `tcpdump -i any` writes) and replays each through the real file source
//! and pipeline on one thread against the fixture inventory, timing the thread's CPU:
//! - answers: DNS answers to pods on this node, a quarter followed by their kube-proxy NAT copy;
//! - syns: client SYNs to a ClusterIP, each followed by its copy after DNAT, every tenth retransmitted once;
//! - mixed: 50,000 SYNs (with their NAT copies) per 10,000 answers, timestamps spaced as one second of such a
//!   node's traffic, repeated.
//!
//! Run: `cargo bench --bench syn_load` (`BENCH_SYNS` sets the SYNs per capture, default 500,000).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use network_mapper::exporter::metrics::{DnsOutcome, Enabled, LabelValue, Limits, Metrics, Outcome, SynOutcome};
use network_mapper::exporter::pipeline::{DnsPipeline, Recorder};
use network_mapper::resolve::ResolveConfig;
use network_mapper::sources::capture::frame::LinkType;
use network_mapper::sources::capture::source::{self, Next};
use network_mapper::sources::inventory::load_file;
use testkit::capfile::Pcap;
use testkit::packets::{self as synth, Record};

const DEFAULT_SYNS: u32 = 500_000;
/// Clients on node-a in the fixture inventory.
const CLIENTS: [&str; 8] =
    ["10.0.1.10", "10.0.1.30", "10.0.1.40", "10.0.1.50", "10.0.1.51", "10.0.1.53", "10.0.1.60", "10.0.1.70"];
const START: i64 = 1_772_323_200_000_000;

/// One item of traffic: a DNS answer (with or without its NAT copy) or a SYN (with its NAT copy, maybe resent).
enum Item {
    Answer(u32),
    Syn(u32),
}

fn client(i: u32) -> SocketAddr {
    let ip = CLIENTS[i as usize % CLIENTS.len()];
    format!("{ip}:{}", 1024 + (i / CLIENTS.len() as u32) % 64_000).parse().unwrap()
}

fn write(w: &mut Pcap, at: i64, packet: &[u8]) -> u64 {
    w.write(at, &synth::frame(LinkType::LinuxSll2.linktype(), packet));
    1
}

/// Writes the items at the given spacing; returns the frames written.
fn write_capture(path: &Path, items: impl Iterator<Item = (i64, Item)>) -> u64 {
    let mut w = Pcap::create(path, LinkType::LinuxSll2.linktype()).unwrap();
    let name = "cart.shop.svc.cluster.local";
    let mut frames = 0;
    for (at, item) in items {
        match item {
            Item::Answer(i) => {
                let dns = synth::response(i as u16, name, &[Record::A(name, "10.96.0.20".parse().unwrap())]);
                let dst = client(i);
                frames += write(&mut w, at, &synth::udp_packet("10.0.0.53:53".parse().unwrap(), dst, &dns));
                if i % 4 == 0 {
                    frames += write(&mut w, at + 20, &synth::udp_packet("10.96.0.10:53".parse().unwrap(), dst, &dns));
                }
            }
            Item::Syn(i) => {
                let (src, isn) = (client(i), i.wrapping_mul(2_654_435_761));
                frames += write(&mut w, at, &synth::tcp_syn(src, "10.96.0.50:80".parse().unwrap(), isn));
                frames += write(&mut w, at + 20, &synth::tcp_syn(src, "10.0.1.50:8080".parse().unwrap(), isn));
                if i % 10 == 0 {
                    frames +=
                        write(&mut w, at + 1_000_000, &synth::tcp_syn(src, "10.96.0.50:80".parse().unwrap(), isn));
                }
            }
        }
    }
    w.finish().unwrap();
    frames
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec owned by this frame.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Replays the capture; returns (CPU seconds, frames, metrics).
fn replay(path: &Path) -> (f64, u64, Metrics) {
    let inventory = load_file(Path::new("tests/fixtures/inventory/cluster.yaml")).unwrap();
    let (metrics, _registry) = Metrics::new(Limits::default(), Enabled { capture: true, ..Enabled::default() });
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some("node-a".into()) };
    let recorder = Recorder::new(Arc::new(RwLock::new(inventory)), Arc::new(config), metrics.clone());
    let mut pipeline = DnsPipeline::new(recorder);
    let mut source = source::open_file(path, None).unwrap();
    let link = source.link_type();
    let started = thread_cpu_seconds();
    let mut frames = 0;
    while let Next::Packet(p) = source.next().unwrap() {
        pipeline.process_frame(link, p.at, p.data);
        frames += 1;
    }
    (thread_cpu_seconds() - started, frames, metrics)
}

fn outcome(metrics: &Metrics, family: &str, outcome: &'static str) -> u64 {
    if family == "syn" {
        metrics.syns.get_or_create(&Outcome(SynOutcome::from_metric_label(outcome).expect("a SYN outcome"))).get()
    } else {
        metrics
            .dns_responses
            .get_or_create(&Outcome(DnsOutcome::from_metric_label(outcome).expect("a DNS outcome")))
            .get()
    }
}

fn main() {
    let syns: u32 = std::env::var("BENCH_SYNS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SYNS);
    let answers = syns / 5;
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("answers.pcap");
    write_capture(&path, (0..answers).map(|i| (START + i64::from(i) * 100, Item::Answer(i))));
    let (cpu, frames, m) = replay(&path);
    assert_eq!(outcome(&m, "dns", "counted"), u64::from(answers));
    let per_answer = cpu * 1e9 / f64::from(answers);
    println!("answers: {answers} answers ({frames} frames) in {cpu:.3} s CPU: {per_answer:.0} ns CPU per answer");

    let path = dir.path().join("syns.pcap");
    write_capture(&path, (0..syns).map(|i| (START + i64::from(i) * 20, Item::Syn(i))));
    let (cpu, frames, m) = replay(&path);
    assert_eq!(outcome(&m, "syn", "counted"), u64::from(syns), "each connection counts once");
    let per_syn = cpu * 1e9 / f64::from(syns);
    println!(
        "syns: {syns} connections ({frames} SYN frames: NAT copies, 10% retransmitted) in {cpu:.3} s CPU: \
         {per_syn:.0} ns CPU per connection, {:.0} ns per SYN frame",
        cpu * 1e9 / frames as f64
    );

    // One second of a busy node: 50,000 SYNs and 10,000 answers, interleaved, repeated.
    let path = dir.path().join("mixed.pcap");
    let items = (0..syns + answers).map(|k| {
        let (second, slot) = (k / 60_000, k % 60_000);
        let at = START + i64::from(second) * 1_000_000 + i64::from(slot) * 16;
        let item = if slot % 6 == 5 {
            Item::Answer(second * 10_000 + slot / 6)
        } else {
            Item::Syn(second * 50_000 + slot - slot / 6)
        };
        (at, item)
    });
    write_capture(&path, items);
    let (cpu, frames, m) = replay(&path);
    let seconds = f64::from(syns + answers) / 60_000.0;
    println!(
        "mixed: {} SYN connections + {} answers ({frames} frames) = {seconds:.1} s of 50,000 SYNs/s + 10,000 \
         answers/s, in {cpu:.3} s CPU: {:.1}% of one core",
        outcome(&m, "syn", "counted"),
        outcome(&m, "dns", "counted"),
        100.0 * cpu / seconds
    );
    println!("per item: SYN {per_syn:.0} ns vs DNS answer {per_answer:.0} ns CPU");
}
