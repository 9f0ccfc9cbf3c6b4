//! `netmap-reduce` on the mesh lab's map (`testkit/src/e2e/meshed.rs`: what `tests/e2e_mesh.rs` checks the
//! exporter counts): the mesh proxies' calls to istiod are left out of listings and intents unless
//! `--show-control-plane` asks for them, and kept in policies; NetworkPolicies allow what each mesh puts on the
//! wire (HBONE's 15008 between ambient pods, 4143 between Linkerd pods, the target port for sidecars and for
//! clients outside the mesh) and say so in their `network-mapper.io/mesh` annotation.

use std::net::Ipv4Addr;

use serde::Deserialize;
use serde_json::Value;
use testkit::e2e::{meshed, shop};

mod policy_support;

use policy_support::{assert_exit, reduce, texts};

/// The exporter's exposition of the mesh lab.
fn snapshot() -> String {
    let mut lines = shop::edge_lines(&meshed::expected_edges());
    lines.extend(shop::connection_lines(&meshed::expected_connection_series()));
    format!("{}\n# EOF\n", lines.join("\n"))
}

/// Runs `netmap-reduce` on the lab's map (and its inventory as `kubectl get -o json` prints it); stdout.
fn run(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (input, inventory) = (dir.path().join("mesh.prom"), dir.path().join("inventory.json"));
    std::fs::write(&input, snapshot()).unwrap();
    let list = meshed::cluster(Ipv4Addr::new(192, 168, 10, 2)).inventory_list();
    std::fs::write(&inventory, list.to_string()).unwrap();
    let mut all = vec![input.to_str().unwrap()];
    all.extend(args.iter().map(|a| if *a == "INVENTORY" { inventory.to_str().unwrap() } else { a }));
    let output = reduce(&all);
    assert_exit(&output, 0, &[]);
    texts(&output).0
}

#[test]
fn listings_and_intents_leave_the_control_plane_out_unless_asked() {
    assert_eq!(run(&[]), meshed::EXPECTED_LISTING);
    let shown = run(&["--show-control-plane"]);
    for line in ["ztunnel in namespace istio-system calls:\n  - istiod\n", "  - istiod in namespace istio-system\n"] {
        assert!(shown.contains(line), "{line:?} in\n{shown}");
    }
    assert!(!run(&["--format", "intents"]).contains("istiod"));
    assert!(run(&["--format", "intents", "--show-control-plane"]).contains("istiod.istio-system"));
    let output = reduce(&["-", "--format", "json", "--show-control-plane"]);
    assert_exit(&output, 2, &["--show-control-plane does not apply to --format json"]);
}

/// The generated policies, by name.
fn policies() -> Vec<Value> {
    let text = run(&["--format", "networkpolicy", "--inventory-file", "INVENTORY", "--policy-direction", "both"]);
    serde_yaml::Deserializer::from_str(&text).map(|doc| Value::deserialize(doc).unwrap()).collect()
}

/// (peer workload's `app.kubernetes.io/name`, ports) of a policy's `ingress` or `egress` rules.
fn rules(policies: &[Value], name: &str, direction: &str) -> (Vec<(String, Vec<u64>)>, Value) {
    let policy = policies.iter().find(|p| p["metadata"]["name"] == name).unwrap_or_else(|| panic!("no {name}"));
    let peers = if direction == "ingress" { "from" } else { "to" };
    let mut found = Vec::new();
    for rule in policy["spec"][direction].as_array().unwrap() {
        let ports: Vec<u64> =
            rule["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_u64()).collect();
        for peer in rule[peers].as_array().into_iter().flatten() {
            let app = &peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"];
            found.push((app.as_str().unwrap_or("?").to_owned(), ports.clone()));
        }
    }
    found.sort();
    (found, policy["metadata"]["annotations"]["network-mapper.io/mesh"].clone())
}

#[test]
fn policies_allow_what_each_mesh_puts_on_the_wire_and_say_why() {
    let policies = policies();
    let peer = |app: &str, ports: &[u64]| (app.to_owned(), ports.to_vec());
    let (payments, note) = rules(&policies, "payments-ingress", "ingress");
    assert_eq!(payments, vec![peer("checkout", &[15008]), peer("legacy", &[9091])], "ambient: HBONE from the mesh");
    assert!(note.as_str().unwrap().starts_with("istio-ambient: clients in the mesh reach it through"), "{note}");
    let (stock, note) = rules(&policies, "stock-ingress", "ingress");
    assert_eq!(stock, vec![peer("catalog", &[4143]), peer("legacy", &[9093])], "Linkerd's inbound port");
    assert!(note.as_str().unwrap().starts_with("linkerd:"), "{note}");
    let (orders, note) = rules(&policies, "orders-ingress", "ingress");
    assert_eq!(orders, vec![peer("legacy", &[8081]), peer("web", &[8081])], "a sidecar gets the target port");
    assert!(note.as_str().unwrap().starts_with("istio-sidecar:"), "{note}");
    let (istiod, _) = rules(&policies, "istiod-ingress", "ingress");
    let proxies: Vec<&str> = istiod.iter().map(|(app, _)| app.as_str()).collect();
    assert_eq!(proxies, ["orders", "waypoint", "web", "ztunnel"], "control-plane calls stay in policies");
    let (checkout, note) = rules(&policies, "checkout-egress", "egress");
    let servers: Vec<_> =
        checkout.iter().filter(|(app, _)| !["?", "coredns"].contains(&app.as_str())).cloned().collect();
    assert_eq!(servers, vec![peer("legacy", &[9094]), peer("payments", &[15008]), peer("reviews", &[15008])]);
    assert!(note.as_str().unwrap().starts_with("istio-ambient: ztunnel carries"), "{note}");
}
