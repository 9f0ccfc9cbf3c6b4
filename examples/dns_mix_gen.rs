//! Writes the inputs of the DNS-path comparison (`benches/dns_compare.sh`, docs/performance.md): what the node
//! that hosts CoreDNS captures in a 20-node cluster, with the mix of a real one.
//!
//! `cargo run --release --example dns_mix_gen -- OUT_DIR [RESPONSES]` writes
//! - `OUT_DIR/cluster.pcap`: Ethernet frames, about RESPONSES distinct DNS responses (default 1,000,000), each
//!   captured twice, each preceded by its query captured twice (dropped by the capture filter);
//! - `OUT_DIR/inventory.yaml`: 2,000 pods of 200 Deployments in 10 namespaces, spread over 20 nodes
//!   (`node-00`…`node-19`, each with the pod CIDR its pods are in, 10.244.N.0/24), their ReplicaSets, Services
//!   and EndpointSlices, and CoreDNS behind `kube-dns`;
//! - `OUT_DIR/cluster.tsv`: the same cluster as flat lines for the Go comparison (`benches/gopacket/`);
//! - `OUT_DIR/expected.txt`: the outcome counts every implementation must report, for all nodes and for the sample
//!   node (`sample_…`: `node-07`, or `$DNS_MIX_SAMPLE_NODE`). Every response is captured twice; non-answers, forwarded lookups and other nodes' answers are
//!   decided before de-duplication, so both copies count under that outcome, and `duplicate` is the second copy
//!   of each answer that goes on to count.
//!
//! The mix, per lookup of a client pod on any node (CoreDNS answers them all, from its pod on `node-00`):
//! - 55%: a Service of its own namespace by short name: the A answer (the ClusterIP) and the empty AAAA answer;
//! - 25%: a Service of another namespace (`app-7.ns-3`): the search path's first NXDOMAIN, then the A answer;
//! - 18%: a name outside the cluster: three search-path NXDOMAINs, CoreDNS's query to the upstream resolver and its
//!   answer (a forwarded lookup, addressed to the CoreDNS pod), then the CNAME + A answer to the client;
//! - 2%: a Service looked up over TCP (the client's SYN, then the length-prefixed answer in one segment).
//!
//! Every response is seen twice: from the CoreDNS pod and, after kube-proxy's reverse NAT, from the `kube-dns`
//! ClusterIP (the copy the exporter must drop). The upstream answer is seen twice too (the node's uplink and the
//! pod's veth).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::Value;
use simple_dns::{RCODE, TYPE};
use testkit::capfile::Pcap;
use testkit::k8s::{self, Endpoint, Pod};
use testkit::packets::{self as synth, Record, dlt};

const NODES: u32 = 20;
const NAMESPACES: u32 = 10;
const DEPLOYMENTS: u32 = 200;
const PODS_PER_DEPLOYMENT: u32 = 10;
const PODS: u32 = DEPLOYMENTS * PODS_PER_DEPLOYMENT;
const EXTERNAL_NAMES: u32 = 20;
/// The node whose exporter the `--node-name` runs play, unless `$DNS_MIX_SAMPLE_NODE` names another (the CoreDNS
/// pod's node, `node-00`, for the live capture benchmark).
const SAMPLE_NODE: &str = "node-07";
const DNS_SERVICE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const COREDNS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 244, 0, 250), Ipv4Addr::new(10, 244, 1, 250)];
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// 2026-03-01T00:00:00Z: after every object's creation.
const START_MICROS: i64 = 1_772_323_200_000_000;

fn node_of(pod: u32) -> u32 {
    pod % NODES
}

fn node_name(node: u32) -> String {
    format!("node-{node:02}")
}

fn pod_ip(pod: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node_of(pod) as u8, (pod / NODES + 2) as u8)
}

fn deployment_of(pod: u32) -> u32 {
    pod / PODS_PER_DEPLOYMENT
}

fn namespace_of(deployment: u32) -> String {
    format!("ns-{}", deployment % NAMESPACES)
}

fn service_ip(deployment: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, (1 + deployment / 250) as u8, (deployment % 250 + 1) as u8)
}

fn inventory() -> String {
    let mut items: Vec<Value> = (0..NODES)
        .map(|n| {
            let cidr = format!("10.244.{n}.0/24");
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name(n)},
                               "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        })
        .collect();
    for d in 0..DEPLOYMENTS {
        let name = format!("app-{d}");
        let pods = (0..PODS_PER_DEPLOYMENT).map(|k| d * PODS_PER_DEPLOYMENT + k).map(|pod| (pod_ip(pod), node_of(pod)));
        let service = Service { name: &name, ip: service_ip(d), port: 80, target_port: 8080 };
        deployment(&mut items, &namespace_of(d), &name, &service, pods.collect());
    }
    let coredns = COREDNS.iter().enumerate().map(|(k, ip)| (*ip, k as u32)).collect();
    let kube_dns = Service { name: "kube-dns", ip: DNS_SERVICE, port: 53, target_port: 53 };
    deployment(&mut items, "kube-system", "coredns", &kube_dns, coredns);
    k8s::list(items)
}

/// The Service in front of a [`deployment`].
struct Service<'a> {
    name: &'a str,
    ip: Ipv4Addr,
    port: u16,
    target_port: u16,
}

/// A Deployment's ReplicaSet and pods (IP, node index), and its Service with the EndpointSlice of those pods.
fn deployment(items: &mut Vec<Value>, ns: &str, name: &str, service: &Service<'_>, pods: Vec<(Ipv4Addr, u32)>) {
    let rs = format!("{name}-7c9");
    items.push(k8s::owned("ReplicaSet", ns, &rs, "Deployment", name));
    let pods: Vec<(String, String, String)> = pods
        .into_iter()
        .enumerate()
        .map(|(k, (ip, node))| (format!("{rs}-{k}"), ip.to_string(), node_name(node)))
        .collect();
    for (pod, ip, node) in &pods {
        items.push(Pod::new(ns, pod, ip).owner("ReplicaSet", &rs).node(node).json());
    }
    items.push(k8s::service(ns, service.name, Some(&service.ip.to_string()), service.port));
    let endpoints: Vec<Endpoint<'_>> =
        pods.iter().map(|(pod, ip, node)| Endpoint { ip, pod, node, hostname: None }).collect();
    let slice = format!("{}-x1", service.name);
    items.push(k8s::endpoint_slice(ns, service.name, &slice, service.target_port, &endpoints));
}

/// The same cluster as flat lines: `pod IP NODE NAMESPACE WORKLOAD`, `service NAME NAMESPACE CLUSTER_IP WORKLOAD`,
/// `dns IP` (a DNS server pod).
fn cluster_tsv() -> String {
    let mut out = String::new();
    for pod in 0..PODS {
        let d = deployment_of(pod);
        let node = node_name(node_of(pod));
        writeln!(out, "pod\t{}\t{node}\t{}\tapp-{d}", pod_ip(pod), namespace_of(d)).unwrap();
    }
    for d in 0..DEPLOYMENTS {
        writeln!(out, "service\tapp-{d}\t{}\t{}\tapp-{d}", namespace_of(d), service_ip(d)).unwrap();
    }
    for (k, ip) in COREDNS.iter().enumerate() {
        writeln!(out, "pod\t{ip}\t{}\tkube-system\tcoredns", node_name(k as u32)).unwrap();
        writeln!(out, "dns\t{ip}").unwrap();
    }
    writeln!(out, "service\tkube-dns\tkube-system\t{DNS_SERVICE}\tcoredns").unwrap();
    out
}

/// Outcome counts of distinct responses, each captured twice.
#[derive(Default)]
struct Expected {
    responses: u64,
    counted: u64,
    not_answer: u64,
    forwarded: u64,
    /// Counted answers whose client runs on the sample node.
    counted_on_sample: u64,
    /// Answers (not non-answers, not forwarded) to clients on other nodes than the sample node.
    other_node_from_sample: u64,
}

struct Writer {
    pcap: Pcap,
    at: i64,
    id: u16,
    expected: Expected,
    /// The node whose counts `sample_…` are.
    sample_node: String,
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    synth::ethernet_frame(&[], &synth::udp_packet(src, dst, payload))
}

impl Writer {
    fn frame(&mut self, frame: &[u8]) {
        self.at += 1;
        self.pcap.write(self.at, frame);
    }

    /// A query and its response over UDP between `client` and CoreDNS, each seen twice.
    fn udp_exchange(&mut self, client: SocketAddr, query: &[u8], response: &[u8]) {
        let (service, pod) = (v4(DNS_SERVICE, 53), v4(COREDNS[0], 53));
        self.frame(&udp(client, service, query));
        self.frame(&udp(client, pod, query));
        self.frame(&udp(pod, client, response));
        self.frame(&udp(service, client, response));
    }

    fn next_id(&mut self) -> u16 {
        self.id = self.id.wrapping_add(1);
        self.id
    }

    /// One lookup's query and response to a client pod; an NXDOMAIN or an empty answer cannot count.
    fn respond(&mut self, client: u32, port: u16, name: &str, qtype: TYPE, rcode: RCODE, records: &[Record<'_>]) {
        let id = self.next_id();
        let query = synth::query(id, name, qtype);
        let response = synth::response_with(id, name, qtype, rcode, records);
        self.udp_exchange(v4(pod_ip(client), port), &query, &response);
        self.tally(client, rcode == RCODE::NoError && !records.is_empty());
    }

    fn tally(&mut self, client: u32, answer: bool) {
        let e = &mut self.expected;
        e.responses += 1;
        if !answer {
            e.not_answer += 1;
            return;
        }
        e.counted += 1;
        if node_name(node_of(client)) == self.sample_node {
            e.counted_on_sample += 1;
        } else {
            e.other_node_from_sample += 1;
        }
    }

    fn lookup(&mut self, n: u32) {
        let client = n.wrapping_mul(7919) % PODS;
        let own = deployment_of(client);
        let ns = namespace_of(own);
        let port = 1024 + (n % 60_000) as u16;
        match n % 100 {
            0..55 => {
                let d = (own + NAMESPACES * (1 + n % 5)) % DEPLOYMENTS;
                let name = format!("app-{d}.{ns}.svc.cluster.local");
                self.respond(client, port, &name, TYPE::A, RCODE::NoError, &[Record::A(&name, service_ip(d))]);
                self.respond(client, port + 1, &name, TYPE::AAAA, RCODE::NoError, &[]);
            }
            55..80 => {
                let d = (own + 1 + n % 12) % DEPLOYMENTS;
                let short = format!("app-{d}.{}", namespace_of(d));
                let nx = format!("{short}.{ns}.svc.cluster.local");
                self.respond(client, port, &nx, TYPE::A, RCODE::NameError, &[]);
                let name = format!("{short}.svc.cluster.local");
                self.respond(client, port, &name, TYPE::A, RCODE::NoError, &[Record::A(&name, service_ip(d))]);
            }
            80..98 => {
                let k = n % EXTERNAL_NAMES;
                let name = format!("api-{k}.example.com");
                for suffix in [format!("{ns}.svc.cluster.local"), "svc.cluster.local".into(), "cluster.local".into()] {
                    self.respond(client, port, &format!("{name}.{suffix}"), TYPE::A, RCODE::NameError, &[]);
                }
                let target = format!("edge-{k}.cdn.example.net");
                let address = Ipv4Addr::new(203, 0, 113, k as u8);
                let records = [Record::Cname(&name, &target), Record::A(&target, address)];
                // CoreDNS forwards the lookup; the upstream answer reaches the node twice.
                let id = self.next_id();
                let (coredns, upstream) = (v4(COREDNS[0], 40_000 + (n % 20_000) as u16), v4(UPSTREAM, 53));
                self.frame(&udp(coredns, upstream, &synth::query(id, &name, TYPE::A)));
                let forwarded = udp(upstream, coredns, &synth::response(id, &name, &records));
                self.frame(&forwarded);
                self.frame(&forwarded);
                self.expected.responses += 1;
                self.expected.forwarded += 1;
                self.respond(client, port, &name, TYPE::A, RCODE::NoError, &records);
            }
            _ => {
                let d = (own + 3) % DEPLOYMENTS;
                let name = format!("app-{d}.{}.svc.cluster.local", namespace_of(d));
                let id = self.next_id();
                let (client_addr, service, pod) = (v4(pod_ip(client), port), v4(DNS_SERVICE, 53), v4(COREDNS[0], 53));
                let isn = n.wrapping_mul(2_654_435_761);
                self.frame(&synth::ethernet_frame(&[], &synth::tcp_syn(client_addr, service, isn)));
                let query = synth::tcp_dns_payload(&[&synth::query(id, &name, TYPE::A)]);
                let response =
                    synth::tcp_dns_payload(&[&synth::response(id, &name, &[Record::A(&name, service_ip(d))])]);
                let flags = synth::TCP_PSH | synth::TCP_ACK;
                self.frame(&synth::ethernet_frame(
                    &[],
                    &synth::tcp_packet(client_addr, service, isn + 1, flags, &query),
                ));
                for src in [pod, service] {
                    let segment = synth::tcp_packet(src, client_addr, 7_000, flags, &response);
                    self.frame(&synth::ethernet_frame(&[], &segment));
                }
                self.tally(client, true);
            }
        }
        self.at += 20;
    }
}

fn main() -> std::io::Result<()> {
    let (dir, responses) = testkit::args::out_dir_and_count("dns_mix_gen", "RESPONSES", 1_000_000u64);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("inventory.yaml"), inventory())?;
    std::fs::write(dir.join("cluster.tsv"), cluster_tsv())?;
    let pcap = Pcap::create(&dir.join("cluster.pcap"), dlt::EN10MB)?;
    let sample_node = std::env::var("DNS_MIX_SAMPLE_NODE").unwrap_or_else(|_| SAMPLE_NODE.to_owned());
    let mut w = Writer { pcap, at: START_MICROS, id: 0, expected: Expected::default(), sample_node };
    let mut n = 0;
    while w.expected.responses < responses {
        w.lookup(n);
        n += 1;
    }
    w.pcap.finish()?;
    let e = &w.expected;
    let mut out = BufWriter::new(File::create(dir.join("expected.txt"))?);
    writeln!(out, "responses {}", e.responses)?;
    writeln!(out, "frames {}", 2 * e.responses)?;
    writeln!(out, "not_answer {}", 2 * e.not_answer)?;
    writeln!(out, "forwarded {}", 2 * e.forwarded)?;
    writeln!(out, "counted {}", e.counted)?;
    writeln!(out, "duplicate {}", e.counted)?;
    writeln!(out, "other_node 0")?;
    writeln!(out, "sample_node {}", w.sample_node)?;
    writeln!(out, "sample_counted {}", e.counted_on_sample)?;
    writeln!(out, "sample_duplicate {}", e.counted_on_sample)?;
    writeln!(out, "sample_other_node {}", 2 * e.other_node_from_sample)?;
    out.flush()?;
    println!("{} responses of {n} lookups, {PODS} pods on {NODES} nodes in {}", e.responses, dir.display());
    Ok(())
}
