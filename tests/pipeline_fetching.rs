//! Observations that need a remote pod the node's agent does not list (docs/design.md §7), through the real
//! pipeline: the DNS answer or connection waits while the pod is fetched, and is counted once it arrives; a failed
//! or late fetch is counted unresolved (`fetch_failed`), never under a guessed name; a full fetch queue is counted
//! as refused at once.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use network_mapper::IpNet;
use network_mapper::exporter::metrics::{DnsOutcome, Enabled, LabelValue, Limits, Metrics, Outcome};
use network_mapper::exporter::pipeline::{DnsPipeline, FETCH_WAIT_MICROS, RETRY_MICROS, Recorder, SharedInventory};
use network_mapper::exporter::server::{Exposition, encode_metrics};
use network_mapper::resolve::ResolveConfig;
use network_mapper::sources::capture::frame::LinkType;
use network_mapper::sources::inventory::{
    FetchQueue, FetchRequests, Fetching, Inventory, PodRecord, Unfetched, Wanted, parse_inventory,
};
use prometheus_client::registry::Registry;
use testkit::packets::{self as synth, Record};

/// 2026-03-01T00:00:00Z.
const AT: i64 = 1_772_323_200_000_000;

/// web on this node (node-a); Services cart and db whose endpoints name pods on node-b, which the agent does not
/// list.
const CLUSTER: &str = "apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: web, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'},
   spec: {nodeName: node-a, containers: [{name: c, image: x}]}, status: {phase: Running, podIP: 10.0.1.10}}
- {apiVersion: v1, kind: Service, metadata: {name: cart, namespace: shop},
   spec: {clusterIP: 10.96.0.20, ports: [{port: 80, targetPort: 8080}]}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
   metadata: {name: cart-x, namespace: shop, labels: {kubernetes.io/service-name: cart}},
   endpoints: [{addresses: [10.0.2.20], nodeName: node-b, targetRef: {kind: Pod, name: cart-1, namespace: shop}}]}
- {apiVersion: v1, kind: Service, metadata: {name: db, namespace: shop}, spec: {clusterIP: 10.96.0.30}}
- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, addressType: IPv4,
   metadata: {name: db-x, namespace: shop, labels: {kubernetes.io/service-name: db}},
   endpoints: [{addresses: [10.0.2.30], nodeName: node-b, targetRef: {kind: Pod, name: db-0, namespace: shop}}]}
";

struct Harness {
    inventory: SharedInventory,
    recorder: Recorder,
    pipeline: DnsPipeline,
    requests: FetchRequests,
    metrics: Metrics,
    registry: Registry,
}

impl Harness {
    fn new(queue_capacity: usize) -> Harness {
        let mut inventory: Inventory = parse_inventory(CLUSTER).unwrap();
        inventory.set_fetching(Fetching { pods: true, pod_networks: IpNet::private(), owners: true });
        let (metrics, registry) = Metrics::new(Limits::default(), Enabled { capture: true, ..Enabled::default() });
        let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some("node-a".into()) };
        let inventory = Arc::new(RwLock::new(inventory));
        let (queue, requests) = FetchQueue::new(queue_capacity);
        let recorder = Recorder::new(inventory.clone(), Arc::new(config), metrics.clone()).with_fetches(queue);
        let pipeline = DnsPipeline::new(recorder.clone());
        Harness { inventory, recorder, pipeline, requests, metrics, registry }
    }

    /// An answer from CoreDNS to web for `name`.
    fn answer(&mut self, id: u16, name: &str) {
        let dns: SocketAddr = "10.0.0.53:53".parse().unwrap();
        let web: SocketAddr = "10.0.1.10:40000".parse().unwrap();
        let payload = synth::response(id, name, &[Record::A(name, "10.96.0.20".parse().unwrap())]);
        let packet = synth::udp_packet(dns, web, &payload);
        self.pipeline.process_frame(LinkType::LinuxSll2, AT, &synth::frame(LinkType::LinuxSll2.linktype(), &packet));
    }

    /// What the fetch worker was asked for, in order.
    fn requested(&mut self) -> Vec<Wanted> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let mut asked = Vec::new();
        while let Ok(Some(wanted)) = runtime
            .block_on(async { tokio::time::timeout(std::time::Duration::from_millis(10), self.requests.next()).await })
        {
            asked.push(wanted);
        }
        asked
    }

    fn dns(&self, outcome: &str) -> u64 {
        let outcome = DnsOutcome::from_metric_label(outcome).unwrap();
        self.metrics.dns_responses.get_or_create(&Outcome(outcome)).get()
    }

    fn scrape(&self) -> String {
        encode_metrics(&self.registry, Exposition::Classic)
    }

    fn fetched(&self, pod: &str, ip: &str) {
        let record = PodRecord {
            ips: vec![ip.parse().unwrap()],
            node_name: Some("node-b".into()),
            ..PodRecord::bare("shop".into(), pod.into())
        };
        self.inventory.write().unwrap().upsert_fetched_pod(record, None, None);
    }
}

fn pod(name: &str) -> Wanted {
    Wanted::Pod { namespace: "shop".into(), name: name.into() }
}

#[test]
fn an_answer_waits_for_its_remote_pod_and_counts_once_it_is_fetched() {
    let mut h = Harness::new(16);
    h.answer(1, "cart.shop.svc.cluster.local");
    h.answer(2, "cart.shop.svc.cluster.local");
    assert_eq!(h.requested(), [pod("cart-1")], "asked for once, however many answers wait");
    assert_eq!((h.dns("counted"), h.recorder.pending()), (0, 2));
    assert!(h.scrape().contains("network_mapper_observations_pending 2"));
    h.fetched("cart-1", "10.0.2.20");
    h.recorder.retry_pending(AT + 1_000_000, false);
    assert_eq!((h.dns("counted"), h.recorder.pending()), (2, 0));
    let edge = r#"network_mapper_edge_total{client="web",namespace="shop",server="cart-1",server_namespace="shop"} 2"#;
    assert!(h.scrape().contains(edge), "{}", h.scrape());
}

#[test]
fn a_failed_or_late_fetch_is_unresolved_never_the_services_name() {
    let mut h = Harness::new(16);
    h.answer(1, "cart.shop.svc.cluster.local");
    h.answer(2, "db.shop.svc.cluster.local");
    assert_eq!(h.requested(), [pod("cart-1"), pod("db-0")]);
    h.inventory.write().unwrap().record_unfetched(pod("cart-1"), Unfetched::Failed, AT + 10_000_000);
    h.recorder.retry_pending(AT + 1_000_000, false);
    assert_eq!((h.dns("unresolved"), h.recorder.pending()), (0, 2), "a failed fetch (an API outage) still waits");
    h.recorder.retry_pending(AT + 1_000_000 + RETRY_MICROS, false);
    assert_eq!(h.recorder.pending(), 2, "a fetch is waited for longer than a client pod");
    h.recorder.retry_pending(AT + 1_000_000 + FETCH_WAIT_MICROS, false);
    assert_eq!((h.dns("unresolved"), h.dns("counted"), h.recorder.pending()), (2, 0, 0), "both waited too long");
    let failed = r#"network_mapper_unresolved_total{source="dns",side="server",reason="fetch_failed"} 2"#;
    assert!(h.scrape().contains(failed), "{}", h.scrape());
    assert!(!h.scrape().contains("server=\"cart\""), "the Service is no stand-in for its pods");
}

#[test]
fn a_full_fetch_queue_counts_the_answer_at_once_and_the_refusal() {
    let mut h = Harness::new(1);
    h.answer(1, "cart.shop.svc.cluster.local");
    h.answer(2, "db.shop.svc.cluster.local");
    assert_eq!((h.dns("unresolved"), h.recorder.pending()), (1, 1));
    assert!(h.scrape().contains(r#"network_mapper_inventory_fetches_total{kind="Pod",result="refused"} 1"#));
    assert_eq!(h.requested(), [pod("cart-1")]);
}
