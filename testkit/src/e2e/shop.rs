//! The scenario: a shop on node-a. Thirteen workloads in four namespaces, with a cross-namespace call
//! (checkout → payments), a StatefulSet behind a headless Service (cart → redis-0.redis), a connection opened
//! before the exporter starts (cart's pooled connection to redis), DNS-over-TCP lookups (the email-reminder
//! CronJob: a held connection, and `dig +tcp`), a client on another node (recommendations, node-b: not counted
//! here), a node process (the node-exporter DaemonSet, hostNetwork: not counted), an external API resolved three
//! times and never called, names kube-dns forwards to a resolver outside the cluster (its answers to the kube-dns
//! pod are forwarded lookups, not calls of kube-dns), a pod that resolves through a NodeLocal DNSCache
//! (ratings), connections that no DNS answer announces (by ClusterIP and by pod IP, closed within 20 ms; one
//! held across many scans), a Service whose named target port differs from its port (cart: 7070 → grpc 8070),
//! a burst of 2000 lookups (loadgenerator) and a pod added while the exporter runs (reviews).
//!
//! Every expected count is exact: glibc's `ahostsv4` sends one A query per search-list candidate, dnsmasq is
//! authoritative for `cluster.local` (misses are NXDOMAIN, never edges) and caches nothing, and each connection
//! is counted once whether the SYN capture, the socket scan or both see it.

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
/// The resolver outside the cluster, the domain kube-dns forwards to it, and a name it answers.
pub const UPSTREAM_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
pub const UPSTREAM_DOMAIN: &str = "upstream.test";
pub const UPSTREAM_NAME: &str = "api.upstream.test";
const UPSTREAM_ADDRESS: &str = "198.51.100.7";
/// How often payments resolves the forwarded name.
pub const UPSTREAM_LOOKUPS: usize = 2;
/// The NodeLocal DNSCache address, and how often ratings (which uses it) resolves catalog.
pub const NODE_LOCAL_DNS: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 10);
pub const NODE_LOCAL_LOOKUPS: usize = 2;

pub(super) fn here(last: u8) -> Placement {
    Placement::on(NODE, [10, 244, 0, last])
}

pub(super) fn workload(
    name: &'static str,
    namespace: &'static str,
    controller: Controller,
    pods: Vec<Placement>,
) -> Workload {
    Workload { name, namespace, controller, pods, created: None, dataplane: None }
}

pub(super) fn service(
    name: &'static str,
    namespace: &'static str,
    ip: Option<[u8; 4]>,
    port: u16,
    backend: &'static str,
) -> Service {
    let backend = (!backend.is_empty()).then_some(backend);
    Service { name, namespace, cluster_ip: ip.map(Ipv4Addr::from), port, backend, target: None }
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
            workload("ratings", "shop", Deployment, vec![here(21)]),
            reviews,
        ],
        services: vec![
            service("kubernetes", "default", Some([10, 96, 0, 1]), 443, ""),
            service("kube-dns", "kube-system", Some([10, 96, 0, 10]), 53, "coredns"),
            service("frontend", "shop", Some([10, 96, 1, 10]), 8080, "frontend"),
            service("catalog", "shop", Some([10, 96, 1, 11]), 3550, "catalog"),
            Service { target: Some(("grpc", 8070)), ..service("cart", "shop", Some([10, 96, 1, 12]), 7070, "cart") },
            service("checkout", "shop", Some([10, 96, 1, 13]), 5050, "checkout"),
            service("redis", "shop", None, 6379, "redis"),
            service("payments", "payments", Some([10, 96, 2, 10]), 50051, "payments"),
        ],
        externals: vec![External { name: EXTERNAL_API, ip: Ipv4Addr::new(203, 0, 113, 10) }],
        upstreams: vec![(UPSTREAM_DOMAIN, UPSTREAM_DNS)],
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
        ("cart", 8070),
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
    for _ in 0..UPSTREAM_LOOKUPS {
        lab.resolve("payments", UPSTREAM_NAME, UPSTREAM_ADDRESS)?;
    }
    let answers = lab.ask("email-reminder", "dns-tcp 10.96.0.10 checkout.shop.svc.cluster.local")?;
    expect_reply("email-reminder's DNS-over-TCP lookup", &answers, "1")?;
    lab.dig_tcp("email-reminder", "10.96.0.10", "payments.payments.svc.cluster.local", "10.96.2.10")?;
    for _ in 0..NODE_LOCAL_LOOKUPS {
        lab.resolve("ratings", "catalog", "10.96.1.11")?;
    }
    // Connections no DNS answer announces: catalog dials $CART_SERVICE_HOST, the loadgenerator a pod IP, both
    // closing within 20 ms (before any socket scan); cart holds one to payments across every later scan.
    lab.ask("catalog", "connect-close 10.96.1.12 7070 20")?;
    lab.ask("loadgenerator", "connect-close 10.244.0.14 5050 20")?;
    lab.ask("cart", "connect 10.96.2.10 50051")?;
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

/// Adds the reviews pod to the API (created now), waits until the exporter's inventory holds it and its node
/// filter passes the pod's address, wires it into the node, then lets it call catalog. (The lab's Node has no
/// `spec.podCIDRs`, so the filter names each pod: in a cluster the pod's address reaches the watch before its
/// containers start, and the change to the inventory wakes the capture thread, which replaces the filter at once.)
pub fn add_reviews(lab: &mut Lab) -> io::Result<()> {
    let before = InventoryCounts::of(lab)?;
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(1));
    let mut reviews = lab.cluster.workload("reviews").clone();
    reviews.created = Some(created.to_string());
    for object in reviews.objects() {
        lab.api.apply(object);
    }
    // The node's agent watches its pods; the pod's ReplicaSet is fetched when its first call needs it (the call
    // waits for it, so the identity is the Deployment's, never the ReplicaSet's name).
    let exporter = lab.exporter();
    crate::http::until("the reviews pod in the exporter's inventory and filter", Duration::from_secs(30), || {
        let now = InventoryCounts::of(lab).ok()?;
        (now.pods > before.pods && now.filtered > before.filtered).then_some(())
    })
    .map_err(|e| exporter.with_log(e))?;
    lab.add_pod(&reviews.pod_names()[0])?;
    call(lab, "reviews", "catalog", "10.96.1.11", 3550)
}

/// Objects in the exporter's inventory, from its self-metrics.
struct InventoryCounts {
    pods: f64,
    /// Networks and addresses the capture's node filter names.
    filtered: f64,
}

impl InventoryCounts {
    fn of(lab: &Lab) -> io::Result<InventoryCounts> {
        let text = lab.exporter().metrics().ok_or_else(|| io::Error::other("/metrics did not answer"))?;
        let sample = |series: &str| crate::http::sample(&text, series).unwrap_or(0.0);
        let pods = sample(r#"network_mapper_inventory_objects{kind="Pod"}"#);
        Ok(InventoryCounts { pods, filtered: sample("network_mapper_capture_filter_addresses") })
    }
}

/// The edges the exporter must count: (client, namespace, server, server namespace, count).
pub fn expected_edges() -> Vec<(&'static str, &'static str, &'static str, Option<&'static str>, usize)> {
    let shop = Some("shop");
    let mut edges = vec![
        ("cart", "shop", "redis", shop, 2), // pooled connection + redis-0.redis lookup
        ("cart", "shop", "payments", Some("payments"), 1), // held connection, no lookup
        ("catalog", "shop", "kubernetes", Some("default"), 1), // kubernetes.default lookup
        ("catalog", "shop", "cart", shop, 1), // short connection by ClusterIP, no lookup
        ("checkout", "shop", "cart", shop, 2), // lookup + connection
        ("checkout", "shop", "payments", Some("payments"), 2), // cross-namespace lookup + connection
        // DNS over TCP: the looked-up names only, never kube-dns (its connections are lookups, not calls).
        ("email-reminder", "shop", "checkout", shop, 1),
        ("email-reminder", "shop", "payments", Some("payments"), 1), // dig +tcp
        ("frontend", "shop", "cart", shop, 2),
        ("frontend", "shop", "catalog", shop, 2),
        ("frontend", "shop", "checkout", shop, 2),
        ("loadgenerator", "shop", "frontend", shop, BURST),
        ("loadgenerator", "shop", "checkout", shop, 1), // short connection by pod IP, no lookup
        ("payments", "payments", EXTERNAL_API, None, EXTERNAL_LOOKUPS),
        ("payments", "payments", UPSTREAM_NAME, None, UPSTREAM_LOOKUPS), // forwarded by kube-dns upstream
        ("ratings", "shop", "catalog", shop, NODE_LOCAL_LOOKUPS),        // through the NodeLocal DNSCache
        ("reviews", "shop", "catalog", shop, 2),                         // added after the API outage
    ];
    edges.sort();
    edges
}

/// (client, namespace, server, server namespace, server port, connections).
pub type Connections = (&'static str, &'static str, &'static str, Option<&'static str>, u16, usize);

/// [`expected_connections`] with both namespaces, as the series of `network_mapper_edge_connections_total` label
/// them: (client, namespace, server, server namespace, port, count).
pub fn expected_connection_series() -> Vec<Connections> {
    let namespace = |w: &str| if w == "payments" { "payments" } else { "shop" };
    expected_connections()
        .into_iter()
        .map(|(client, server, port, n)| (client, "shop", server, Some(namespace(server)), port, n))
        .collect()
}

/// The exposition lines of [`expected_edges`], sorted.
pub fn expected_edge_lines() -> Vec<String> {
    edge_lines(&expected_edges())
}

/// `network_mapper_edge_total` lines of (client, namespace, server, server namespace, count), sorted.
pub fn edge_lines(edges: &[(&str, &str, &str, Option<&str>, usize)]) -> Vec<String> {
    let mut lines: Vec<String> = edges
        .iter()
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

/// The connections of each edge by the server pod's port: (client, server, port, count). cart's pods listen on
/// 8070, the target port of its Service port 7070.
pub fn expected_connections() -> Vec<(&'static str, &'static str, u16, usize)> {
    let mut connections = vec![
        ("cart", "redis", 6379, 1),
        ("cart", "payments", 50051, 1),
        ("catalog", "cart", 8070, 1),
        ("checkout", "cart", 8070, 1),
        ("checkout", "payments", 50051, 1),
        ("frontend", "cart", 8070, 1),
        ("frontend", "catalog", 3550, 1),
        ("frontend", "checkout", 5050, 1),
        ("loadgenerator", "checkout", 5050, 1),
        ("reviews", "catalog", 3550, 1),
    ];
    connections.sort();
    connections
}

/// The exposition lines of [`expected_connections`], sorted.
pub fn expected_connection_lines() -> Vec<String> {
    connection_lines(&expected_connection_series())
}

/// `network_mapper_edge_connections_total` lines of [`Connections`], sorted.
pub fn connection_lines(series: &[Connections]) -> Vec<String> {
    let mut lines: Vec<String> = series
        .iter()
        .map(|(client, ns, server, server_ns, port, n)| {
            let server_ns = server_ns.unwrap_or_default();
            format!(
                "network_mapper_edge_connections_total{{client=\"{client}\",namespace=\"{ns}\",server=\"{server}\",\
                 server_namespace=\"{server_ns}\",port=\"{port}\"}} {n}"
            )
        })
        .collect();
    lines.sort();
    lines
}

/// DNS responses by outcome. Each response to a pod through kube-dns crosses two veths on device `any` (the DNS
/// pod's, after NAT the client's); the NodeLocal DNSCache's answers to its pods cross one (it is the node). An
/// answer that is parsed counts once and its other copy is `duplicate`; a non-answer or a forwarded lookup is
/// decided before de-duplication, at every copy. The kernel's node filter (docs/design.md §7) passes only answers
/// to node-a's pods except its DNS servers, and over UDP only those whose header says they can count: answers to
/// the node itself, to node-b's pods and to the kube-dns pod (the upstream resolver's answers to forwarded lookups)
/// and answers without a record are never read.
/// - answers that count: frontend 3, checkout 2, cart 1, catalog 1, payments 3 + 2 (forwarded name),
///   email-reminder 2 (both over TCP), reviews 1, ratings 2 (NodeLocal, one copy each), plus the burst;
/// - not_answer: none reach user space; the NXDOMAIN answers for search-list candidates
///   (`payments.payments.shop.svc…` 1, `kubernetes.default.shop.svc…` 1, the external name 3 per lookup, the
///   forwarded name 3 per lookup, each over UDP) stay in the kernel;
/// - forwarded: none reach user space (the replay tests count them);
/// - never read: recommendations' answer (node-b), the node's own lookup of `catalog.shop.monitoring.svc…`, the
///   NodeLocal cache's lookups from kube-dns (both to the node's address) and the upstream resolver's answers to
///   the kube-dns pod.
pub fn expected_dns_outcomes() -> Vec<(&'static str, usize)> {
    let counted = 12 + 1 + UPSTREAM_LOOKUPS + NODE_LOCAL_LOOKUPS + BURST;
    vec![
        ("counted", counted),
        ("duplicate", counted - NODE_LOCAL_LOOKUPS),
        ("forwarded", 0),
        ("malformed", 0),
        ("not_answer", 0),
        ("other_node", 0),
        ("refused", 0),
        ("unresolved", 0),
    ]
}

/// Kinds that must reach the intents (through `network_mapper_workload_info`).
pub const EXPECTED_KINDS: [(&str, &str); 4] =
    [("redis", "StatefulSet"), ("email-reminder", "CronJob"), ("kubernetes", "Service"), ("frontend", "Deployment")];

/// `netmap-reduce --format list` of the map.
pub const EXPECTED_LISTING: &str = "\
cart in namespace shop calls:
  - payments in namespace payments
  - redis
catalog in namespace shop calls:
  - cart
  - kubernetes in namespace default
checkout in namespace shop calls:
  - cart
  - payments in namespace payments
email-reminder in namespace shop calls:
  - checkout
  - payments in namespace payments
frontend in namespace shop calls:
  - cart
  - catalog
  - checkout
loadgenerator in namespace shop calls:
  - checkout
  - frontend
payments in namespace payments calls:
  - api.payment-gateway.example
  - api.upstream.test
ratings in namespace shop calls:
  - catalog
reviews in namespace shop calls:
  - catalog
";

/// Builds the shop's node, opens the pre-existing connection, starts the exporter (the API down for `api_down`
/// at first) and Prometheus, and runs the application's traffic.
pub fn bring_up(bins: super::monitor::Binaries, third: u8, api_down: Duration) -> io::Result<Lab> {
    let mut lab = Lab::build(bins, cluster, third)?;
    lab.start_upstream_dns(UPSTREAM_DNS, UPSTREAM_DOMAIN, &[&format!("{UPSTREAM_NAME},{UPSTREAM_ADDRESS}")])?;
    lab.start_node_local_dns(NODE_LOCAL_DNS, &["ratings"])?;
    start_servers(&mut lab)?;
    lab.start_exporter(api_down)?;
    lab.start_prometheus()?;
    traffic(&mut lab)?;
    Ok(lab)
}
