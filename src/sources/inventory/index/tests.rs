//! The index's caches against the plain meaning of the records: owner-chain roots, IP lists and backing pods
//! must stay what walking the records would give, whatever order updates arrive in.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use super::Inventory;
use crate::sources::inventory::{
    EndpointRecord, OwnerRecord, OwnerRef, PodRecord, ServicePort, ServiceRecord, SlicePort, SliceRecord, TargetPort,
};

fn owner_ref(kind: &str, name: &str) -> OwnerRef {
    OwnerRef { kind: Arc::from(kind), name: Arc::from(name) }
}

fn pod(name: &str, ip: &str, owner: Option<OwnerRef>) -> PodRecord {
    PodRecord { ips: vec![ip.parse().unwrap()], owner, ..PodRecord::bare(Arc::from("shop"), Arc::from(name)) }
}

fn owner(kind: &str, name: &str, parent: Option<OwnerRef>) -> OwnerRecord {
    OwnerRecord { namespace: Arc::from("shop"), kind: Arc::from(kind), name: Arc::from(name), owner: parent }
}

fn root(inventory: &Inventory, name: &str) -> Option<(String, String)> {
    let root = inventory.pod("shop", name)?.owner_root()?;
    Some((root.kind.to_string(), root.name.to_string()))
}

fn pair(kind: &str, name: &str) -> Option<(String, String)> {
    Some((kind.into(), name.into()))
}

#[test]
fn a_replica_set_that_arrives_after_its_pods_makes_them_a_deployment_and_its_removal_undoes_it() {
    let mut inventory = Inventory::new();
    inventory.upsert_pod(pod("web-1", "10.0.0.1", Some(owner_ref("ReplicaSet", "web-7d"))));
    inventory.upsert_pod(pod("web-2", "10.0.0.2", Some(owner_ref("ReplicaSet", "web-7d"))));
    assert_eq!(root(&inventory, "web-1"), pair("ReplicaSet", "web-7d"));
    inventory.upsert_owner(owner("ReplicaSet", "web-7d", Some(owner_ref("Deployment", "web"))));
    assert_eq!(root(&inventory, "web-1"), pair("Deployment", "web"));
    assert_eq!(root(&inventory, "web-2"), pair("Deployment", "web"));
    assert!(inventory.remove_owner("shop", "ReplicaSet", "web-7d"));
    assert_eq!(root(&inventory, "web-1"), pair("ReplicaSet", "web-7d"));
    assert!(!inventory.remove_owner("shop", "ReplicaSet", "web-7d"));
}

#[test]
fn a_re_owned_replica_set_and_a_longer_chain_move_every_pod_below_them() {
    let mut inventory = Inventory::new();
    inventory.upsert_owner(owner("ReplicaSet", "api-1", Some(owner_ref("Deployment", "api"))));
    inventory.upsert_pod(pod("api-1-a", "10.0.0.1", Some(owner_ref("ReplicaSet", "api-1"))));
    assert_eq!(root(&inventory, "api-1-a"), pair("Deployment", "api"));
    // Adopted by a Rollout.
    inventory.upsert_owner(owner("ReplicaSet", "api-1", Some(owner_ref("Rollout", "api"))));
    assert_eq!(root(&inventory, "api-1-a"), pair("Rollout", "api"));
    // The Rollout itself gets an owner: the chain grows one link above the ReplicaSet.
    inventory.upsert_owner(owner("Rollout", "api", Some(owner_ref("Platform", "shop-api"))));
    assert_eq!(root(&inventory, "api-1-a"), pair("Platform", "shop-api"));
    inventory.remove_owner("shop", "Rollout", "api");
    assert_eq!(root(&inventory, "api-1-a"), pair("Rollout", "api"));
    // Owner slots that nothing refers to any more are freed.
    inventory.remove_pod("shop", "api-1-a");
    inventory.remove_owner("shop", "ReplicaSet", "api-1");
    assert_eq!(inventory.owners.slots_in_use(), 0);
}

#[test]
fn owner_cycles_end_within_the_hop_bound() {
    let mut inventory = Inventory::new();
    inventory.upsert_owner(owner("A", "x", Some(owner_ref("B", "y"))));
    inventory.upsert_owner(owner("B", "y", Some(owner_ref("A", "x"))));
    inventory.upsert_owner(owner("C", "self", Some(owner_ref("C", "self"))));
    inventory.upsert_pod(pod("p", "10.0.0.1", Some(owner_ref("A", "x"))));
    inventory.upsert_pod(pod("q", "10.0.0.2", Some(owner_ref("C", "self"))));
    assert_eq!(root(&inventory, "p"), walked_root(&inventory, "p"));
    assert_eq!(root(&inventory, "q"), pair("C", "self"));
    assert!(inventory.remove_owner("shop", "C", "self"));
    inventory.remove_pod("shop", "q");
    inventory.remove_owner("shop", "A", "x");
    assert_eq!(root(&inventory, "p"), pair("A", "x"));
}

#[test]
fn endpoints_may_name_pods_before_they_exist_and_after_they_are_gone() {
    let mut inventory = Inventory::new();
    let endpoint = |pod: &str, host: Option<&str>| EndpointRecord {
        addresses: Vec::new(),
        pod: Some(Arc::from(pod)),
        hostname: host.map(Arc::from),
        ..EndpointRecord::default()
    };
    let slice = |name: &str, endpoints| SliceRecord {
        namespace: Arc::from("shop"),
        name: Arc::from(name),
        service: Some(Arc::from("db")),
        endpoints,
        ports: Vec::new(),
    };
    inventory.upsert_slice(slice("db-b", vec![endpoint("db-1", Some("db-1"))]));
    inventory.upsert_slice(slice("db-a", vec![endpoint("db-0", Some("db-0"))]));
    assert!(inventory.service("shop", "db").is_none(), "a slice does not make its service exist");
    inventory.upsert_service(ServiceRecord {
        namespace: Arc::from("shop"),
        name: Arc::from("db"),
        cluster_ips: vec!["10.96.0.5".parse().unwrap()],
        external_name: false,
        ports: Vec::new(),
    });
    let backing = |inventory: &Inventory| -> Vec<String> {
        let service = inventory.service_with_ip(&"10.96.0.5".parse().unwrap()).unwrap();
        inventory.backing_pods(service).map(|(host, pod)| format!("{}={}", host.unwrap(), pod.record().name)).collect()
    };
    assert!(backing(&inventory).is_empty());
    inventory.upsert_pod(pod("db-1", "10.0.0.2", None));
    inventory.upsert_pod(pod("db-0", "10.0.0.1", None));
    assert_eq!(backing(&inventory), ["db-0=db-0", "db-1=db-1"], "slice-name order");
    inventory.remove_pod("shop", "db-0");
    assert_eq!(backing(&inventory), ["db-1=db-1"]);
    inventory.upsert_slice(slice("db-b", vec![endpoint("db-2", Some("db-2")), endpoint("db-1", Some("db-1"))]));
    inventory.upsert_pod(pod("db-2", "10.0.0.3", None));
    assert_eq!(backing(&inventory), ["db-2=db-2", "db-1=db-1"]);
    assert!(inventory.remove_slice("shop", "db-a") && inventory.remove_slice("shop", "db-b"));
    assert!(backing(&inventory).is_empty());
    assert_eq!(inventory.pods.len(), 2, "only present pods keep their slots");
    assert!(inventory.remove_service("shop", "db"));
    assert_eq!(inventory.services.len(), 0);
}

#[test]
fn an_ip_held_by_several_pods_lists_them_all_until_one_moves_away() {
    let mut inventory = Inventory::new();
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let names = |inventory: &Inventory| -> Vec<String> {
        let mut names: Vec<String> = inventory.pods_with_ip(&ip).map(|p| p.record().name.to_string()).collect();
        names.sort();
        names
    };
    inventory.upsert_pod(pod("old", "10.0.0.1", None));
    inventory.upsert_pod(pod("new", "10.0.0.1", None));
    inventory.upsert_pod(pod("third", "10.0.0.1", None));
    assert_eq!(names(&inventory), ["new", "old", "third"]);
    inventory.upsert_pod(pod("third", "10.0.0.9", None));
    inventory.remove_pod("shop", "old");
    assert_eq!(names(&inventory), ["new"]);
    inventory.remove_pod("shop", "new");
    assert!(names(&inventory).is_empty());
    assert_eq!(inventory.pods_by_ip.claimed(), (1, 0));
}

/// The root the resolver used to compute: follow owner references through known owners, at most ten links.
fn walked_root(inventory: &Inventory, name: &str) -> Option<(String, String)> {
    let pod = inventory.pod("shop", name)?.record();
    let mut found = None;
    let mut next = pod.owner.clone();
    for _ in 0..10 {
        let Some(owner) = next else { break };
        next = inventory.owner("shop", &owner.kind, &owner.name).and_then(|o| o.owner.clone());
        found = Some((owner.kind.to_string(), owner.name.to_string()));
    }
    found
}

#[derive(Clone, Debug)]
enum Op {
    Pod { name: u8, ip: u8, owner: Option<(u8, u8)> },
    RemovePod(u8),
    Owner { kind: u8, name: u8, parent: Option<(u8, u8)> },
    RemoveOwner { kind: u8, name: u8 },
    Slice { name: u8, service: u8, pods: Vec<u8> },
    RemoveSlice(u8),
}

const KINDS: [&str; 3] = ["ReplicaSet", "Deployment", "Job"];

fn op() -> impl Strategy<Value = Op> {
    let owner = || proptest::option::of((0..3u8, 0..3u8));
    prop_oneof![
        (0..6u8, 0..3u8, owner()).prop_map(|(name, ip, owner)| Op::Pod { name, ip, owner }),
        (0..6u8).prop_map(Op::RemovePod),
        (0..3u8, 0..3u8, owner()).prop_map(|(kind, name, parent)| Op::Owner { kind, name, parent }),
        (0..3u8, 0..3u8).prop_map(|(kind, name)| Op::RemoveOwner { kind, name }),
        (0..3u8, 0..2u8, proptest::collection::vec(0..6u8, 0..4)).prop_map(|(name, service, pods)| Op::Slice {
            name,
            service,
            pods
        }),
        (0..3u8).prop_map(Op::RemoveSlice),
    ]
}

fn apply(inventory: &mut Inventory, slices: &mut BTreeMap<String, (String, Vec<String>)>, op: &Op) {
    let to_ref = |(k, n): (u8, u8)| owner_ref(KINDS[usize::from(k)], &format!("o{n}"));
    match op {
        Op::Pod { name, ip, owner } => {
            inventory.upsert_pod(pod(&format!("p{name}"), &format!("10.0.0.{ip}"), owner.map(to_ref)));
        }
        Op::RemovePod(name) => {
            inventory.remove_pod("shop", &format!("p{name}"));
        }
        Op::Owner { kind, name, parent } => {
            inventory.upsert_owner(owner(KINDS[usize::from(*kind)], &format!("o{name}"), parent.map(to_ref)));
        }
        Op::RemoveOwner { kind, name } => {
            inventory.remove_owner("shop", KINDS[usize::from(*kind)], &format!("o{name}"));
        }
        Op::Slice { name, service, pods } => {
            let pods: Vec<String> = pods.iter().map(|p| format!("p{p}")).collect();
            let endpoints = pods
                .iter()
                .map(|p| EndpointRecord { pod: Some(Arc::from(p.as_str())), ..EndpointRecord::default() })
                .collect();
            let (name, service) = (format!("x{name}"), format!("s{service}"));
            inventory.upsert_slice(SliceRecord {
                namespace: Arc::from("shop"),
                name: Arc::from(name.as_str()),
                service: Some(Arc::from(service.as_str())),
                endpoints,
                ports: Vec::new(),
            });
            slices.insert(name, (service, pods));
        }
        Op::RemoveSlice(name) => {
            inventory.remove_slice("shop", &format!("x{name}"));
            slices.remove(&format!("x{name}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn caches_match_the_records_after_any_update_order(ops in proptest::collection::vec(op(), 1..60)) {
        let mut inventory = Inventory::new();
        let mut slices = BTreeMap::new();
        for op in &ops {
            apply(&mut inventory, &mut slices, op);
            for name in (0..6).map(|p| format!("p{p}")) {
                prop_assert_eq!(root(&inventory, &name), walked_root(&inventory, &name), "{} after {:?}", name, op);
            }
            for ip in 0..3 {
                let ip: IpAddr = format!("10.0.0.{ip}").parse().unwrap();
                let mut indexed: Vec<_> = inventory.pods_with_ip(&ip).map(|p| p.record().name.to_string()).collect();
                let mut expected: Vec<_> = (0..6)
                    .filter_map(|p| inventory.pod("shop", &format!("p{p}")))
                    .filter(|p| p.record().ips.contains(&ip))
                    .map(|p| p.record().name.to_string())
                    .collect();
                indexed.sort();
                expected.sort();
                prop_assert_eq!(indexed, expected);
            }
            for service in ["s0", "s1"] {
                // Services are never upserted here, so read the backends through a present stand-in.
                let expected: Vec<String> = slices
                    .values()
                    .filter(|(s, _)| s == service)
                    .flat_map(|(_, pods)| pods.iter().filter(|p| inventory.pod("shop", p).is_some()).cloned())
                    .collect();
                let indexed: Vec<String> = inventory
                    .services
                    .find(super::Key { namespace: "shop", kind: "", name: service })
                    .map(|id| inventory.services.get(id))
                    .into_iter()
                    .flat_map(|s| inventory.backing_pods(s).map(|(_, p)| p.record().name.to_string()))
                    .collect();
                prop_assert_eq!(indexed, expected);
            }
        }
        // Once every object is gone, so is every slot that only references kept alive.
        for p in 0..6 {
            inventory.remove_pod("shop", &format!("p{p}"));
        }
        for (kind, name) in KINDS.iter().flat_map(|k| (0..3).map(move |n| (k, format!("o{n}")))) {
            inventory.remove_owner("shop", kind, &name);
        }
        for x in 0..3 {
            inventory.remove_slice("shop", &format!("x{x}"));
        }
        prop_assert_eq!(inventory.counts(), super::Counts::default());
        prop_assert_eq!((inventory.pods.len(), inventory.owners.slots_in_use(), inventory.services.len()), (0, 0, 0));
        prop_assert!(inventory.pods_by_ip.is_empty() && inventory.endpoint_ips.is_empty());
    }
}

fn service_record(name: &str, ip: &str, ports: Vec<ServicePort>) -> ServiceRecord {
    ServiceRecord {
        namespace: Arc::from("kube-system"),
        name: Arc::from(name),
        cluster_ips: vec![ip.parse().unwrap()],
        external_name: false,
        ports,
    }
}

fn service_port(name: &str, port: u16, tcp: bool, target: TargetPort) -> ServicePort {
    ServicePort { name: Arc::from(name), port, tcp, target }
}

fn slice_of(service: &str, name: &str, addresses: &[&str], ports: Vec<SlicePort>) -> SliceRecord {
    SliceRecord {
        namespace: Arc::from("kube-system"),
        name: Arc::from(name),
        service: Some(Arc::from(service)),
        endpoints: addresses
            .iter()
            .map(|a| EndpointRecord { addresses: vec![a.parse().unwrap()], ..EndpointRecord::default() })
            .collect(),
        ports,
    }
}

fn slice_port(name: &str, port: u16, tcp: bool) -> SlicePort {
    SlicePort { name: Arc::from(name), port, tcp }
}

#[test]
fn backends_of_a_service_exposing_port_53_are_dns_servers_whichever_arrives_first() {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut inventory = Inventory::new();
    // Service port 53 with a named target port 5353: the slice alone does not say DNS, its Service does.
    inventory.upsert_slice(slice_of(
        "dns-default",
        "dns-default-x",
        &["10.0.0.53"],
        vec![slice_port("dns", 5353, false)],
    ));
    assert!(!inventory.is_dns_server(&ip("10.0.0.53")));
    let dns_port = service_port("dns", 53, false, TargetPort::Name(Arc::from("dns")));
    inventory.upsert_service(service_record("dns-default", "10.96.0.10", vec![dns_port]));
    assert!(inventory.is_dns_server(&ip("10.0.0.53")), "a backend");
    assert!(inventory.is_dns_server(&ip("10.96.0.10")), "the ClusterIP");
    // A slice exposing 53 before its Service exists (the CoreDNS layout, ports dns/dns-tcp/metrics).
    let ports = vec![slice_port("dns", 53, false), slice_port("dns-tcp", 53, true), slice_port("metrics", 9153, true)];
    inventory.upsert_slice(slice_of("kube-dns", "kube-dns-y", &["10.0.0.10", "10.0.0.11"], ports));
    assert!(inventory.is_dns_server(&ip("10.0.0.11")));
    // An ordinary Service's backends are not; a backend that leaves the slice is no longer one.
    inventory.upsert_slice(slice_of("web", "web-z", &["10.0.0.80"], vec![slice_port("http", 8080, true)]));
    assert!(!inventory.is_dns_server(&ip("10.0.0.80")));
    inventory.remove_service("kube-system", "dns-default");
    assert!(!inventory.is_dns_server(&ip("10.0.0.53")), "the slice of 5353 alone is not DNS");
    assert!(inventory.remove_slice("kube-system", "kube-dns-y"));
    assert!(!inventory.is_dns_server(&ip("10.0.0.11")));
}

#[test]
fn a_clusterip_port_maps_to_the_target_port_on_the_pods() {
    let mut inventory = Inventory::new();
    let ports = vec![
        service_port("http", 80, true, TargetPort::Name(Arc::from("web"))),
        service_port("admin", 9000, true, TargetPort::Number(9090)),
        service_port("dns", 53, false, TargetPort::Number(53)),
    ];
    inventory.upsert_service(service_record("web", "10.96.0.20", ports));
    let target = |inventory: &Inventory, port| {
        inventory.service_with_ip(&"10.96.0.20".parse().unwrap()).unwrap().target_port(port)
    };
    assert_eq!(target(&inventory, 80), None, "a named target port waits for the slice");
    assert_eq!(target(&inventory, 9000), Some(9090));
    assert_eq!(target(&inventory, 53), None, "UDP only");
    assert_eq!(target(&inventory, 81), None);
    let slice =
        slice_of("web", "web-a", &["10.0.0.80"], vec![slice_port("http", 8080, true), slice_port("admin", 9090, true)]);
    inventory.upsert_slice(slice);
    assert_eq!(target(&inventory, 80), Some(8080), "named target port resolved in the slice");
}

#[test]
fn the_watched_node_hears_every_change_its_filter_reads_and_no_other_nodes() {
    use crate::sources::inventory::NodeRecord;
    use std::sync::atomic::{AtomicU64, Ordering};
    let heard = Arc::new(AtomicU64::new(0));
    let mut inventory = Inventory::new();
    let counter = heard.clone();
    inventory.watch_node("node-a", move || {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let heard_now = || heard.load(Ordering::Relaxed);
    let on = |name: &str, ip: &str, node: &str| PodRecord { node_name: Some(Arc::from(node)), ..pod(name, ip, None) };
    let cidrs = |node: &str| NodeRecord { name: Arc::from(node), pod_cidrs: vec!["10.0.0.0/24".parse().unwrap()] };
    inventory.upsert_pod(on("web-1", "10.0.0.1", "node-a"));
    assert!(inventory.remove_pod("shop", "web-1"));
    inventory.upsert_node(cidrs("node-a"));
    assert!(inventory.remove_node("node-a"));
    inventory.upsert_slice(slice_of("kube-dns", "kube-dns-y", &["10.0.0.10"], vec![slice_port("dns", 53, false)]));
    assert_eq!(heard_now(), 5, "a pod in and out, the node's CIDRs in and out, a new DNS server");
    assert_eq!(heard_now(), inventory.node_changes(), "what the filter compares is what the listener hears");

    inventory.upsert_pod(on("api-1", "10.0.1.1", "node-b"));
    assert!(inventory.remove_pod("shop", "api-1"));
    inventory.upsert_node(cidrs("node-b"));
    inventory.upsert_slice(slice_of("web", "web-z", &["10.0.0.80"], vec![slice_port("http", 8080, true)]));
    assert_eq!(heard_now(), 5, "another node's pods and CIDRs, an ordinary Service's backends: nothing to hear");
    inventory.upsert_pod(on("api-2", "10.0.1.2", "node-b"));
    inventory.upsert_pod(on("api-2", "10.0.0.2", "node-a"));
    inventory.upsert_pod(on("api-2", "10.0.1.2", "node-b"));
    assert_eq!(heard_now(), 7, "a pod that comes to the node and leaves it");
    assert_eq!(heard_now(), inventory.node_changes());
}
