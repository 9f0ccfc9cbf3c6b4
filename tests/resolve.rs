//! Resolver tests: every identity rule and every rejection reason of docs/design.md §4, against the inventory fixture
//! `tests/fixtures/inventory/cluster.yaml` (see the README beside it).

use std::net::IpAddr;

use network_mapper::resolve::{
    ClusterName, Reason, Resolution, ResolveConfig, Resolver, Server, Side, parse_cluster_name,
};
use network_mapper::sources::inventory::{Inventory, load_file};

/// 2026-03-01T00:00:00Z: after every fixture pod's creation but `newcomer`'s.
const MARCH: i64 = 1_772_323_200 * 1_000_000;
/// 2026-06-01T00:00:00Z: `newcomer`'s creation.
const JUNE: i64 = 1_780_272_000 * 1_000_000;

fn inventory() -> Inventory {
    load_file(std::path::Path::new("tests/fixtures/inventory/cluster.yaml")).expect("fixture loads")
}

fn config(node: Option<&str>) -> ResolveConfig {
    ResolveConfig { cluster_domain: "cluster.local".into(), node_name: node.map(str::to_owned) }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Renders a resolution as `client.ns(Kind) -> server.ns(Kind)` or the reason, so tables stay readable.
fn show(r: Resolution) -> String {
    match r {
        Resolution::Edge(e) => {
            let server = match e.server {
                Server::Workload(w) => format!("{}.{}({})", w.name, w.namespace, w.kind),
                Server::External(name) => format!("external:{name}"),
            };
            format!("{}.{}({}) -> {server}", e.client.name, e.client.namespace, e.client.kind)
        }
        Resolution::OtherNode => "other_node".into(),
        Resolution::Unresolved(side, reason) => format!("{}:{}", side.metric_label(), reason.metric_label()),
        Resolution::Fetch(side, wanted) => format!("{}:fetch {wanted:?}", side.metric_label()),
    }
}

fn dns(client: &str, name: &str, answers: &[&str], at: i64) -> String {
    let inv = inventory();
    let cfg = config(None);
    let answers: Vec<IpAddr> = answers.iter().map(|a| ip(a)).collect();
    show(Resolver::new(&inv, &cfg).dns_answer(ip(client), name, &answers, at))
}

#[test]
fn client_identity_follows_every_owner_chain_rule() {
    let cases = [
        ("10.0.1.10", "checkout.shop(Deployment)"),
        ("10.0.1.30", "redis.shop(StatefulSet)"),
        ("10.0.1.40", "report.shop(CronJob)"),
        ("10.0.1.41", "migrate-schema.shop(Job)"),
        ("10.0.1.50", "web.shop(Rollout)"),
        ("10.0.1.51", "storefront.shop(ReplicaSet)"),
        ("10.0.1.52", "legacy_ui.shop(Pod)"),
        ("10.0.1.53", "api_v2.shop(Deployment)"),
        ("10.0.1.60", "debug.shop(Pod)"),
        ("10.0.1.70", "log-agent.shop(DaemonSet)"),
    ];
    for (client, expected) in cases {
        let got = dns(client, "api.example.com", &["203.0.113.9"], MARCH);
        assert_eq!(got, format!("{expected} -> external:api.example.com"), "client {client}");
    }
}

#[test]
fn client_rejections_name_their_reason() {
    let cases = [
        ("192.168.50.10", "client:host_network"),
        ("10.0.1.80", "client:terminating"),
        ("10.0.1.90", "client:ambiguous"),
        ("10.0.1.92", "client:finished"),
        ("10.9.9.9", "client:unknown_ip"),
    ];
    for (client, expected) in cases {
        assert_eq!(dns(client, "api.example.com", &["203.0.113.9"], MARCH), expected, "client {client}");
    }
}

#[test]
fn observations_older_than_the_pod_are_not_attributed_to_it() {
    assert_eq!(dns("10.0.1.91", "api.example.com", &["203.0.113.9"], MARCH), "client:before_creation");
    assert_eq!(
        dns("10.0.1.91", "api.example.com", &["203.0.113.9"], JUNE),
        "newcomer.shop(Pod) -> external:api.example.com"
    );
}

#[test]
fn service_names_resolve_to_the_backing_workload() {
    let cases = [
        ("cart.shop.svc.cluster.local", "cart.shop(Deployment)"),
        ("invoices.billing.svc.cluster.local", "invoices.billing(Deployment)"),
        ("redis.shop.svc.cluster.local", "redis.shop(StatefulSet)"),
        ("redis-1.redis.shop.svc.cluster.local", "redis.shop(StatefulSet)"),
        ("web.shop.svc.cluster.local", "web.shop(Rollout)"),
        ("legacy.shop.svc.cluster.local", "legacy.shop(Service)"),
        ("payments-gw.shop.svc.cluster.local", "payments-gw.shop(Service)"),
        ("kubernetes.default.svc.cluster.local", "kubernetes.default(Service)"),
        ("10-0-1-30.shop.pod.cluster.local", "redis.shop(StatefulSet)"),
    ];
    for (name, expected) in cases {
        assert_eq!(
            dns("10.0.1.10", name, &["10.96.0.20"], MARCH),
            format!("checkout.shop(Deployment) -> {expected}"),
            "{name}"
        );
    }
}

#[test]
fn server_rejections_name_their_reason() {
    assert_eq!(dns("10.0.1.10", "nope.shop.svc.cluster.local", &["10.96.7.7"], MARCH), "server:unknown_service");
    assert_eq!(dns("10.0.1.10", "10-0-1-90.shop.pod.cluster.local", &["10.0.1.90"], MARCH), "server:ambiguous");
    assert_eq!(dns("10.0.1.10", "10-9-9-9.shop.pod.cluster.local", &["10.9.9.9"], MARCH), "server:unknown_ip");
}

#[test]
fn outside_names_fall_back_to_answer_addresses_then_the_name() {
    // A private name that points at a ClusterIP is that service's workload.
    assert_eq!(
        dns("10.0.1.10", "cart.internal.example", &["10.96.0.20"], MARCH),
        "checkout.shop(Deployment) -> cart.shop(Deployment)"
    );
    // A node IP is not an identity, so the name stays the server.
    assert_eq!(
        dns("10.0.1.10", "node.example", &["192.168.50.10"], MARCH),
        "checkout.shop(Deployment) -> external:node.example"
    );
}

#[test]
fn only_clients_on_this_node_are_counted() {
    let inv = inventory();
    let cfg = config(Some("node-a"));
    let resolver = Resolver::new(&inv, &cfg);
    let here = resolver.dns_answer(ip("10.0.1.10"), "cart.shop.svc.cluster.local", &[], MARCH);
    assert_eq!(show(here), "checkout.shop(Deployment) -> cart.shop(Deployment)");
    let there = resolver.dns_answer(ip("10.0.1.20"), "redis.shop.svc.cluster.local", &[], MARCH);
    assert_eq!(there, Resolution::OtherNode);
}

#[test]
fn connections_resolve_cluster_ips_and_pod_ips() {
    let inv = inventory();
    let cfg = config(None);
    let r = Resolver::new(&inv, &cfg);
    let conn = |local, remote| show(r.connection(ip(local), ip(remote), MARCH));
    assert_eq!(conn("10.0.1.10", "10.96.0.20"), "checkout.shop(Deployment) -> cart.shop(Deployment)");
    assert_eq!(conn("10.0.1.10", "10.96.0.1"), "checkout.shop(Deployment) -> kubernetes.default(Service)");
    assert_eq!(conn("10.0.1.10", "10.0.2.10"), "checkout.shop(Deployment) -> invoices.billing(Deployment)");
    assert_eq!(conn("10.0.1.10", "203.0.113.9"), "server:unknown_ip");
    assert_eq!(conn("10.0.1.10", "192.168.50.10"), "server:host_network");
    assert_eq!(conn("10.0.1.10", "10.0.1.80"), "server:terminating");
    assert_eq!(
        r.connection(ip("10.0.1.80"), ip("10.96.0.20"), MARCH),
        Resolution::Unresolved(Side::Client, Reason::Terminating)
    );
}

#[test]
fn cluster_names_parse_by_design_4_2() {
    let d = "cluster.local";
    assert_eq!(
        parse_cluster_name("a.b.svc.cluster.local", d),
        ClusterName::Service { namespace: "b", service: "a", host: None }
    );
    assert_eq!(
        parse_cluster_name("h.a.b.svc.cluster.local", d),
        ClusterName::Service { namespace: "b", service: "a", host: Some("h") }
    );
    assert_eq!(
        parse_cluster_name("10-1-2-3.ns.pod.cluster.local", d),
        ClusterName::Pod { namespace: "ns", ip: ip("10.1.2.3") }
    );
    assert_eq!(
        parse_cluster_name("fd00--5.ns.pod.cluster.local", d),
        ClusterName::Pod { namespace: "ns", ip: ip("fd00::5") }
    );
    for outside in [
        "example.com",
        "cluster.local",
        "b.svc.cluster.local",
        "x.ns.pod.cluster.local",
        "a.b.svc.cluster.local.evil.com",
        "notcluster.local",
    ] {
        assert_eq!(parse_cluster_name(outside, d), ClusterName::Outside, "{outside}");
    }
}

#[test]
fn index_updates_replace_and_remove_records() {
    let mut inv = inventory();
    let cfg = config(None);
    assert!(inv.remove_pod("shop", "twin-b"));
    assert_eq!(
        show(Resolver::new(&inv, &cfg).dns_answer(ip("10.0.1.90"), "x.example", &[], MARCH)),
        "twin-a.shop(Pod) -> external:x.example"
    );
    assert!(inv.remove_owner("shop", "ReplicaSet", "checkout-7d9f"));
    // Without its ReplicaSet, the chain stops at the owner reference the pod names.
    assert_eq!(
        show(Resolver::new(&inv, &cfg).dns_answer(ip("10.0.1.10"), "x.example", &[], MARCH)),
        "checkout-7d9f.shop(ReplicaSet) -> external:x.example"
    );
    assert!(inv.remove_slice("shop", "cart-x1"));
    assert_eq!(
        show(Resolver::new(&inv, &cfg).dns_answer(ip("10.0.1.60"), "cart.shop.svc.cluster.local", &[], MARCH)),
        "debug.shop(Pod) -> cart.shop(Service)"
    );
    assert!(inv.remove_service("shop", "cart"));
    assert_eq!(
        show(Resolver::new(&inv, &cfg).connection(ip("10.0.1.60"), ip("10.96.0.20"), MARCH)),
        "server:unknown_ip"
    );
}

#[test]
fn a_live_inventory_waits_for_a_watched_owner_instead_of_naming_the_workload_after_it() {
    let mut inv = inventory();
    inv.track_owner_kinds(&["ReplicaSet", "Job"]);
    let cfg = config(None);
    let resolve = |inv: &Inventory| {
        show(Resolver::new(inv, &cfg).dns_answer(ip("10.0.1.10"), "cart.shop.svc.cluster.local", &[], MARCH))
    };
    assert_eq!(resolve(&inv), "checkout.shop(Deployment) -> cart.shop(Deployment)");
    // The client's ReplicaSet has not arrived (or was just removed): not `checkout-7d9f`, but pending.
    assert!(inv.remove_owner("shop", "ReplicaSet", "checkout-7d9f"));
    assert_eq!(resolve(&inv), "client:owner_pending");
    // The same on the server side: cart's backing pod's ReplicaSet is missing.
    let mut inv = inventory();
    inv.track_owner_kinds(&["ReplicaSet", "Job"]);
    assert!(inv.remove_owner("shop", "ReplicaSet", "cart-5c6b"));
    assert_eq!(resolve(&inv), "server:owner_pending");
    // Kinds that are never watched (Deployment, StatefulSet, custom owners) are roots as before.
    assert_eq!(
        show(Resolver::new(&inv, &cfg).dns_answer(ip("10.0.1.50"), "x.example", &[], MARCH)),
        "web.shop(Rollout) -> external:x.example"
    );
    assert_eq!(
        show(Resolver::new(&inv, &cfg).dns_answer(ip("10.0.1.41"), "x.example", &[], MARCH)),
        "migrate-schema.shop(Job) -> external:x.example"
    );
}
