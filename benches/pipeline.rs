//! Throughput and memory of the DNS path: decode + de-duplication + resolution + counting.
//!
//! Generates a capture of 1,000,000 DNS answers (LINUX_SLL2, as `tcpdump -i any` writes; a quarter of them
//! followed by the kube-proxy NAT copy that must be de-duplicated) into a temporary file, then replays it through
//! the real file source and pipeline on one thread against the fixture inventory.
//!
//! Run: `cargo bench --bench pipeline`. Budget (issue 2): ≥ 1,000,000 answers/s on one core, < 30 MB peak RSS.
//! Exits non-zero when over budget.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use network_mapper::exporter::metrics::{DnsOutcome, Enabled, Limits, Metrics, Outcome};
use network_mapper::exporter::pipeline::{DnsPipeline, Recorder};
use network_mapper::resolve::ResolveConfig;
use network_mapper::sources::capture::source::{self, Next};
use network_mapper::sources::inventory::load_file;
use testkit::capfile::Pcap;
use testkit::packets::{self, Record, dlt};

/// Answers in the generated capture (`BENCH_ANSWERS` overrides, e.g. for a profiler run).
const DEFAULT_ANSWERS: u32 = 1_000_000;
/// SLL2 (20) + IPv4 (20) + UDP (8): where the DNS message starts in the frames built here.
const DNS_OFFSET: usize = 48;
/// The UDP destination port (the client's port) within the frame.
const DST_PORT_OFFSET: usize = 42;

const CLIENTS: [&str; 8] =
    ["10.0.1.10", "10.0.1.30", "10.0.1.40", "10.0.1.50", "10.0.1.51", "10.0.1.53", "10.0.1.60", "10.0.1.70"];

fn names() -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = [
        ("cart.shop.svc.cluster.local", "10.96.0.20"),
        ("invoices.billing.svc.cluster.local", "10.96.1.5"),
        ("redis-0.redis.shop.svc.cluster.local", "10.0.1.30"),
        ("kubernetes.default.svc.cluster.local", "10.96.0.1"),
        ("legacy.shop.svc.cluster.local", "10.96.0.99"),
    ]
    .iter()
    .map(|(n, ip)| (n.to_string(), ip.to_string()))
    .collect();
    names.extend((0..20).map(|i| (format!("api{i}.example.com"), format!("203.0.113.{i}"))));
    names
}

/// One frame per (client, name); the per-answer DNS id and client port are patched in.
fn templates() -> Vec<Vec<u8>> {
    let names = names();
    let mut frames = Vec::new();
    for client in CLIENTS {
        for (name, ip) in &names {
            let dns = packets::response(0, name, &[Record::A(name, ip.parse().unwrap())]);
            let dst: SocketAddr = format!("{client}:1").parse().unwrap();
            let packet = packets::udp_packet("10.0.0.53:53".parse().unwrap(), dst, &dns);
            frames.push(packets::frame(dlt::LINUX_SLL2, &packet));
        }
    }
    frames
}

/// Writes the capture; returns the number of frames.
fn write_capture(path: &Path, answers: u32) -> u64 {
    let mut w = Pcap::create(path, dlt::LINUX_SLL2).unwrap();
    let mut templates = templates();
    let count = templates.len();
    let (mut at, mut frames) = (1_772_323_200_000_000i64, 0u64);
    for i in 0..answers {
        let frame = &mut templates[i as usize % count];
        frame[DNS_OFFSET..DNS_OFFSET + 2].copy_from_slice(&(i as u16).to_be_bytes());
        frame[DST_PORT_OFFSET..DST_PORT_OFFSET + 2].copy_from_slice(&(1024 + (i / 65536) as u16).to_be_bytes());
        at += 1;
        w.write(at, frame);
        frames += 1;
        if i % 4 == 0 {
            // The NAT copy: same destination and payload, the Service address as source.
            let mut nat = frame.clone();
            nat[20 + 12..20 + 16].copy_from_slice(&[10, 96, 0, 10]);
            w.write(at, &nat);
            frames += 1;
        }
    }
    w.finish().unwrap();
    frames
}

fn peak_rss_kib() -> u64 {
    testkit::e2e::procs::Usage::of(std::process::id()).map_or(0, |usage| usage.peak_rss_kib)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.pcap");
    let answers: u32 = std::env::var("BENCH_ANSWERS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ANSWERS);
    let frames = write_capture(&path, answers);
    let inventory = load_file(Path::new("tests/fixtures/inventory/cluster.yaml")).unwrap();
    let (metrics, _registry) = Metrics::new(Limits::default(), Enabled { capture: true, ..Enabled::default() });
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some("node-a".into()) };
    let recorder = Recorder::new(Arc::new(RwLock::new(inventory)), Arc::new(config), metrics.clone());
    let mut pipeline = DnsPipeline::new(recorder);
    let mut source = source::open_file(&path, None).unwrap();
    let link = source.link_type();

    let started = Instant::now();
    let mut seen = 0u64;
    while let Next::Packet(p) = source.next().unwrap() {
        pipeline.process_frame(link, p.at, p.data);
        seen += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(seen, frames);
    let counted = metrics.dns_responses.get_or_create(&Outcome(DnsOutcome::Counted)).get();
    let duplicates = metrics.dns_responses.get_or_create(&Outcome(DnsOutcome::Duplicate)).get();
    let rate = f64::from(answers) / elapsed;
    let rss_mib = peak_rss_kib() as f64 / 1024.0;
    println!(
        "pipeline: {answers} answers in {frames} frames, {elapsed:.3} s: {rate:.0} answers/s ({:.0} ns/answer), counted {counted}, duplicates {duplicates}, peak RSS {rss_mib:.1} MiB",
        elapsed * 1e9 / f64::from(answers)
    );
    assert_eq!(counted, u64::from(answers), "every answer resolves to a counted edge");
    assert_eq!(duplicates, u64::from(answers.div_ceil(4)), "every NAT copy is a duplicate");
    let ok = rate >= 1_000_000.0 && rss_mib < 30.0;
    println!("budget (>= 1,000,000 answers/s, < 30 MiB peak RSS): {}", if ok { "met" } else { "MISSED" });
    if !ok {
        std::process::exit(1);
    }
}
