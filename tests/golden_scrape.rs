//! Golden scrape: a capture file plus an inventory file through the real binary (`--print-metrics`) must give
//! exactly `tests/golden/scrape.prom` (DNS answers and client SYNs from the capture, TCP connections from the fake
//! `/proc` tree `tests/fixtures/proc`), minus the series that vary between runs (process metrics, build info).
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden_scrape` rewrites the capture fixture and the golden file; review the
//! diff before committing it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use clap::Parser;
use network_mapper::exporter;
use network_mapper::exporter::config::Args;
use network_mapper::exporter::server::Exposition;

use simple_dns::{RCODE, TYPE};
use testkit::capfile::{Pcap, pcap_bytes};
use testkit::golden;
use testkit::packets::{self, Record, dlt};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";
const GOLDEN: &str = "tests/golden/scrape.prom";
/// 2026-03-01T00:00:00Z.
const START: i64 = 1_772_323_200_000_000;

/// The exporter's flags for this scenario: node-a is the node under test.
const FLAGS: [&str; 10] = [
    "--pcap-file",
    CAPTURE,
    "--inventory-file",
    INVENTORY,
    "--node-name",
    "node-a",
    "--cluster-domain",
    "cluster.local",
    "--procfs-root",
    "tests/fixtures/proc",
];

const KUBE_DNS_SERVICE: &str = "10.96.0.10:53";
const KUBE_DNS_POD: &str = "10.0.0.53:53";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Builds the capture. Each answer is written as device `any` shows it: once from the DNS pod and once more
/// with the Service address after kube-proxy NAT, so every counted answer also has a duplicate.
/// LINUX_SLL2 is what `tcpdump -i any` writes.
fn capture_bytes() -> Vec<u8> {
    pcap_bytes(dlt::LINUX_SLL2, write_capture)
}

fn write_capture(w: &mut Pcap) {
    let mut at = START;
    let mut udp = |w: &mut Pcap, client: &str, payload: Vec<u8>| {
        for server in [KUBE_DNS_POD, KUBE_DNS_SERVICE] {
            at += 150;
            let frame = packets::frame(dlt::LINUX_SLL2, &packets::udp_packet(addr(server), addr(client), &payload));
            w.write(at, &frame);
        }
    };
    let a = |name, ip: &str| Record::A(name, ip.parse().unwrap());
    let cart = "cart.shop.svc.cluster.local";
    udp(w, "10.0.1.10:40001", packets::response(1, cart, &[a(cart, "10.96.0.20")]));
    udp(w, "10.0.1.10:40002", packets::response(2, cart, &[a(cart, "10.96.0.20")]));
    let invoices = "invoices.billing.svc.cluster.local";
    udp(w, "10.0.1.10:40003", packets::response(3, invoices, &[a(invoices, "10.96.1.5")]));
    let stripe = "API.Stripe.com";
    let chain = [Record::Cname(stripe, "stripe.map.fastly.net"), a("stripe.map.fastly.net", "151.101.0.1")];
    udp(w, "10.0.1.10:40004", packets::response(4, stripe, &chain));
    let api = "kubernetes.default.svc.cluster.local";
    udp(w, "10.0.1.10:40005", packets::response(5, api, &[a(api, "10.96.0.1")]));
    let redis0 = "redis-0.redis.shop.svc.cluster.local";
    udp(w, "10.0.1.50:40006", packets::response(6, redis0, &[a(redis0, "10.0.1.30")]));
    let by_ip = "10-0-1-30.shop.pod.cluster.local";
    udp(w, "10.0.1.51:40007", packets::response(7, by_ip, &[a(by_ip, "10.0.1.30")]));
    // Not counted here: a client on node-b, a node process (hostNetwork IP), an unknown IP.
    udp(w, "10.0.1.20:40008", packets::response(8, redis0, &[a(redis0, "10.0.1.30")]));
    udp(w, "192.168.50.10:40009", packets::response(9, cart, &[a(cart, "10.96.0.20")]));
    udp(w, "10.9.9.9:40010", packets::response(10, cart, &[a(cart, "10.96.0.20")]));
    // Not answers: a search-path NXDOMAIN and an empty AAAA answer.
    udp(w, "10.0.1.10:40011", packets::nxdomain(11, "cart.shop.svc.cluster.local.shop.svc.cluster.local"));
    udp(w, "10.0.1.10:40012", packets::response_with(12, cart, TYPE::AAAA, RCODE::NoError, &[]));
    // A malformed message from port 53.
    udp(w, "10.0.1.10:40013", vec![0x00, 0x0d, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0xff]);
    // DNS over TCP: two answers in one segment, to the CronJob pod.
    let legacy = "legacy.shop.svc.cluster.local";
    let gw = "payments-gw.shop.svc.cluster.local";
    let msgs = [
        packets::response(14, legacy, &[a(legacy, "10.96.0.99")]),
        packets::response(15, gw, &[a(gw, "203.0.113.80")]),
    ];
    let payload = packets::tcp_dns_payload(&[&msgs[0], &msgs[1]]);
    let segment = packets::tcp_packet(
        addr(KUBE_DNS_POD),
        addr("10.0.1.40:40014"),
        1,
        packets::TCP_ACK | packets::TCP_PSH,
        &payload,
    );
    w.write(at + 1_000, &packets::frame(dlt::LINUX_SLL2, &segment));
    // kube-dns forwards a name upstream: the upstream's answer to the CoreDNS pod is `forwarded`, no edge.
    let ext = "api.example.org";
    let forwarded = packets::response(16, ext, &[a(ext, "198.51.100.7")]);
    let upstream = packets::udp_packet(addr("192.0.2.53:53"), addr("10.0.0.53:38000"), &forwarded);
    w.write(at + 2_000, &packets::frame(dlt::LINUX_SLL2, &upstream));
    syns(w, at + 3_000);
}

/// Client SYNs as device `any` shows them: checkout dials the `web` ClusterIP on port 80 (the copy before NAT,
/// the copy after NAT to the pod's port 8080, and a retransmission: one connection on port 8080), and redis-0 by
/// pod IP; not edges: a SYN from a client on node-b, a DNS-over-TCP lookup to kube-dns, a node process.
fn syns(w: &mut Pcap, mut at: i64) {
    let checkout = addr("10.0.1.10:41000");
    let copies = [
        (checkout, "10.96.0.50:80", 100),
        (checkout, "10.0.1.50:8080", 100),
        (checkout, "10.96.0.50:80", 100),
        (checkout, "10.0.1.50:8080", 100),
        (addr("10.0.1.10:41001"), "10.0.1.30:6379", 200),
        (addr("10.0.1.20:41002"), "10.96.0.50:80", 300),
        (addr("10.0.1.10:41003"), "10.96.0.10:53", 400),
        (addr("192.168.50.10:41004"), "10.0.1.50:8080", 500),
    ];
    for (i, (client, server, isn)) in copies.into_iter().enumerate() {
        // The retransmission a second after the first two copies.
        at += if i == 2 { 1_000_000 } else { 50 };
        let frame = packets::frame(dlt::LINUX_SLL2, &packets::tcp_syn(client, addr(server), isn));
        w.write(at, &frame);
    }
}

/// Series whose values vary between runs or builds: process metrics, the build, scan durations (the scan count
/// stays).
fn is_volatile(line: &str) -> bool {
    let duration = "network_mapper_socket_scan_duration_seconds_";
    if line.starts_with(duration) && !line.starts_with("network_mapper_socket_scan_duration_seconds_count") {
        return true;
    }
    [
        "process_",
        "network_mapper_build_info",
        "# HELP process_",
        "# TYPE process_",
        "# HELP network_mapper_build",
        "# TYPE network_mapper_build",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// A last-success timestamp within the last hour is written `recent`: the golden file says that the source
/// succeeded during the run, not when.
fn stamp_as_recent(line: &str) -> String {
    let Some((series, value)) = line.rsplit_once(' ') else { return line.to_string() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    match value.parse::<f64>() {
        Ok(at) if series.starts_with("network_mapper_source_last_success") && (now - at).abs() < 3600.0 => {
            format!("{series} recent")
        }
        _ => line.to_string(),
    }
}

/// Families are written in registration order but series within a family in hash order, so series lines are
/// sorted within each family before comparing.
fn normalize(exposition: &str) -> String {
    let mut out = String::new();
    let mut series: Vec<String> = Vec::new();
    let flush = |series: &mut Vec<String>, out: &mut String| {
        series.sort_unstable();
        series.drain(..).for_each(|s| out.push_str(&format!("{s}\n")));
    };
    for line in exposition.lines().filter(|l| !is_volatile(l)) {
        if line.starts_with('#') {
            flush(&mut series, &mut out);
            out.push_str(&format!("{line}\n"));
        } else {
            series.push(stamp_as_recent(line));
        }
    }
    flush(&mut series, &mut out);
    out
}

fn scrape() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_network-mapper"))
        .args(FLAGS)
        .arg("--print-metrics")
        .output()
        .expect("network-mapper runs");
    assert!(output.status.success(), "exit {:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    normalize(&String::from_utf8(output.stdout).unwrap())
}

#[test]
fn capture_fixture_is_what_the_builder_writes() {
    golden::assert_matches(Path::new(CAPTURE), &capture_bytes());
}

#[test]
fn scrape_matches_the_golden_file() {
    if golden::updating() {
        std::fs::write(CAPTURE, capture_bytes()).unwrap();
    }
    golden::assert_matches(Path::new(GOLDEN), scrape().as_bytes());
}

#[test]
fn classic_exposition_of_the_same_scrape_passes_promtool_check_metrics() {
    // promtool lints the classic text format (in OpenMetrics, `# HELP x` does not name `x_total`), so the same
    // inputs are rendered classic through the library and checked.
    let promtool = Path::new("/usr/bin/promtool");
    assert!(promtool.exists(), "promtool is missing: run `make setup` (installs Debian's prometheus package)");
    let args = Args::parse_from(std::iter::once("network-mapper").chain(FLAGS));
    let text = exporter::print_metrics(&args, Exposition::Classic).expect("fixture scrape renders");
    assert!(text.contains("# TYPE network_mapper_edge_total counter"), "classic format expected:\n{text}");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{report}");
}
