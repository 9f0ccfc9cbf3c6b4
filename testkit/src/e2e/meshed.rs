//! The mesh scenario on node-a (docs/counting.md, "Service meshes"): Istio sidecars with and without DNS
//! capture (web, orders), Istio ambient without and with a waypoint (checkout → payments, checkout → reviews),
//! Linkerd (catalog → stock), and a workload without a mesh (legacy) calling each kind of meshed server and called
//! by each kind of meshed client. Short connections (closed within 10 ms, before any scan) and connections held
//! across every scan, one opened before the exporter starts; the proxies' own connections to istiod.
//!
//! The counts are those of the applications' calls, exactly as if there were no mesh: the sidecar pools its
//! upstreams to orders (four application connections share two upstream connections), ztunnel multiplexes all of
//! checkout's connections to payments over one HBONE connection, Linkerd opens one upstream per connection on
//! 4143; none of that shows in a count or a port.

use std::io;
use std::net::Ipv4Addr;

use super::Lab;
use super::cluster::{Cluster, Controller, Dataplane, External, Service};
use super::mesh::{self, MeshSetup};
use super::monitor::Binaries;
use super::shop::{Connections, here, service, workload};

/// The link subnet of the mesh lab's node.
pub const LINK_SUBNET: u8 = 251;
/// A name outside the cluster that web looks up: its proxy's DNS capture forwards the miss from web's address.
pub const PARTNER_API: &str = "api.partner.example";
const ISTIOD: &str = "10.96.5.1:15012";

fn meshed(name: &'static str, last: u8, dataplane: Option<Dataplane>) -> super::cluster::Workload {
    super::cluster::Workload { dataplane, ..workload(name, "shop", Controller::Deployment, vec![here(last)]) }
}

/// A Service whose port 80 targets the named port `http`, `target` on the pods.
fn http_service(name: &'static str, ip: [u8; 4], target: u16) -> Service {
    Service { target: Some(("http", target)), ..service(name, "shop", Some(ip), 80, name) }
}

/// The mesh cluster. `_node_ip` is the node's address (no hostNetwork pod here).
pub fn cluster(_node_ip: Ipv4Addr) -> Cluster {
    use Dataplane::*;
    let system = |name, controller, last| workload(name, "istio-system", controller, vec![here(last)]);
    Cluster {
        workloads: vec![
            workload("coredns", "kube-system", Controller::Deployment, vec![here(10)]),
            system("istiod", Controller::Deployment, 11),
            system("ztunnel", Controller::DaemonSet, 12),
            meshed("web", 20, Some(IstioSidecar { dns_capture: true })),
            meshed("orders", 21, Some(IstioSidecar { dns_capture: false })),
            meshed("checkout", 30, Some(IstioAmbient)),
            meshed("payments", 31, Some(IstioAmbient)),
            meshed("reviews", 32, Some(IstioAmbient)),
            meshed("waypoint", 33, None),
            meshed("catalog", 40, Some(Linkerd)),
            meshed("stock", 41, Some(Linkerd)),
            meshed("legacy", 50, None),
        ],
        services: vec![
            service("kube-dns", "kube-system", Some([10, 96, 0, 10]), 53, "coredns"),
            service("istiod", "istio-system", Some([10, 96, 5, 1]), 15012, "istiod"),
            http_service("orders", [10, 96, 6, 21], 8081),
            http_service("payments", [10, 96, 6, 31], 9091),
            http_service("reviews", [10, 96, 6, 32], 9092),
            http_service("stock", [10, 96, 6, 41], 9093),
            http_service("legacy", [10, 96, 6, 50], 9094),
        ],
        externals: vec![External { name: PARTNER_API, ip: Ipv4Addr::new(203, 0, 113, 20) }],
        upstreams: vec![],
    }
}

/// Where the mesh's parts are.
pub fn setup() -> MeshSetup {
    MeshSetup { istiod: ISTIOD.into(), ztunnel: "ztunnel", waypoints: vec![("reviews", "waypoint")] }
}

/// Builds the node, wires the mesh (rules, proxies: their xDS streams to istiod open now), starts the servers and
/// opens web's connection to orders that is held from before the exporter starts.
pub fn build(bins: Binaries) -> io::Result<Lab> {
    let mut lab = Lab::build(bins, cluster, LINK_SUBNET)?;
    for (workload, port) in [("istiod", 15012), ("orders", 8081), ("payments", 9091), ("reviews", 9092)] {
        lab.ask(workload, &format!("listen {port}"))?;
    }
    for (workload, port) in [("stock", 9093), ("legacy", 9094)] {
        lab.ask(workload, &format!("listen {port}"))?;
    }
    mesh::wire(&mut lab, &setup())?;
    lab.ask("web", "connect 10.96.6.21 80")?;
    Ok(lab)
}

/// `short` connections closed after 10 ms, then one held, from `client` to `ip:port`.
fn calls(lab: &mut Lab, client: &str, ip: &str, port: u16, short: usize, held: bool) -> io::Result<()> {
    for _ in 0..short {
        lab.ask(client, &format!("connect-close {ip} {port} 10"))?;
    }
    if held {
        lab.ask(client, &format!("connect {ip} {port}"))?;
    }
    Ok(())
}

/// The applications' traffic once the exporter runs.
pub fn traffic(lab: &mut Lab) -> io::Result<()> {
    // Istio sidecars: web's DNS proxy answers orders in the pod; a name it does not know leaves from web's
    // address. orders has no DNS capture: its lookup is on the wire.
    lab.resolve("web", "orders", "10.96.6.21")?;
    lab.resolve("web", PARTNER_API, "203.0.113.20")?;
    calls(lab, "web", "10.96.6.21", 80, 3, true)?;
    calls(lab, "web", "10.96.6.50", 80, 1, true)?;
    lab.resolve("orders", "legacy", "10.96.6.50")?;
    calls(lab, "orders", "10.96.6.50", 80, 0, true)?;
    // Ambient: one HBONE connection carries checkout's calls to payments; reviews is behind a waypoint; legacy
    // is reached in plain text. ztunnel's DNS proxy answers in the pod.
    lab.resolve("checkout", "payments", "10.96.6.31")?;
    calls(lab, "checkout", "10.96.6.31", 80, 2, true)?;
    calls(lab, "checkout", "10.96.6.32", 80, 1, true)?;
    calls(lab, "checkout", "10.96.6.50", 80, 1, false)?;
    // Linkerd: one upstream per connection, on 4143.
    calls(lab, "catalog", "10.96.6.41", 80, 2, true)?;
    calls(lab, "catalog", "10.96.6.50", 80, 0, true)?;
    // Without a mesh, into each kind of meshed server.
    calls(lab, "legacy", "10.96.6.21", 80, 1, true)?;
    calls(lab, "legacy", "10.96.6.31", 80, 1, true)?;
    calls(lab, "legacy", "10.96.6.41", 80, 0, true)
}

/// Every connection series: (client, namespace, server, server namespace, port, connections). Each is the
/// application's count at its server's target port; the proxies' control-plane streams go to istiod on 15012.
pub fn expected_connection_series() -> Vec<Connections> {
    let shop = |client, server, port, n| (client, "shop", server, Some("shop"), port, n);
    let istiod = |client, namespace| (client, namespace, "istiod", Some("istio-system"), 15012, 1);
    vec![
        shop("web", "orders", 8081, 5), // one held from before the start, three short, one held
        shop("web", "legacy", 9094, 2),
        shop("orders", "legacy", 9094, 1),
        shop("checkout", "payments", 9091, 3),
        shop("checkout", "reviews", 9092, 2),
        shop("checkout", "legacy", 9094, 1),
        shop("catalog", "stock", 9093, 3),
        shop("catalog", "legacy", 9094, 1),
        shop("legacy", "orders", 8081, 2),
        shop("legacy", "payments", 9091, 2),
        shop("legacy", "stock", 9093, 1),
        istiod("web", "shop"),
        istiod("orders", "shop"),
        istiod("waypoint", "shop"),
        istiod("ztunnel", "istio-system"),
    ]
}

/// Every edge: the connections, plus the two DNS answers on the wire (web's forwarded miss, orders' lookup).
pub fn expected_edges() -> Vec<(&'static str, &'static str, &'static str, Option<&'static str>, usize)> {
    let mut edges: Vec<_> = expected_connection_series()
        .into_iter()
        .map(|(client, ns, server, server_ns, _, n)| {
            let dns = usize::from((client, server) == ("orders", "legacy"));
            (client, ns, server, server_ns, n + dns)
        })
        .collect();
    edges.push(("web", "shop", PARTNER_API, None, 1));
    edges.sort();
    edges
}

/// `netmap-reduce --format list` of the map: the proxies' calls to istiod are left out by default.
pub const EXPECTED_LISTING: &str = "\
catalog in namespace shop calls:
  - legacy
  - stock
checkout in namespace shop calls:
  - legacy
  - payments
  - reviews
legacy in namespace shop calls:
  - orders
  - payments
  - stock
orders in namespace shop calls:
  - legacy
web in namespace shop calls:
  - api.partner.example
  - legacy
  - orders
";
