//! The live inventory against the fake API server (`testkit::fake_apiserver`), in process: the watches fill the
//! same index as `--inventory-file`, follow changes, and survive every kind of API failure.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use network_mapper::IpNet;
use network_mapper::exporter::metrics::{Enabled, InventoryReport, Limits, Metrics};
use network_mapper::exporter::server::{Exposition, Readiness, encode_metrics};
use network_mapper::resolve::{Edge, Resolution, ResolveConfig, Resolver, Server};
use network_mapper::sources::inventory::{self, FetchQueue, Inventory};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use testkit::fake_apiserver::{FakeApi, Verb};
use testkit::k8s::Pod;

const CLUSTER: &str = "tests/fixtures/inventory/cluster.yaml";
/// 2026-03-01T00:00:00Z: after every fixture pod's creation but `newcomer`'s.
const MARCH: i64 = 1_772_323_200 * 1_000_000;
/// Failures back off (0.8 s, 1.6 s, … with jitter), so recoveries get a generous deadline.
const DEADLINE: Duration = Duration::from_secs(40);

/// The watches of one test, over their own fake API server.
struct Live {
    api: FakeApi,
    inventory: Arc<RwLock<Inventory>>,
    registry: Registry,
    readiness: Readiness,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where resolution asks for fetches, for an agent that fetches.
    fetches: Option<FetchQueue>,
    _dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Starts the watches of an agent that counts every client, through a kubeconfig file as a user would.
fn start(api: FakeApi) -> Live {
    start_with(api, None)
}

/// Starts the watches of `node`'s agent (`None`: every client), as the client `agent` of the fake API.
fn start_with(api: FakeApi, node: Option<&str>) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig_as(dir.path(), AGENT);
    let (metrics, registry) = Metrics::new(
        Limits { max_edges: 100, max_external_names: 10 },
        Enabled { api_inventory: true, ..Enabled::default() },
    );
    let readiness = Readiness::default();
    let status = InventoryReport::watch_status(&metrics, readiness.clone());
    let config = inventory::client_config(Some(&kubeconfig)).expect("kubeconfig is valid");
    let client = inventory::client(config, &status).expect("client");
    let inventory = Arc::new(RwLock::new(Inventory::new()));
    let plan = inventory::Plan {
        node: node.map(str::to_owned),
        fetch_remote: true,
        pod_networks: IpNet::private(),
        start_window: Duration::ZERO,
    };
    let started = inventory::spawn(client, inventory.clone(), status, &plan);
    Live { api, inventory, registry, readiness, tasks: started.tasks, fetches: started.fetches, _dir: dir }
}

fn cluster() -> FakeApi {
    FakeApi::with_yaml(&std::fs::read_to_string(CLUSTER).unwrap())
}

impl Live {
    async fn until(&self, what: &str, condition: impl Fn(&Live) -> bool) {
        let started = std::time::Instant::now();
        while !condition(self) {
            assert!(started.elapsed() < DEADLINE, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn synced(&self) {
        self.until("every watch synced", |l| l.readiness.is_ready()).await;
    }

    /// The workload a client IP resolves to at `at`, as `name.ns(Kind)`, or the reason it does not.
    fn client(&self, ip: &str, at: i64) -> String {
        let inventory = self.inventory.read().unwrap();
        show(Resolver::new(&inventory, &config()).dns_answer(ip.parse().unwrap(), "example.com", &[], at))
    }

    /// A metric sample, e.g. `network_mapper_inventory_objects{kind="Pod"}`.
    fn metric(&self, series: &str) -> f64 {
        let text = encode_metrics(&self.registry, Exposition::Classic);
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    /// Lists of `kind` the agent started (first pages and streaming lists).
    fn lists_of(&self, kind: &str) -> usize {
        self.api.stats().client(AGENT).requests.iter().filter(|r| r.kind == kind && r.starts_list()).count()
    }

    /// A family's sum over the kinds an agent that counts every client watches.
    fn total(&self, family: &str) -> f64 {
        let kinds = ["Pod", "Service", "EndpointSlice", "ReplicaSet", "Job"];
        kinds.iter().map(|k| self.metric(&format!("{family}{{kind=\"{k}\"}}"))).sum()
    }

    /// Resolves a DNS answer as `node`'s agent, asking for and waiting on every fetch it needs.
    async fn resolve_fetching(&self, node: &str, client: &str, name: &str) -> Resolution {
        let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: Some(node.into()) };
        let started = std::time::Instant::now();
        loop {
            let resolution = {
                let inventory = self.inventory.read().unwrap();
                Resolver::new(&inventory, &config).dns_answer(client.parse().unwrap(), name, &[], MARCH)
            };
            let Resolution::Fetch(_, wanted) = resolution else { return resolution };
            self.fetches.as_ref().expect("the agent fetches").request(&wanted);
            assert!(started.elapsed() < DEADLINE, "timed out fetching {wanted:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The client name the agent's requests carry on the fake API.
const AGENT: &str = "agent";

fn config() -> ResolveConfig {
    ResolveConfig { cluster_domain: "cluster.local".into(), node_name: None }
}

fn show(resolution: Resolution) -> String {
    match resolution {
        Resolution::Edge(edge) => format!("{}.{}({})", edge.client.name, edge.client.namespace, edge.client.kind),
        Resolution::OtherNode => "other_node".into(),
        Resolution::Unresolved(side, reason) => format!("{}:{}", side.metric_label(), reason.metric_label()),
        Resolution::Fetch(side, wanted) => format!("{}:fetch {wanted:?}", side.metric_label()),
    }
}

/// The server side of a resolution: `name.ns(Kind)`, or the reason.
fn show_server(resolution: Resolution) -> String {
    match resolution {
        Resolution::Edge(Edge { server: Server::Workload(w), .. }) => format!("{}.{}({})", w.name, w.namespace, w.kind),
        Resolution::Edge(Edge { server: Server::External(name), .. }) => name.to_string(),
        other => show(other),
    }
}

/// A pod of ReplicaSet `owner` in `shop`.
fn pod(name: &str, ip: &str, owner: &str, created: &str) -> Value {
    Pod::new("shop", name, ip)
        .owner("ReplicaSet", owner)
        .created(created)
        .with(json!({"metadata": {"managedFields": [{"manager": "kubelet", "operation": "Update"}],
                                  "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}))
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_gives_the_same_identities_as_the_inventory_file() {
    let live = start(cluster());
    live.synced().await;
    let file = inventory::load_file(std::path::Path::new(CLUSTER)).unwrap();
    let cfg = config();
    let names = [
        "cart.shop.svc.cluster.local",
        "redis-1.redis.shop.svc.cluster.local",
        "legacy.shop.svc.cluster.local",
        "payments-gw.shop.svc.cluster.local",
        "kubernetes.default.svc.cluster.local",
        "invoices.billing.svc.cluster.local",
        "web.shop.svc.cluster.local",
        "10-0-1-60.shop.pod.cluster.local",
        "example.com",
    ];
    let ips: Vec<IpAddr> = [
        "10.0.1.10",
        "10.0.1.20",
        "10.0.1.30",
        "10.0.1.31",
        "10.0.1.40",
        "10.0.1.41",
        "10.0.1.50",
        "10.0.1.51",
        "10.0.1.52",
        "10.0.1.53",
        "10.0.1.60",
        "10.0.1.70",
        "192.168.50.10",
        "10.0.1.80",
        "10.0.1.90",
        "10.0.1.91",
        "10.0.1.92",
        "10.0.2.10",
        "10.96.0.20",
        "10.96.0.99",
        "10.9.9.9",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let live_inventory = live.inventory.read().unwrap();
    let (from_api, from_file) = (Resolver::new(&live_inventory, &cfg), Resolver::new(&file, &cfg));
    for client in &ips {
        for name in names {
            assert_eq!(from_api.dns_answer(*client, name, &[], MARCH), from_file.dns_answer(*client, name, &[], MARCH));
        }
        for server in &ips {
            assert_eq!(from_api.connection(*client, *server, MARCH), from_file.connection(*client, *server, MARCH));
        }
    }
    drop(live_inventory);
    assert_eq!(live.client("10.0.1.10", MARCH), "checkout.shop(Deployment)");
    assert_eq!(live.client("10.0.1.40", MARCH), "report.shop(CronJob)");
    assert_eq!(live.client("10.0.1.50", MARCH), "web.shop(Rollout)");
    assert_eq!(live.client("10.0.1.80", MARCH), "client:terminating");
    let counts = file.counts();
    assert_eq!(live.metric(r#"network_mapper_inventory_objects{kind="Pod"}"#), counts.pods as f64);
    assert_eq!(live.metric(r#"network_mapper_inventory_objects{kind="Service"}"#), counts.services as f64);
    assert_eq!(live.metric(r#"network_mapper_inventory_objects{kind="EndpointSlice"}"#), counts.slices as f64);
    assert_eq!(live.metric(r#"network_mapper_inventory_objects{kind="ReplicaSet"}"#), fixture_kind_count("ReplicaSet"));
    assert_eq!(live.metric(r#"network_mapper_inventory_objects{kind="Job"}"#), fixture_kind_count("Job"));
    assert_eq!(live.total("network_mapper_inventory_synced"), 5.0);
    assert_eq!(live.total("network_mapper_inventory_watch_errors_total"), 0.0);
    assert_eq!(live.api.stats().quorum_reads(), 0, "every list is served from the watch cache");
    // Metadata-only kinds were asked for as PartialObjectMetadata: one list each, never a full object.
    assert_eq!(live.lists_of("ReplicaSet"), 1);
    let requests = live.api.requests();
    for path in ["/apis/apps/v1/replicasets", "/apis/batch/v1/jobs"] {
        assert!(requests.iter().filter(|r| r.starts_with(path)).all(|r| r.ends_with(" [metadata]")), "{requests:?}");
    }
    assert!(requests.iter().filter(|r| r.starts_with("/api/v1/pods")).all(|r| !r.ends_with(" [metadata]")));
}

/// How many objects of `kind` the inventory fixture lists.
fn fixture_kind_count(kind: &str) -> f64 {
    let list: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(CLUSTER).unwrap()).unwrap();
    let items = list["items"].as_sequence().unwrap();
    items.iter().filter(|item| item["kind"].as_str() == Some(kind)).count() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_added_changed_and_deleted_during_the_watch() {
    let live = start(cluster());
    live.synced().await;
    live.api.apply(pod("checkout-7d9f-new", "10.0.3.1", "checkout-7d9f", "2026-01-02T00:00:00Z"));
    live.until("new pod", |l| l.client("10.0.3.1", MARCH) == "checkout.shop(Deployment)").await;

    let mut terminating = pod("checkout-7d9f-new", "10.0.3.1", "checkout-7d9f", "2026-01-02T00:00:00Z");
    terminating["metadata"]["deletionTimestamp"] = json!("2026-03-01T00:00:00Z");
    live.api.apply(terminating);
    live.until("terminating pod", |l| l.client("10.0.3.1", MARCH) == "client:terminating").await;

    assert!(live.api.delete("Pod", "shop", "checkout-7d9f-new"));
    live.until("deleted pod", |l| l.client("10.0.3.1", MARCH) == "client:unknown_ip").await;
    live.until("count", |l| l.metric(r#"network_mapper_inventory_objects{kind="Pod"}"#) == fixture_kind_count("Pod"))
        .await;

    // A new ReplicaSet (metadata watch) joins the owner chain of its pods.
    live.api.apply(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "search-1a", "namespace": "shop", "ownerReferences":
            [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "search", "uid": "u-s", "controller": true}]}}));
    live.api.apply(pod("search-1a-x", "10.0.3.2", "search-1a", "2026-01-02T00:00:00Z"));
    live.until("owner chain", |l| l.client("10.0.3.2", MARCH) == "search.shop(Deployment)").await;
    assert_eq!(live.total("network_mapper_inventory_watch_errors_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_ip_belongs_to_the_new_pod_from_its_creation_on() {
    let live = start(cluster());
    live.synced().await;
    live.api.apply(pod("cart-5c6b-old", "10.0.3.5", "cart-5c6b", "2026-01-01T00:00:00Z"));
    live.until("old pod", |l| l.client("10.0.3.5", MARCH) == "cart.shop(Deployment)").await;

    live.api.delete("Pod", "shop", "cart-5c6b-old");
    live.api.apply(pod("checkout-7d9f-reuse", "10.0.3.5", "checkout-7d9f", "2026-06-01T00:00:00Z"));
    let july = MARCH + 122 * 86_400 * 1_000_000;
    live.until("new pod", |l| l.client("10.0.3.5", july) == "checkout.shop(Deployment)").await;
    assert_eq!(live.client("10.0.3.5", MARCH), "client:before_creation");

    // A pod whose IP changed no longer holds the old one.
    live.api.apply(pod("checkout-7d9f-reuse", "10.0.3.6", "checkout-7d9f", "2026-06-01T00:00:00Z"));
    live.until("moved IP", |l| l.client("10.0.3.6", july) == "checkout.shop(Deployment)").await;
    assert_eq!(live.client("10.0.3.5", july), "client:unknown_ip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500s_is_counted_retried_and_caught_up() {
    let api = cluster();
    api.fail_next_requests(7, 500);
    let live = start(api);
    live.synced().await;
    assert_eq!(live.total("network_mapper_inventory_watch_errors_total"), 7.0);
    assert_eq!(live.client("10.0.1.10", MARCH), "checkout.shop(Deployment)");

    // Mid-watch: the streams drop and the re-watches fail; a pod added meanwhile still arrives.
    live.api.fail_next_requests(5, 500);
    live.api.drop_watches();
    live.api.apply(pod("checkout-7d9f-late", "10.0.3.7", "checkout-7d9f", "2026-01-02T00:00:00Z"));
    live.until("late pod", |l| l.client("10.0.3.7", MARCH) == "checkout.shop(Deployment)").await;
    live.until("errors", |l| l.total("network_mapper_inventory_watch_errors_total") >= 12.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_forces_a_relist_that_drops_objects_deleted_meanwhile() {
    let live = start(cluster());
    live.synced().await;
    // An open watch told its history is gone relists.
    live.api.expire_watches();
    // At least: a watch that was being re-established when the history went may meet the 410 twice.
    live.until("relists", |l| l.total("network_mapper_inventory_relists_total") >= 5.0).await;
    live.until("second pod list", |l| l.lists_of("Pod") >= 2).await;

    // The API goes away; meanwhile a pod is deleted and the history compacted, so resuming is impossible.
    live.api.set_down(true);
    assert!(live.api.delete("Pod", "shop", "debug"));
    live.api.apply(pod("checkout-7d9f-new", "10.0.3.8", "checkout-7d9f", "2026-01-02T00:00:00Z"));
    live.api.compact();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(live.client("10.0.1.60", MARCH), "debug.shop(Pod)", "the last good index stays in use");
    live.api.set_down(false);
    live.until("deleted pod gone", |l| l.client("10.0.1.60", MARCH) == "client:unknown_ip").await;
    live.until("new pod", |l| l.client("10.0.3.8", MARCH) == "checkout.shop(Deployment)").await;
    live.until("synced", |l| l.metric(r#"network_mapper_inventory_synced{kind="Pod"}"#) == 1.0).await;
    assert!(live.metric(r#"network_mapper_inventory_relists_total{kind="Pod"}"#) >= 2.0);
    assert!(live.metric(r#"network_mapper_inventory_watch_errors_total{kind="Pod"}"#) >= 2.0);
    assert_eq!(live.client("10.0.1.10", MARCH), "checkout.shop(Deployment)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_stream_resumes_without_a_relist() {
    let live = start(cluster());
    live.synced().await;
    live.api.drop_watches();
    live.api.apply(pod("checkout-7d9f-after", "10.0.3.9", "checkout-7d9f", "2026-01-02T00:00:00Z"));
    live.until("pod after the drop", |l| l.client("10.0.3.9", MARCH) == "checkout.shop(Deployment)").await;
    live.until("restarts", |l| l.total("network_mapper_inventory_watch_restarts_total") >= 5.0).await;
    assert_eq!(live.total("network_mapper_inventory_relists_total"), 0.0);
    assert_eq!(live.lists_of("Pod"), 1, "resumed from the last version, not relisted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_at_start_up_becomes_ready_when_it_comes_back() {
    let api = cluster();
    api.set_down(true);
    let live = start(api);
    live.until("errors while down", |l| l.total("network_mapper_inventory_watch_errors_total") >= 5.0).await;
    assert!(!live.readiness.is_ready());
    assert_eq!(live.total("network_mapper_inventory_synced"), 0.0);
    live.api.set_down(false);
    live.synced().await;
    assert_eq!(live.client("10.0.1.10", MARCH), "checkout.shop(Deployment)");
}

#[test]
fn a_missing_kubeconfig_is_bad_input_naming_the_file() {
    let err = inventory::client_config(Some(std::path::Path::new("/nonexistent/kubeconfig"))).unwrap_err();
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_agent_lists_its_own_pods_without_a_quorum_read_and_fetches_the_rest() {
    let live = start_with(cluster(), Some("node-a"));
    live.synced().await;
    let stats = live.api.stats().client(AGENT);
    assert_eq!(stats.quorum_reads(), 0, "{:#?}", stats.requests);
    let pod_requests: Vec<_> = stats.requests.iter().filter(|r| r.kind == "Pod").collect();
    assert!(!pod_requests.is_empty());
    for request in &pod_requests {
        assert_eq!(request.field_selector.as_deref(), Some("spec.nodeName=node-a"), "{request:?}");
    }
    assert!(
        stats.requests.iter().all(|r| r.kind != "ReplicaSet" && r.kind != "Job"),
        "owners are fetched, not watched"
    );
    // cart's pod runs on node-b: fetched by the name its endpoint gives, with its ReplicaSet, from the cache.
    let cart = live.resolve_fetching("node-a", "10.0.1.10", "cart.shop.svc.cluster.local").await;
    assert_eq!(show_server(cart), "cart.shop(Deployment)");
    let web = live.resolve_fetching("node-a", "10.0.1.10", "web.shop.svc.cluster.local").await;
    assert_eq!(show_server(web), "web.shop(Rollout)");
    let stats = live.api.stats().client(AGENT);
    let gets: Vec<_> = stats.requests.iter().filter(|r| r.verb == Verb::Get).collect();
    assert!(gets.iter().any(|r| r.kind == "Pod" && r.name.as_deref() == Some("cart-5c6b-xyz12")), "{gets:?}");
    assert!(gets.iter().any(|r| r.kind == "ReplicaSet" && r.metadata_only), "{gets:?}");
    assert_eq!(stats.quorum_reads(), 0, "fetches read the cache: {gets:?}");
    assert!(live.metric(r#"network_mapper_inventory_fetches_total{kind="Pod",result="found"}"#) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_streaming_lists_is_listed_from_its_watch_cache() {
    let api = cluster();
    api.refuse_streaming_lists(true);
    let live = start_with(api, Some("node-a"));
    live.synced().await;
    let stats = live.api.stats().client(AGENT);
    assert_eq!(stats.quorum_reads(), 0, "{:#?}", stats.requests);
    let lists = stats.requests.iter().filter(|r| r.starts_list() && !r.streaming).count();
    assert!(lists >= 4, "every kind listed after its refused streaming list: {:#?}", stats.requests);
    let checkout = live.resolve_fetching("node-a", "10.0.1.10", "example.com").await;
    assert_eq!(show(checkout), "checkout.shop(Deployment)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_field_selectors_still_gives_the_agent_its_pods() {
    let api = cluster();
    api.refuse_field_selectors(true);
    let live = start_with(api, Some("node-a"));
    live.synced().await;
    assert!(live.metric(r#"network_mapper_inventory_watch_errors_total{kind="Pod"}"#) >= 1.0);
    let cart = live.resolve_fetching("node-a", "10.0.1.10", "cart.shop.svc.cluster.local").await;
    assert_eq!(show_server(cart), "cart.shop(Deployment)");
}
