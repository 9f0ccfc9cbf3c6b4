//! The exporter binary capturing live: a real dnsmasq in a network namespace answers real queries, and
//! `network-mapper --interface <veth>` must count them as edges on `/metrics`. Needs root (runs in CI).

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use network_mapper::sources::capture::source::BLOCK_TIMEOUT_MS;
use simple_dns::TYPE;
use testkit::cmd::Guarded;
use testkit::http::{eventually, free_port, get};
use testkit::k8s::{self, Endpoint, Pod};
use testkit::lab::{DnsLab, udp_exchange};
use testkit::packets;

const RECORDS: &[&str] = &[
    "--host-record=cart.shop.svc.cluster.local,10.96.0.20",
    "--host-record=api.example.com,203.0.113.5",
    "--txt-record=info.shop.svc.cluster.local,hello",
    "--local=/cluster.local/",
];

/// The inventory: the root side of the veth is the `checkout` pod on node-a; `cart` is a Service backed by a
/// pod of Deployment `cart`.
fn inventory(client_ip: IpAddr) -> String {
    let created = "2020-01-01T00:00:00Z";
    let cart = Endpoint { ip: "10.244.9.9", pod: "cart-1-b", node: "node-b", hostname: None };
    k8s::list([
        k8s::owned("ReplicaSet", "shop", "checkout-1", "Deployment", "checkout"),
        Pod::new("shop", "checkout-1-a", &client_ip.to_string())
            .owner("ReplicaSet", "checkout-1")
            .created(created)
            .json(),
        Pod::new("shop", "cart-1-b", "10.244.9.9").owner("ReplicaSet", "cart-1").node("node-b").created(created).json(),
        k8s::owned("ReplicaSet", "shop", "cart-1", "Deployment", "cart"),
        k8s::service("shop", "cart", Some("10.96.0.20"), 80),
        k8s::endpoint_slice("shop", "cart", "cart-x", 80, &[cart]),
    ])
}

fn metrics(port: u16) -> Option<String> {
    get(&format!("http://127.0.0.1:{port}/metrics")).map(|(_, body)| body)
}

#[test]
#[ignore = "live: needs root, network namespaces, dnsmasq (run by `make test`)"]
fn live_capture_counts_real_dns_answers_as_edges() {
    let lab = DnsLab::start(RECORDS, "cart.shop.svc.cluster.local");
    let client = IpAddr::V4(lab.veth.root_v4);
    let dir = tempfile::tempdir().unwrap();
    let inventory_path = dir.path().join("inventory.yaml");
    std::fs::write(&inventory_path, inventory(client)).unwrap();
    let port = free_port();
    let _exporter = Guarded::spawn(
        Command::new(env!("CARGO_BIN_EXE_network-mapper"))
            .args(["--interface", &lab.veth.root_if, "--inventory-file", inventory_path.to_str().unwrap()])
            .args(["--listen-address", &format!("127.0.0.1:{port}"), "--node-name", "node-a"])
            .args(["--cluster-domain", "cluster.local", "--no-socket-scan"])
            .stderr(Stdio::null()),
    )
    .unwrap();
    // The capture is open before the server answers, so once /metrics responds no answer can be missed.
    eventually("the exporter to start", Duration::from_secs(20), || metrics(port));

    let ask = |id: u16, name: &str, qtype| {
        let query = packets::query(id, name, qtype);
        udp_exchange(client, lab.server_v4(), &query, Duration::from_secs(2)).expect("dnsmasq answers");
    };
    for id in 1..=3 {
        ask(id, "cart.shop.svc.cluster.local", TYPE::A);
    }
    ask(4, "api.example.com", TYPE::A);
    // An answer with a record but no address reaches user space and is not an answer; NXDOMAIN over UDP stays in
    // the kernel (the node filter passes only answers that carry a record).
    ask(5, "info.shop.svc.cluster.local", TYPE::TXT);
    ask(6, "nope.shop.svc.cluster.local", TYPE::A);

    let want = [
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"} 3"#,
        r#"network_mapper_edge_total{client="checkout",namespace="shop",server="api.example.com"} 1"#,
        r#"network_mapper_dns_responses_total{outcome="not_answer"} 1"#,
        r#"network_mapper_dns_responses_total{outcome="counted"} 4"#,
    ];
    let found = testkit::http::until("the expected series", Duration::from_secs(10), || {
        metrics(port).filter(|text| want.iter().all(|w| text.contains(w)))
    });
    let text =
        found.unwrap_or_else(|e| panic!("{e}: expected series never appeared:\n{}", metrics(port).unwrap_or_default()));
    assert!(text.contains("network_mapper_capture_kernel_drops_total 0"), "{text}");
    // The NXDOMAIN stays out for good, not just until a later block.
    std::thread::sleep(Duration::from_millis(BLOCK_TIMEOUT_MS as u64 + 300));
    let later = metrics(port).unwrap_or_default();
    assert!(later.contains(want[2]) && later.contains(want[3]), "{later}");
}
