//! A node's agent lists only its own pods and fetches the rest on request (docs/design.md §7). The map must stay
//! exactly as true as with every pod known: for every client on the node and every server the fixture names (by
//! Service name, per-pod name, pod name, ClusterIP or pod IP), resolving against the node's inventory and
//! answering its fetches from the whole cluster gives the same result as resolving against the whole cluster.
//! Fetches that fail or find nothing are never a guessed name.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use network_mapper::IpNet;
use network_mapper::resolve::{Edge, Reason, Resolution, ResolveConfig, Resolver, Server, Side};
use network_mapper::sources::inventory::{
    Fetching, Inventory, OwnerRecord, PodRecord, Unfetched, Wanted, parse_inventory,
};
use serde_json::Value;

const CLUSTER: &str = "tests/fixtures/inventory/cluster.yaml";
/// 2026-03-01T00:00:00Z: after every fixture pod's creation but `newcomer`'s.
const MARCH: i64 = 1_772_323_200 * 1_000_000;
const NODE: &str = "node-a";

/// The fixture's objects.
fn objects() -> Vec<Value> {
    let list: Value = serde_yaml::from_str(&std::fs::read_to_string(CLUSTER).unwrap()).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn list_of(items: Vec<Value>) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// What a node's agent holds before any fetch: its own pods, every Service and EndpointSlice.
fn node_inventory(objects: &[Value]) -> Inventory {
    let own = |o: &&Value| match kind(o) {
        "Pod" => o["spec"]["nodeName"] == NODE,
        "Service" | "EndpointSlice" => true,
        _ => false,
    };
    let mut inventory = parse_inventory(&list_of(objects.iter().filter(own).cloned().collect())).unwrap();
    inventory.track_owner_kinds(&["ReplicaSet", "Job"]);
    inventory.set_fetching(Fetching { pods: true, pod_networks: IpNet::private(), owners: true });
    inventory
}

/// Answers one fetch from the whole cluster, as the API server would.
fn answer(inventory: &mut Inventory, objects: &[Value], wanted: &Wanted) {
    let meta = |o: &Value| serde_json::from_value::<ObjectMeta>(o["metadata"].clone()).unwrap();
    let named = |o: &Value, ns: &str, name: &str| o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name;
    let pod = |o: &Value| {
        let pod: Pod = serde_json::from_value(o.clone()).unwrap();
        (PodRecord::from_pod(&pod).unwrap(), pod.metadata.uid.map(|u| Arc::from(u.as_str())))
    };
    match wanted {
        Wanted::Pod { namespace, name } => match objects.iter().find(|o| kind(o) == "Pod" && named(o, namespace, name))
        {
            Some(found) => {
                let (record, uid) = pod(found);
                inventory.upsert_fetched_pod(record, uid, None);
            }
            None => inventory.record_unfetched(wanted.clone(), Unfetched::Missing, i64::MAX),
        },
        Wanted::PodAt(ip) => {
            let at_ip = |o: &&Value| kind(o) == "Pod" && o["status"]["podIP"] == ip.to_string();
            let found: Vec<&Value> = objects.iter().filter(at_ip).collect();
            if found.is_empty() {
                inventory.record_unfetched(wanted.clone(), Unfetched::Missing, i64::MAX);
            }
            for o in found {
                let (record, uid) = pod(o);
                inventory.upsert_fetched_pod(record, uid, Some(MARCH));
            }
        }
        Wanted::Owner { namespace, kind: k, name } => {
            match objects.iter().find(|o| kind(o) == &**k && named(o, namespace, name)) {
                Some(found) => inventory.upsert_fetched_owner(OwnerRecord::from_meta(k, &meta(found)).unwrap()),
                None => inventory.record_unfetched(wanted.clone(), Unfetched::Missing, i64::MAX),
            }
        }
    }
}

/// Resolves `observe` against `inventory`, answering its fetches from `objects` until it needs none; returns the
/// result and the fetches made.
fn with_fetches(
    inventory: &mut Inventory,
    objects: &[Value],
    observe: impl Fn(&Resolver<'_>) -> Resolution,
) -> (Resolution, Vec<Wanted>) {
    let config = config();
    let mut fetched = Vec::new();
    loop {
        let resolution = observe(&Resolver::new(inventory, &config));
        match resolution {
            Resolution::Fetch(_, wanted) => {
                assert!(!fetched.contains(&wanted), "{wanted:?} fetched twice");
                answer(inventory, objects, &wanted);
                fetched.push(wanted);
            }
            done => return (done, fetched),
        }
    }
}

fn config() -> ResolveConfig {
    ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some(NODE.into()) }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Every way the fixture names a server: Service names, per-pod names of headless Services, pod names, and
/// the addresses of pods and Services (connections), plus names and addresses outside the cluster.
fn servers(objects: &[Value]) -> (Vec<String>, Vec<IpAddr>) {
    let mut names = vec!["api.example.com".to_owned(), "kubernetes.default.svc.cluster.local".to_owned()];
    let mut addresses: BTreeSet<IpAddr> = [ip("203.0.113.9"), ip("10.9.9.9"), ip("192.168.50.10")].into();
    for o in objects {
        let (ns, name) = (o["metadata"]["namespace"].as_str().unwrap_or(""), o["metadata"]["name"].as_str().unwrap());
        match kind(o) {
            "Service" => {
                names.push(format!("{name}.{ns}.svc.cluster.local"));
                addresses.extend(o["spec"]["clusterIP"].as_str().and_then(|a| a.parse::<IpAddr>().ok()));
            }
            "EndpointSlice" => {
                let service = o["metadata"]["labels"]["kubernetes.io/service-name"].as_str().unwrap_or("");
                for host in o["endpoints"].as_array().into_iter().flatten().filter_map(|e| e["hostname"].as_str()) {
                    names.push(format!("{host}.{service}.{ns}.svc.cluster.local"));
                }
            }
            "Pod" => {
                if let Some(pod_ip) = o["status"]["podIP"].as_str() {
                    names.push(format!("{}.{ns}.pod.cluster.local", pod_ip.replace('.', "-")));
                    addresses.insert(ip(pod_ip));
                }
            }
            _ => {}
        }
    }
    (names, addresses.into_iter().collect())
}

fn node_pods(objects: &[Value]) -> Vec<IpAddr> {
    let on_node = |o: &&Value| kind(o) == "Pod" && o["spec"]["nodeName"] == NODE && o["spec"]["hostNetwork"] != true;
    objects.iter().filter(on_node).filter_map(|o| o["status"]["podIP"].as_str()).map(ip).collect()
}

#[test]
fn fetching_on_request_names_every_server_as_knowing_every_pod_does() {
    let objects = objects();
    let whole = parse_inventory(&list_of(objects.clone())).unwrap();
    let (names, addresses) = servers(&objects);
    let (mut compared, mut fetches) = (0, 0);
    for client in node_pods(&objects) {
        // One agent per client: what it fetched for one server stays, as in a running agent.
        let mut node = node_inventory(&objects);
        for name in &names {
            let answers = [ip("10.96.0.20")];
            let expected = Resolver::new(&whole, &config()).dns_answer(client, name, &answers, MARCH);
            let (got, fetched) = with_fetches(&mut node, &objects, |r| r.dns_answer(client, name, &answers, MARCH));
            assert_eq!(got, expected, "{client} asks for {name} (fetched {fetched:?})");
            (compared, fetches) = (compared + 1, fetches + fetched.len());
        }
        for server in &addresses {
            let expected = Resolver::new(&whole, &config()).connection(client, *server, MARCH);
            let (got, fetched) = with_fetches(&mut node, &objects, |r| r.connection(client, *server, MARCH));
            assert_eq!(got, expected, "{client} connects to {server} (fetched {fetched:?})");
            (compared, fetches) = (compared + 1, fetches + fetched.len());
        }
    }
    assert!(compared > 200 && fetches > 40, "{compared} observations compared, {fetches} fetches");
}

#[test]
fn a_failed_fetch_leaves_the_server_unresolved_and_a_missing_backend_leaves_the_service() {
    let objects = objects();
    let checkout = ip("10.0.1.10");
    let cart = "cart.shop.svc.cluster.local";
    let mut node = node_inventory(&objects);
    let first = Resolver::new(&node, &config()).dns_answer(checkout, cart, &[], MARCH);
    let Resolution::Fetch(Side::Client, Wanted::Owner { .. }) = first else {
        panic!("the client's owner first: {first:?}")
    };
    // The client's ReplicaSet arrives; the Service's backing pod on node-b cannot be fetched.
    let owner = |name: &str| Wanted::Owner { namespace: "shop".into(), kind: "ReplicaSet".into(), name: name.into() };
    answer(&mut node, &objects, &owner("checkout-7d9f"));
    let backing = Wanted::Pod { namespace: "shop".into(), name: "cart-5c6b-xyz12".into() };
    assert_eq!(
        Resolver::new(&node, &config()).dns_answer(checkout, cart, &[], MARCH),
        Resolution::Fetch(Side::Server, backing.clone())
    );
    node.record_unfetched(backing.clone(), Unfetched::Failed, MARCH + 1);
    let failed = Resolver::new(&node, &config()).dns_answer(checkout, cart, &[], MARCH);
    assert_eq!(
        failed,
        Resolution::Fetch(Side::Server, backing.clone()),
        "a failed fetch keeps the answer waiting for the pod (the fetcher asks again once the failure stops \
         holding), never the Service's name instead"
    );
    // A backing pod the API does not have (deleted meanwhile) leaves the Service as its own server, as with no
    // backing pods at all.
    node.record_unfetched(backing, Unfetched::Missing, i64::MAX);
    let resolution = Resolver::new(&node, &config()).dns_answer(checkout, cart, &[], MARCH);
    let Resolution::Edge(Edge { server: Server::Workload(server), .. }) = resolution else { panic!("{resolution:?}") };
    assert_eq!((&*server.name, &*server.kind), ("cart", "Service"));
}

#[test]
fn clients_named_by_endpoints_on_other_nodes_are_other_nodes_answers() {
    let objects = objects();
    let node = node_inventory(&objects);
    // cart-5c6b-xyz12 (node-b) is known only by its endpoint.
    let resolution = Resolver::new(&node, &config()).dns_answer(ip("10.0.1.20"), "api.example.com", &[], MARCH);
    assert_eq!(resolution, Resolution::OtherNode);
    let unknown = Resolver::new(&node, &config()).dns_answer(ip("10.9.9.9"), "api.example.com", &[], MARCH);
    assert_eq!(unknown, Resolution::Unresolved(Side::Client, Reason::UnknownIp), "no pod, no endpoint");
}
