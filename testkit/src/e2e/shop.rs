//! The scenario: a shop on node-a. Twelve workloads in four namespaces, with a cross-namespace call
//! (checkout → payments), a StatefulSet behind a headless Service (cart → redis-0.redis), a connection opened
//! before the exporter starts (cart's pooled connection to redis), a DNS-over-TCP lookup (the email-reminder
//! CronJob), a client on another node (recommendations, node-b: not counted here), a node process (the
//! node-exporter DaemonSet, hostNetwork: not counted), an external API resolved three times and never called,
//! a burst of 2000 lookups (loadgenerator) and a pod added while the exporter runs (reviews).
//!
//! Every expected count is exact: glibc's `ahostsv4` sends one A query per search-list candidate, dnsmasq is
//! authoritative for `cluster.local` (misses are NXDOMAIN, never edges), and connections stay open so each is
//! seen by the socket scan exactly once.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::Lab;
use super::cluster::{Cluster, Controller, External, NODE, Placement, PodName, Service, Workload};

pub const OTHER_NODE: &str = "node-b";
/// Lookups of the loadgenerator's burst (each one answer, so the edge count).
pub const BURST: usize = 2000;
/// Seconds between two of its lookups: at most ~1000 answers/s (2000 frames/s on device `any`).
const BURST_PAUSE: f64 = 0.001;
/// How often payments resolves the external API (and never connects).
pub const EXTERNAL_LOOKUPS: usize = 3;
pub const EXTERNAL_API: &str = "api.payment-gateway.example";

fn here(last: u8) -> Placement {
    Placement::on(NODE, [10, 244, 0, last])
}

fn workload(name: &'static str, namespace: &'static str, controller: Controller, pods: Vec<Placement>) -> Workload {
    Workload { name, namespace, controller, pods, created: None }
}

fn service(
    name: &'static str,
    namespace: &'static str,
    ip: Option<[u8; 4]>,
    port: u16,
    backend: &'static str,
) -> Service {
    let backend = (!backend.is_empty()).then_some(backend);
    Service { name, namespace, cluster_ip: ip.map(Ipv4Addr::from), port, backend }
}

/// The shop. `node_ip` is the node's address, which hostNetwork pods share.
pub fn cluster(node_ip: Ipv4Addr) -> Cluster {
    use Controller::*;
    let host_net = Placement { ip: node_ip, node: NODE, host_network: true };
    let mut reviews = workload("reviews", "shop", Deployment, vec![here(20)]);
    reviews.created = Some(String::new()); // set when it is added, see `add_reviews`
    Cluster {
        workloads: vec![
            workload("coredns", "kube-system", Deployment, vec![here(10)]),
            workload("frontend", "shop", Deployment, vec![here(11)]),
            workload("catalog", "shop", Deployment, vec![here(12)]),
            workload("cart", "shop", Deployment, vec![here(13)]),
            workload("checkout", "shop", Deployment, vec![here(14)]),
            workload("payments", "payments", Deployment, vec![here(15)]),
            workload("redis", "shop", StatefulSet, vec![here(16), Placement::on(OTHER_NODE, [10, 244, 1, 16])]),
            workload("email-reminder", "shop", CronJob, vec![here(17)]),
            workload("loadgenerator", "shop", Deployment, vec![here(18)]),
            workload("recommendations", "shop", Deployment, vec![Placement::on(OTHER_NODE, [10, 244, 1, 19])]),
            workload("node-exporter", "monitoring", DaemonSet, vec![host_net]),
            reviews,
        ],
        services: vec![
            service("kubernetes", "default", Some([10, 96, 0, 1]), 443, ""),
            service("kube-dns", "kube-system", Some([10, 96, 0, 10]), 53, "coredns"),
            service("frontend", "shop", Some([10, 96, 1, 10]), 8080, "frontend"),
            service("catalog", "shop", Some([10, 96, 1, 11]), 3550, "catalog"),
            service("cart", "shop", Some([10, 96, 1, 12]), 7070, "cart"),
            service("checkout", "shop", Some([10, 96, 1, 13]), 5050, "checkout"),
            service("redis", "shop", None, 6379, "redis"),
            service("payments", "payments", Some([10, 96, 2, 10]), 50051, "payments"),
        ],
        externals: vec![External { name: EXTERNAL_API, ip: Ipv4Addr::new(203, 0, 113, 10) }],
    }
}

/// Which pods get a namespace on this machine: node-a's pod-network pods, and recommendations, which the API
/// places on node-b (its traffic is real, but this node must not count it).
pub fn simulated_here(pod: &PodName) -> bool {
    !pod.host_network && (pod.node == NODE || pod.name.starts_with("recommendations-"))
}

/// Listeners in every server pod, and cart's connection pool to redis-0, opened before the exporter starts.
pub fn start_servers(lab: &mut Lab) -> io::Result<()> {
    for (workload, port) in [
        ("frontend", 8080),
        ("catalog", 3550),
        ("cart", 7070),
        ("checkout", 5050),
        ("payments", 50051),
        ("redis", 6379),
    ] {
        lab.ask(workload, &format!("listen {port}"))?;
    }
    lab.ask("cart", "connect 10.244.0.16 6379")?;
    Ok(())
}

/// A glibc lookup of a Service by its short name, then a connection to the ClusterIP it returned.
fn call(lab: &mut Lab, client: &str, name: &str, ip: &str, port: u16) -> io::Result<()> {
    lab.resolve(client, name, ip)?;
    lab.ask(client, &format!("connect {ip} {port}")).map(drop)
}

/// The application's traffic once the exporter runs.
pub fn traffic(lab: &mut Lab) -> io::Result<()> {
    call(lab, "frontend", "catalog", "10.96.1.11", 3550)?;
    call(lab, "frontend", "cart", "10.96.1.12", 7070)?;
    call(lab, "frontend", "checkout", "10.96.1.13", 5050)?;
    call(lab, "checkout", "cart", "10.96.1.12", 7070)?;
    call(lab, "checkout", "payments.payments", "10.96.2.10", 50051)?;
    lab.resolve("cart", "redis-0.redis", "10.244.0.16")?;
    lab.resolve("catalog", "kubernetes.default", "10.96.0.1")?;
    for _ in 0..EXTERNAL_LOOKUPS {
        lab.resolve("payments", EXTERNAL_API, "203.0.113.10")?;
    }
    let answers = lab.ask("email-reminder", "dns-tcp 10.96.0.10 checkout.shop.svc.cluster.local")?;
    expect_reply("email-reminder's DNS-over-TCP lookup", &answers, "1")?;
    call(lab, "recommendations", "catalog", "10.96.1.11", 3550)?;
    // The node-exporter is the node itself (hostNetwork, resolv.conf for ClusterFirstWithHostNet).
    call(lab, "node", "catalog.shop", "10.96.1.11", 3550)
}

/// The loadgenerator's burst of lookups of the frontend Service; returns the answers it got.
pub fn burst(lab: &mut Lab) -> io::Result<usize> {
    let command = format!("dns-burst 10.96.0.10 frontend.shop.svc.cluster.local {BURST} {BURST_PAUSE}");
    let reply = lab.ask("loadgenerator", &command)?;
    reply.parse().map_err(|_| io::Error::other(format!("burst reply {reply:?}")))
}

fn expect_reply(what: &str, reply: &str, expected: &str) -> io::Result<()> {
    if reply == expected {
        return Ok(());
    }
    Err(io::Error::other(format!("{what}: got {reply:?}, expected {expected:?}")))
}

/// Adds the reviews pod to the API (created now), waits until the exporter's inventory holds it, wires it into
/// the node, then lets it call catalog.
pub fn add_reviews(lab: &mut Lab) -> io::Result<()> {
    let before = InventoryCounts::of(lab)?;
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(1));
    let mut reviews = lab.cluster.workload("reviews").clone();
    reviews.created = Some(created.to_string());
    for object in reviews.objects() {
        lab.api.apply(object);
    }
    // Pods and ReplicaSets are separate watches: the pod's identity needs both (else it would be the
    // ReplicaSet's name).
    let exporter = lab.exporter();
    let grown = |text: String, kind: &str, before: f64| -> Option<()> {
        let n = crate::http::sample(&text, &format!("network_mapper_inventory_objects{{kind=\"{kind}\"}}"))?;
        (n > before).then_some(())
    };
    crate::http::until(
        "the reviews pod and its ReplicaSet in the exporter's inventory",
        Duration::from_secs(30),
        || {
            let text = exporter.metrics()?;
            grown(text.clone(), "Pod", before.pods).and(grown(text, "ReplicaSet", before.replica_sets))
        },
    )
    .map_err(|e| exporter.with_log(e))?;
    lab.add_pod(&reviews.pod_names()[0])?;
    call(lab, "reviews", "catalog", "10.96.1.11", 3550)
}

/// Objects in the exporter's inventory, from its self-metrics.
struct InventoryCounts {
    pods: f64,
    replica_sets: f64,
}

impl InventoryCounts {
    fn of(lab: &Lab) -> io::Result<InventoryCounts> {
        let text = lab.exporter().metrics().ok_or_else(|| io::Error::other("/metrics did not answer"))?;
        let count = |kind: &str| {
            crate::http::sample(&text, &format!("network_mapper_inventory_objects{{kind=\"{kind}\"}}")).unwrap_or(0.0)
        };
        Ok(InventoryCounts { pods: count("Pod"), replica_sets: count("ReplicaSet") })
    }
}

/// The edges the exporter must count: (client, namespace, server, server namespace, count).
pub fn expected_edges() -> Vec<(&'static str, &'static str, &'static str, Option<&'static str>, usize)> {
    let shop = Some("shop");
    let mut edges = vec![
        ("cart", "shop", "redis", shop, 2), // pooled connection + redis-0.redis lookup
        ("catalog", "shop", "kubernetes", Some("default"), 1), // kubernetes.default lookup
        ("checkout", "shop", "cart", shop, 2), // lookup + connection
        ("checkout", "shop", "payments", Some("payments"), 2), // cross-namespace lookup + connection
        ("email-reminder", "shop", "checkout", shop, 1), // DNS over TCP
        ("email-reminder", "shop", "coredns", Some("kube-system"), 1), // ... whose TCP connection is a call too
        ("frontend", "shop", "cart", shop, 2),
        ("frontend", "shop", "catalog", shop, 2),
        ("frontend", "shop", "checkout", shop, 2),
        ("loadgenerator", "shop", "frontend", shop, BURST),
        ("payments", "payments", EXTERNAL_API, None, EXTERNAL_LOOKUPS),
        ("reviews", "shop", "catalog", shop, 2), // added after the API outage
    ];
    edges.sort();
    edges
}

/// (client, namespace, server, server namespace, server port, connections).
pub type Connections = (&'static str, &'static str, &'static str, Option<&'static str>, u16, usize);

/// The TCP connections among [`expected_edges`], by the server pod's port: (client, namespace, server, server
/// namespace, port, count) of `network_mapper_edge_connections_total`. The other edges are seen only through
/// DNS (loadgenerator's burst, the API server lookup, the external name).
pub fn expected_connections() -> Vec<Connections> {
    let shop = Some("shop");
    vec![
        ("cart", "shop", "redis", shop, 6379, 1),
        ("checkout", "shop", "cart", shop, 7070, 1),
        ("checkout", "shop", "payments", Some("payments"), 50051, 1),
        ("email-reminder", "shop", "coredns", Some("kube-system"), 53, 1),
        ("frontend", "shop", "cart", shop, 7070, 1),
        ("frontend", "shop", "catalog", shop, 3550, 1),
        ("frontend", "shop", "checkout", shop, 5050, 1),
        ("reviews", "shop", "catalog", shop, 3550, 1),
    ]
}

/// The exposition lines of [`expected_edges`], sorted.
pub fn expected_edge_lines() -> Vec<String> {
    let mut lines: Vec<String> = expected_edges()
        .into_iter()
        .map(|(client, ns, server, server_ns, n)| {
            let server_ns = server_ns.map(|s| format!(",server_namespace=\"{s}\"")).unwrap_or_default();
            format!(
                "network_mapper_edge_total{{client=\"{client}\",namespace=\"{ns}\",server=\"{server}\"{server_ns}}} {n}"
            )
        })
        .collect();
    lines.sort();
    lines
}

/// DNS responses by outcome. Each response to a pod crosses two veths on device `any` (the DNS pod's, after NAT
/// the client's) and is counted once; responses to the node itself cross one.
/// - answers that count: frontend 3, checkout 2, cart 1, catalog 1, payments 3, email-reminder 1, reviews 1,
///   plus the burst;
/// - NXDOMAIN for search-list candidates: `payments.payments.shop.svc…` 1, `kubernetes.default.shop.svc…` 1,
///   the external name 3 per lookup (9), `catalog.shop.monitoring.svc…` from the node 1;
/// - other node: recommendations 1; unresolved: the node's answer (hostNetwork) 1.
pub fn expected_dns_outcomes() -> Vec<(&'static str, usize)> {
    let counted = 12 + BURST;
    let not_answer = 2 + 3 * EXTERNAL_LOOKUPS + 1;
    let duplicate = counted + (not_answer - 1) + 1;
    vec![
        ("counted", counted),
        ("duplicate", duplicate),
        ("malformed", 0),
        ("not_answer", not_answer),
        ("other_node", 1),
        ("refused", 0),
        ("unresolved", 1),
    ]
}

/// Kinds that must reach the intents (through `network_mapper_workload_info`).
pub const EXPECTED_KINDS: [(&str, &str); 4] =
    [("redis", "StatefulSet"), ("email-reminder", "CronJob"), ("kubernetes", "Service"), ("frontend", "Deployment")];

/// `netmap-reduce --format list` of the map.
pub const EXPECTED_LISTING: &str = "\
cart in namespace shop calls:
  - redis
catalog in namespace shop calls:
  - kubernetes in namespace default
checkout in namespace shop calls:
  - cart
  - payments in namespace payments
email-reminder in namespace shop calls:
  - checkout
  - coredns in namespace kube-system
frontend in namespace shop calls:
  - cart
  - catalog
  - checkout
loadgenerator in namespace shop calls:
  - frontend
payments in namespace payments calls:
  - api.payment-gateway.example
reviews in namespace shop calls:
  - catalog
";

/// Builds the shop's node, opens the pre-existing connection, starts the exporter (the API down for `api_down`
/// at first) and Prometheus, and runs the application's traffic.
pub fn bring_up(bins: super::monitor::Binaries, third: u8, api_down: Duration) -> io::Result<Lab> {
    let mut lab = Lab::build(bins, cluster, third)?;
    start_servers(&mut lab)?;
    lab.start_exporter(api_down)?;
    lab.start_prometheus()?;
    traffic(&mut lab)?;
    Ok(lab)
}
