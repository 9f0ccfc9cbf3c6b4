//! Writes the inputs of the live capture benchmark (`benches/capture_live.sh`, `docs/capture.md`): an Ethernet
//! capture of a busy node's DNS traffic and the inventory file it resolves against.
//!
//! `cargo run --release --example capture_bench_gen -- OUT_DIR [ANSWERS]` writes `OUT_DIR/cluster.pcap` and
//! `OUT_DIR/inventory.yaml`. The inventory holds 2,000 running pods (10.1.0.0/16, namespace `bench`, node
//! `node-a`). Each answer appears as a node's capture shows it: the client's query to the cluster DNS Service and
//! its NAT copy to the DNS pod (both dropped by the default BPF filter in the kernel), then the DNS pod's answer and
//! the Service-addressed copy kube-proxy rewrites (a duplicate the exporter must discard). So 4 frames per answer,
//! 2 of which reach user space. Each answer is a pod DNS name (`10-1-x-y.bench.pod.cluster.local`) of the client's
//! one server pod, so every answer is a counted edge and the edge count stays at 2,000.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use simple_dns::TYPE;
use testkit::capfile::Pcap;
use testkit::packets::{self as synth, Record, dlt};

const PODS: u32 = 2_000;
const DEFAULT_ANSWERS: u32 = 200_000;
const DNS_SERVICE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const DNS_POD: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 53);
/// 2026-03-01T00:00:00Z: after every pod's creation, so file replays resolve as live ones do.
const START_MICROS: i64 = 1_772_323_200_000_000;

fn pod_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn inventory(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: ''\nitems:")?;
    for i in 0..PODS {
        let ip = pod_ip(i);
        writeln!(
            out,
            "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: pod-{i}\n    namespace: bench\n    \
             creationTimestamp: '2020-01-01T00:00:00Z'\n  spec:\n    nodeName: node-a\n    hostNetwork: false\n  \
             status:\n    phase: Running\n    podIP: {ip}\n    podIPs:\n    - ip: {ip}"
        )?;
    }
    Ok(())
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// The four frames of answer `n`: query, its NAT copy, the answer, its NAT copy.
fn frames(n: u32) -> [Vec<u8>; 4] {
    let client_index = n % PODS;
    let server = pod_ip((client_index * 7 + 1) % PODS);
    let name = format!("{}.bench.pod.cluster.local", server.to_string().replace('.', "-"));
    let id = n as u16;
    let client = v4(pod_ip(client_index), 1024 + (n / 65_536 % 60_000) as u16);
    let query = synth::query(id, &name, TYPE::A);
    let answer = synth::response(id, &name, &[Record::A(&name, server)]);
    let frame = |src, dst, payload: &[u8]| synth::ethernet_frame(&[], &synth::udp_packet(src, dst, payload));
    [
        frame(client, v4(DNS_SERVICE, 53), &query),
        frame(client, v4(DNS_POD, 53), &query),
        frame(v4(DNS_POD, 53), client, &answer),
        frame(v4(DNS_SERVICE, 53), client, &answer),
    ]
}

fn main() -> std::io::Result<()> {
    let (dir, answers) = testkit::args::out_dir_and_count("capture_bench_gen", "ANSWERS", DEFAULT_ANSWERS);
    std::fs::create_dir_all(&dir)?;
    let mut yaml = BufWriter::new(File::create(dir.join("inventory.yaml"))?);
    inventory(&mut yaml)?;
    yaml.flush()?;
    let mut pcap = Pcap::create(&dir.join("cluster.pcap"), dlt::EN10MB)?;
    for n in 0..answers {
        // 20 µs per answer in the file; tcpreplay --pps sets the live pace.
        let at = START_MICROS + i64::from(n) * 20;
        for (k, frame) in frames(n).iter().enumerate() {
            pcap.write(at + k as i64, frame);
        }
    }
    pcap.finish()?;
    println!("{answers} answers, {} frames, {PODS} pods in {}", answers * 4, dir.display());
    Ok(())
}
