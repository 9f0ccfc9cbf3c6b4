//! The exporter binary capturing live: a real dnsmasq in a network namespace answers real queries, and
//! `network-mapper --interface <veth>` must count them as edges on `/metrics`. Needs root (runs in CI).

mod support;

use std::net::{IpAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use network_mapper::sources::capture::synth;
use simple_dns::TYPE;
use support::{DnsLab, udp_exchange};

const RECORDS: &[&str] = &[
    "--host-record=cart.shop.svc.cluster.local,10.96.0.20",
    "--host-record=api.example.com,203.0.113.5",
    "--local=/cluster.local/",
];

/// The inventory: the root side of the veth is the `checkout` pod on node-a; `cart` is a Service backed by a
/// pod of Deployment `cart`.
fn inventory(client_ip: IpAddr) -> String {
    format!(
        r#"apiVersion: v1
kind: List
items:
- {{kind: ReplicaSet, apiVersion: apps/v1, metadata: {{name: checkout-1, namespace: shop, ownerReferences: [{{kind: Deployment, name: checkout, apiVersion: apps/v1, uid: u1, controller: true}}]}}}}
- {{kind: Pod, apiVersion: v1, metadata: {{name: checkout-1-a, namespace: shop, creationTimestamp: "2020-01-01T00:00:00Z", ownerReferences: [{{kind: ReplicaSet, name: checkout-1, apiVersion: apps/v1, uid: u2, controller: true}}]}}, spec: {{nodeName: node-a, containers: []}}, status: {{phase: Running, podIP: "{client_ip}"}}}}
- {{kind: Pod, apiVersion: v1, metadata: {{name: cart-1-b, namespace: shop, creationTimestamp: "2020-01-01T00:00:00Z", ownerReferences: [{{kind: ReplicaSet, name: cart-1, apiVersion: apps/v1, uid: u3, controller: true}}]}}, spec: {{nodeName: node-b, containers: []}}, status: {{phase: Running, podIP: 10.244.9.9}}}}
- {{kind: ReplicaSet, apiVersion: apps/v1, metadata: {{name: cart-1, namespace: shop, ownerReferences: [{{kind: Deployment, name: cart, apiVersion: apps/v1, uid: u4, controller: true}}]}}}}
- {{kind: Service, apiVersion: v1, metadata: {{name: cart, namespace: shop}}, spec: {{clusterIP: 10.96.0.20}}}}
- {{kind: EndpointSlice, apiVersion: discovery.k8s.io/v1, addressType: IPv4, metadata: {{name: cart-x, namespace: shop, labels: {{kubernetes.io/service-name: cart}}}}, endpoints: [{{addresses: [10.244.9.9], targetRef: {{kind: Pod, name: cart-1-b, namespace: shop}}}}]}}
"#
    )
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn metrics(port: u16) -> Option<String> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    reqwest::blocking::Client::new().get(url).timeout(Duration::from_secs(2)).send().ok()?.text().ok()
}

#[test]
fn live_capture_counts_real_dns_answers_as_edges() {
    if !support::live_prerequisites_met() {
        return;
    }
    let lab = DnsLab::start(RECORDS, "cart.shop.svc.cluster.local");
    let client = IpAddr::V4(lab.veth.root_v4);
    let dir = tempfile::tempdir().unwrap();
    let inventory_path = dir.path().join("inventory.yaml");
    std::fs::write(&inventory_path, inventory(client)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_network-mapper"))
        .args(["--interface", &lab.veth.root_if, "--inventory-file", inventory_path.to_str().unwrap()])
        .args(["--listen-address", &format!("127.0.0.1:{port}"), "--node-name", "node-a"])
        .args(["--cluster-domain", "cluster.local", "--no-socket-scan"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _exporter = Running(child);
    // The capture is open before the server answers, so once /metrics responds no answer can be missed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics(port).is_none() {
        assert!(Instant::now() < deadline, "exporter did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let ask = |id: u16, name: &str| {
        let query = synth::query(id, name, TYPE::A);
        udp_exchange(client, lab.server_v4(), &query, Duration::from_secs(2)).expect("dnsmasq answers");
    };
    for id in 1..=3 {
        ask(id, "cart.shop.svc.cluster.local");
    }
    ask(4, "api.example.com");
    ask(5, "nope.shop.svc.cluster.local");

    let want = [
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"} 3"#,
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="api.example.com"} 1"#,
        r#"network_mapper_dns_responses_total{outcome="not_answer"} 1"#,
        r#"network_mapper_dns_responses_total{outcome="counted"} 4"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(port).unwrap_or_default();
        if want.iter().all(|w| text.contains(w)) {
            assert!(text.contains("network_mapper_capture_kernel_drops_total 0"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "expected series never appeared:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
