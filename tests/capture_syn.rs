//! Client SYNs and DNS servers, through the real pipeline with a small inventory: the SYN decoder (IPv4, IPv6,
//! TCP options, what is not a client SYN), one connection counted once (the copy after kube-proxy's DNAT,
//! retransmissions, the socket scan), the server pod's port, the forwarder rule, and the bounded retry of a
//! connection whose client pod is not in the inventory yet.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use network_mapper::exporter::metrics::{DnsOutcome, Enabled, LabelValue, Limits, Metrics, Outcome, SynOutcome};
use network_mapper::exporter::pipeline::{Counted, DnsPipeline, RETRY_MICROS, Recorder, SharedInventory};
use network_mapper::exporter::server::{Exposition, encode_metrics};
use network_mapper::mesh::Sighting;
use network_mapper::resolve::ResolveConfig;
use network_mapper::sources::capture::frame::{FrameDecoder, FrameOutcome, LinkType};
use network_mapper::sources::capture::syn::{self, Syn};
use network_mapper::sources::inventory::{Inventory, parse_inventory};
use prometheus_client::registry::Registry;
use testkit::packets::{self as synth, Record};

/// 2026-03-01T00:00:00Z.
const AT: i64 = 1_772_323_200_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn pod(name: &str, ns: &str, ip: &str, node: &str) -> String {
    annotated_pod(name, ns, ip, node, "{}")
}

/// A pod with `annotations` (a YAML flow mapping), e.g. a mesh's.
fn annotated_pod(name: &str, ns: &str, ip: &str, node: &str, annotations: &str) -> String {
    format!(
        "- {{apiVersion: v1, kind: Pod, metadata: {{name: {name}, namespace: {ns}, creationTimestamp: '2026-01-01T00:00:00Z', annotations: {annotations}}},
    spec: {{nodeName: {node}, containers: [{{name: c, image: x}}]}}, status: {{phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}}}\n"
    )
}

/// web and cart on node-a, far on node-b; cart behind a ClusterIP whose port 80 targets the named port
/// `http` (8080 on the pods); coredns behind kube-dns (53/UDP, 53/TCP).
fn cluster() -> String {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    text += &pod("web", "shop", "10.0.1.10", "node-a");
    text += &pod("cart", "shop", "10.0.1.20", "node-a");
    text += &pod("far", "shop", "10.0.2.10", "node-b");
    text += &pod("coredns", "kube-system", "10.0.0.53", "node-a");
    text += "- {apiVersion: v1, kind: Service, metadata: {name: cart, namespace: shop},
    spec: {clusterIP: 10.96.0.20, clusterIPs: [10.96.0.20], ports: [{name: web, port: 80, targetPort: http}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
    metadata: {name: cart-x, namespace: shop, labels: {kubernetes.io/service-name: cart}},
    endpoints: [{addresses: [10.0.1.20], targetRef: {kind: Pod, name: cart, namespace: shop}}],
    ports: [{name: web, port: 8080, protocol: TCP}]}
- {apiVersion: v1, kind: Service, metadata: {name: kube-dns, namespace: kube-system},
    spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10],
           ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
    metadata: {name: kube-dns-x, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}},
    endpoints: [{addresses: [10.0.0.53], targetRef: {kind: Pod, name: coredns, namespace: kube-system}}],
    ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}
";
    text
}

/// The value of a label enum shown as `label`.
fn labelled<L: LabelValue>(label: &str) -> L {
    L::from_metric_label(label).unwrap_or_else(|| panic!("no outcome {label:?}"))
}

struct Harness {
    inventory: SharedInventory,
    recorder: Recorder,
    pipeline: DnsPipeline,
    metrics: Metrics,
    registry: Registry,
}

impl Harness {
    fn new(inventory: Inventory) -> Harness {
        let (metrics, registry) = Metrics::new(Limits::default(), Enabled { capture: true, ..Enabled::default() });
        let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some("node-a".into()) };
        let inventory = Arc::new(RwLock::new(inventory));
        let recorder = Recorder::new(inventory.clone(), Arc::new(config), metrics.clone());
        let pipeline = DnsPipeline::new(recorder.clone());
        Harness { inventory, recorder, pipeline, metrics, registry }
    }

    fn frame(&mut self, at: i64, packet: &[u8]) {
        self.pipeline.process_frame(LinkType::LinuxSll2, at, &synth::frame(LinkType::LinuxSll2.linktype(), packet));
    }

    fn syns(&self, outcome: &'static str) -> u64 {
        self.metrics.syns.get_or_create(&Outcome(labelled::<SynOutcome>(outcome))).get()
    }

    fn dns(&self, outcome: &'static str) -> u64 {
        self.metrics.dns_responses.get_or_create(&Outcome(labelled::<DnsOutcome>(outcome))).get()
    }

    fn scrape(&self) -> String {
        encode_metrics(&self.registry, Exposition::Classic)
    }
}

fn harness() -> Harness {
    Harness::new(parse_inventory(&cluster()).unwrap())
}

fn decode(packet: &[u8]) -> (FrameOutcome, Vec<Syn>) {
    let mut found = Vec::new();
    let frame = synth::frame(LinkType::LinuxSll2.linktype(), packet);
    let outcome =
        FrameDecoder::new().decode_with_syns(LinkType::LinuxSll2, &frame, &mut |_| {}, &mut |s| found.push(s));
    (outcome, found)
}

#[test]
fn syns_of_both_families_with_options_are_decoded_and_nothing_else_is() {
    let (c4, s4) = (addr("10.0.1.10:40000"), addr("10.96.0.20:80"));
    assert_eq!(decode(&synth::tcp_syn(c4, s4, 7)), (FrameOutcome::Syn, vec![Syn { client: c4, server: s4, isn: 7 }]));
    let (c6, s6) = (addr("[fd00::10]:40000"), addr("[fd00:96::20]:80"));
    let (outcome, found) = decode(&synth::tcp_syn(c6, s6, u32::MAX));
    assert_eq!((outcome, found), (FrameOutcome::Syn, vec![Syn { client: c6, server: s6, isn: u32::MAX }]));
    // The option-less header of the plain builder is a SYN too.
    assert_eq!(decode(&synth::tcp_packet(c4, s4, 9, synth::TCP_SYN, &[])).1.len(), 1);
    for flags in [synth::TCP_SYN | synth::TCP_ACK, synth::TCP_ACK, synth::TCP_ACK | synth::TCP_PSH, synth::TCP_RST] {
        assert_eq!(decode(&synth::tcp_packet(c4, s4, 9, flags, b"x")), (FrameOutcome::NotDns, vec![]), "{flags:#x}");
    }
    let full = synth::tcp_syn(c4, s4, 7);
    assert_eq!(decode(&full[..20 + 12]).0, FrameOutcome::Truncated, "a header cut before the flags");
    assert_eq!(syn::decode(c4.ip(), s4.ip(), &full[20..20 + 13]), None);
}

#[test]
fn a_clusterip_connection_counts_once_across_nat_copy_retransmit_and_socket_scan() {
    let mut h = harness();
    let (client, dialled, natted) = (addr("10.0.1.10:40000"), addr("10.96.0.20:80"), addr("10.0.1.20:8080"));
    h.frame(AT, &synth::tcp_syn(client, dialled, 1000));
    h.frame(AT + 30, &synth::tcp_syn(client, natted, 1000));
    h.frame(AT + 1_000_000, &synth::tcp_syn(client, dialled, 1000));
    h.frame(AT + 1_000_030, &synth::tcp_syn(client, natted, 1000));
    assert_eq!(h.recorder.socket(client, dialled, Sighting::Plain, AT + 5_000_000), Counted::Duplicate);
    assert_eq!((h.syns("counted"), h.syns("duplicate")), (1, 3));
    let text = h.scrape();
    let edge = r#"client="web",namespace="shop",server="cart",server_namespace="shop""#;
    assert!(text.contains(&format!("network_mapper_edge_total{{{edge}}} 1")), "{text}");
    assert!(text.contains(&format!(r#"network_mapper_edge_connections_total{{{edge},port="8080"}} 1"#)), "{text}");
    // The same client port to another destination, with a new ISN: a new connection, by pod IP this time.
    h.frame(AT + 6_000_000, &synth::tcp_syn(client, addr("10.0.1.20:9090"), 5000));
    assert!(h.scrape().contains(&format!(r#"network_mapper_edge_connections_total{{{edge},port="9090"}} 1"#)));
    assert_eq!(h.syns("counted"), 2);
}

#[test]
fn an_ipv6_syn_and_a_socket_seen_first_count_once() {
    let mut h = harness();
    let (client, server) = (addr("10.0.1.10:41000"), addr("10.0.1.20:8080"));
    assert_eq!(h.recorder.socket(client, server, Sighting::Plain, AT), Counted::Counted);
    h.frame(AT - 100, &synth::tcp_syn(client, server, 3));
    assert_eq!((h.syns("counted"), h.syns("duplicate")), (0, 1));
    // IPv6 clients are resolved like IPv4 ones: unknown here, so it waits and is then unresolved.
    h.frame(AT, &synth::tcp_syn(addr("[fd00::10]:40000"), addr("[fd00::20]:80"), 1));
    h.recorder.retry_pending(AT, false);
    h.recorder.retry_pending(AT + RETRY_MICROS, false);
    assert_eq!(h.syns("unresolved"), 1);
}

#[test]
fn only_the_client_node_counts_and_dns_over_tcp_is_no_call() {
    let mut h = harness();
    h.frame(AT, &synth::tcp_syn(addr("10.0.2.10:40000"), addr("10.96.0.20:80"), 1));
    h.frame(AT, &synth::tcp_syn(addr("10.0.1.10:40001"), addr("10.96.0.10:53"), 2));
    h.frame(AT, &synth::tcp_syn(addr("10.0.1.10:40002"), addr("10.0.0.53:53"), 3));
    assert_eq!(
        h.recorder.socket(addr("10.0.1.10:40003"), addr("10.96.0.10:53"), Sighting::Plain, AT),
        Counted::DnsLookup
    );
    assert_eq!((h.syns("other_node"), h.syns("dns_lookup"), h.syns("counted")), (1, 2, 0));
    assert!(!h.scrape().contains("server=\"coredns\""));
}

#[test]
fn answers_to_a_dns_server_are_forwarded_lookups_not_edges() {
    let mut h = harness();
    let name = "api.example.org";
    let answer = synth::response(77, name, &[Record::A(name, "198.51.100.7".parse().unwrap())]);
    // The upstream's answer to CoreDNS (a backend of kube-dns, port 53), then CoreDNS's answer to web.
    h.frame(AT, &synth::udp_packet(addr("192.0.2.53:53"), addr("10.0.0.53:38000"), &answer));
    h.frame(AT + 100, &synth::udp_packet(addr("10.0.0.53:53"), addr("10.0.1.10:50000"), &answer));
    assert_eq!((h.dns("forwarded"), h.dns("counted")), (1, 1));
    // A pod in no DNS Service that has been seen answering (a dnsmasq sidecar) forwards too.
    h.frame(AT + 200, &synth::udp_packet(addr("10.0.1.20:53"), addr("10.0.1.10:50001"), &answer));
    h.frame(AT + 300, &synth::udp_packet(addr("192.0.2.53:53"), addr("10.0.1.20:38001"), &answer));
    assert_eq!((h.dns("forwarded"), h.dns("counted")), (2, 2));
    let text = h.scrape();
    assert!(text.contains(r#"network_mapper_edge_total{client="web",namespace="shop",server="api.example.org"} 2"#));
    assert!(!text.contains(r#"client="coredns""#) && !text.contains(r#"client="cart""#), "{text}");
}

#[test]
fn a_client_pod_that_arrives_late_is_retried_and_one_that_never_does_is_unresolved_after_the_bound() {
    let mut h = harness();
    let (late, server) = (addr("10.0.1.30:40000"), addr("10.96.0.20:80"));
    h.frame(AT, &synth::tcp_syn(late, server, 1));
    h.frame(AT, &synth::tcp_syn(addr("10.0.9.9:40000"), server, 1));
    h.recorder.retry_pending(AT + 1_000_000, false);
    assert_eq!((h.syns("counted"), h.syns("unresolved")), (0, 0), "both wait");
    let pod =
        parse_inventory(&format!("apiVersion: v1\nkind: List\nitems:\n{}", pod("late", "shop", "10.0.1.30", "node-a")));
    let record = pod.unwrap().pod("shop", "late").unwrap().record().clone();
    h.inventory.write().unwrap().upsert_pod(record);
    h.recorder.retry_pending(AT + 2_000_000, false);
    assert_eq!((h.syns("counted"), h.syns("unresolved")), (1, 0), "the late pod resolves; the other still waits");
    // The bound counts from the first retry (a replayed capture's packets are older than any wait).
    h.recorder.retry_pending(AT + RETRY_MICROS, false);
    assert_eq!(h.syns("unresolved"), 0);
    h.recorder.retry_pending(AT + 1_000_000 + RETRY_MICROS, false);
    assert_eq!(h.syns("unresolved"), 1);
    assert!(
        h.scrape().contains(r#"network_mapper_unresolved_total{source="syn",side="client",reason="unknown_ip"} 1"#)
    );
}

/// The shop with meshed pods on node-a: web with an Istio sidecar, amb in ambient, lk with Linkerd; istiod
/// (15012) in istio-system.
fn meshed_harness() -> Harness {
    let mut text = cluster();
    text += &annotated_pod("web-mesh", "shop", "10.0.1.40", "node-a", "{sidecar.istio.io/status: '{}'}");
    text += &annotated_pod("amb", "shop", "10.0.1.41", "node-a", "{ambient.istio.io/redirection: enabled}");
    text += &annotated_pod("lk", "shop", "10.0.1.42", "node-a", "{linkerd.io/proxy-version: edge-25.1.1}");
    text += &pod("istiod", "istio-system", "10.0.0.15", "node-a");
    text += "- {apiVersion: v1, kind: Service, metadata: {name: istiod, namespace: istio-system},
    spec: {clusterIP: 10.96.0.15, clusterIPs: [10.96.0.15], ports: [{name: xds, port: 15012}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
    metadata: {name: istiod-x, namespace: istio-system, labels: {kubernetes.io/service-name: istiod}},
    endpoints: [{addresses: [10.0.0.15], targetRef: {kind: Pod, name: istiod, namespace: istio-system}}],
    ports: [{name: xds, port: 15012, protocol: TCP}]}
";
    Harness::new(parse_inventory(&text).unwrap())
}

#[test]
fn a_meshed_pod_counts_its_applications_connections_and_its_proxys_control_plane_only() {
    let mut h = meshed_harness();
    let (web, amb, lk) = (addr("10.0.1.40:40000"), addr("10.0.1.41:40000"), addr("10.0.1.42:40000"));
    // On the wire: each proxy's upstream to cart (Envoy to the target port, ztunnel's HBONE, Linkerd's 4143),
    // and an unmeshed client's call to the meshed server by pod address.
    h.frame(AT, &synth::tcp_syn(web, addr("10.0.1.20:8080"), 1));
    h.frame(AT, &synth::tcp_syn(amb, addr("10.0.1.20:15008"), 2));
    h.frame(AT, &synth::tcp_syn(lk, addr("10.0.1.20:4143"), 3));
    h.frame(AT, &synth::tcp_syn(addr("10.0.1.10:40000"), addr("10.0.1.40:8080"), 4));
    assert_eq!((h.syns("mesh_proxy"), h.syns("counted")), (3, 1));
    // In the pods' tables: the applications' intercepted sockets keep the ClusterIP they dialled.
    for client in ["10.0.1.40:40100", "10.0.1.41:40100", "10.0.1.42:40100"] {
        let counted = h.recorder.socket(addr(client), addr("10.96.0.20:80"), Sighting::Intercepted, AT + 1_000_000);
        assert_eq!(counted, Counted::Counted, "{client}");
    }
    // The proxies' own sockets: the upstream just seen (a relay), ztunnel's re-originated inbound socket in the
    // server pod (bound to the client's address), and Envoy's xDS stream to istiod, which counts once.
    assert_eq!(h.recorder.socket(web, addr("10.0.1.20:8080"), Sighting::Proxy, AT), Counted::Duplicate);
    let reoriginated = h.recorder.socket(addr("10.0.1.10:41000"), addr("10.0.1.41:8080"), Sighting::Proxy, AT);
    assert_eq!(reoriginated, Counted::MeshProxy);
    h.frame(AT, &synth::tcp_syn(addr("10.0.1.40:40200"), addr("10.96.0.15:15012"), 5));
    let xds = h.recorder.socket(addr("10.0.1.40:40200"), addr("10.96.0.15:15012"), Sighting::Proxy, AT + 1);
    assert_eq!(xds, Counted::Duplicate);
    // A port excluded from capture: the application's own connection.
    assert_eq!(
        h.recorder.socket(addr("10.0.1.40:40300"), addr("10.0.1.20:9090"), Sighting::Bypass, AT),
        Counted::Counted
    );
    let text = h.scrape();
    let series = |client: &str, server: &str, ns: &str, port: u16| {
        format!(
            r#"network_mapper_edge_connections_total{{client="{client}",namespace="shop",server="{server}",server_namespace="{ns}",port="{port}"}}"#
        )
    };
    for (client, server, ns, port, n) in [
        ("web-mesh", "cart", "shop", 8080, 1),
        ("web-mesh", "cart", "shop", 9090, 1),
        ("amb", "cart", "shop", 8080, 1),
        ("lk", "cart", "shop", 8080, 1),
        ("web", "web-mesh", "shop", 8080, 1),
        ("web-mesh", "istiod", "istio-system", 15012, 1),
    ] {
        assert!(
            text.contains(&format!("{} {n}", series(client, server, ns, port))),
            "{client} -> {server}:{port}\n{text}"
        );
    }
    assert!(!text.contains(r#"port="15008""#) && !text.contains(r#"port="4143""#), "{text}");
    assert!(!text.contains(r#"client="web",namespace="shop",server="amb""#), "{text}");
}

#[test]
fn without_syn_capture_syns_are_ignored() {
    let mut h = harness();
    h.pipeline = DnsPipeline::new(h.recorder.clone()).without_syns();
    h.frame(AT, &synth::tcp_syn(addr("10.0.1.10:40000"), addr("10.96.0.20:80"), 1));
    assert_eq!(h.syns("counted") + h.syns("duplicate"), 0);
    assert!(!h.scrape().contains("network_mapper_edge_total{"));
}

#[test]
fn the_default_filter_passes_answers_and_client_syns_of_both_families_only() {
    use clap::Parser;
    use network_mapper::exporter::config::Args;
    use network_mapper::sources::capture::source::{Next, open_file};
    use testkit::capfile::Pcap;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.pcap");
    let mut w = Pcap::create(&path, LinkType::LinuxSll2.linktype()).unwrap();
    let answer = synth::response(1, "a.example", &[Record::A("a.example", "192.0.2.1".parse().unwrap())]);
    let packets = [
        (true, synth::tcp_syn(addr("10.0.1.10:40000"), addr("10.96.0.20:80"), 1)),
        (true, synth::tcp_syn(addr("[fd00::10]:40000"), addr("[fd00::20]:80"), 1)),
        (true, synth::udp_packet(addr("10.0.0.53:53"), addr("10.0.1.10:5000"), &answer)),
        (
            false,
            synth::tcp_packet(addr("10.96.0.20:80"), addr("10.0.1.10:40000"), 1, synth::TCP_SYN | synth::TCP_ACK, &[]),
        ),
        (
            false,
            synth::tcp_packet(addr("[fd00::20]:80"), addr("[fd00::10]:40000"), 1, synth::TCP_SYN | synth::TCP_ACK, &[]),
        ),
        (false, synth::tcp_packet(addr("10.0.1.10:40000"), addr("10.96.0.20:80"), 2, synth::TCP_ACK, b"GET /")),
        (false, synth::udp_packet(addr("10.0.1.10:5000"), addr("10.0.0.53:53"), &answer)),
    ];
    for (i, (_, packet)) in packets.iter().enumerate() {
        w.write(AT + i as i64, &synth::frame(LinkType::LinuxSll2.linktype(), packet));
    }
    w.finish().unwrap();
    let passed = |args: &[&str]| {
        let args = Args::parse_from(std::iter::once("network-mapper").chain(args.iter().copied()));
        let mut source = open_file(&path, Some(&args.capture_filter())).unwrap();
        let mut times = Vec::new();
        while let Next::Packet(p) = source.next().unwrap() {
            times.push(p.at - AT);
        }
        times
    };
    let expected: Vec<i64> = (0..packets.len() as i64).filter(|&i| packets[i as usize].0).collect();
    assert_eq!(passed(&[]), expected);
    assert_eq!(passed(&["--no-syn-capture"]), [2], "answers only");
}
