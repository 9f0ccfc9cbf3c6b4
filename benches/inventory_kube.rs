//! Live-inventory benchmark: a fake API server holding 100,000 pods, 20,000 Services and 20,000 EndpointSlices
//! (plus their 20,000 ReplicaSets and some Jobs). Measures
//! 1. the whole `network-mapper` process (started against the fake API): time to /readyz and RSS after sync
//!    (budget: under 150 MB), and as a diagnostic the same with `MALLOC_ARENA_MAX=1` (glibc arena slack);
//! 2. resolution lookups over the synced index, in process, the median of five rounds (budget: under 1 µs each).
//!
//! Run: `cargo bench --bench inventory_kube` (release build; under two minutes on 2 cores).

use std::hint::black_box;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use network_mapper::exporter::metrics::{Enabled, InventoryReport, Limits, Metrics};
use network_mapper::exporter::server::Readiness;
use network_mapper::resolve::{Resolution, ResolveConfig, Resolver};
use network_mapper::sources::inventory::{self, Inventory};
use serde_json::{Value, json};
use testkit::cmd::Guarded;
use testkit::e2e::procs::Usage;
use testkit::fake_apiserver::FakeApi;
use testkit::http::free_port;
use testkit::k8s::{self, Endpoint, Pod};

const PODS: usize = 100_000;
const SERVICES: usize = 20_000;
const PODS_PER_SERVICE: usize = PODS / SERVICES;
const NAMESPACES: usize = 200;
const JOBS: usize = 2_000;
/// 2026-03-01T00:00:00Z.
const MARCH: i64 = 1_772_323_200 * 1_000_000;
const RSS_BUDGET_MB: f64 = 150.0;
const LOOKUP_BUDGET_NS: f64 = 1_000.0;

fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 65_536, (i / 256) % 256, i % 256)
}

fn service_ip(s: usize) -> String {
    format!("10.96.{}.{}", s / 256, s % 256)
}

fn namespace(s: usize) -> String {
    format!("team-{}", s % NAMESPACES)
}

/// A pod as the API serves it: with the managed fields, labels and status a real one carries.
fn pod(i: usize) -> Value {
    let s = i / PODS_PER_SERVICE;
    let rs = format!("app-{s}-5d8f7c9b4");
    Pod::new(&namespace(s), &format!("{rs}-{i:05x}"), &pod_ip(i))
        .owner("ReplicaSet", &rs)
        .node(&format!("node-{}", i % 500))
        .with(json!({
      "metadata": {"uid": format!("0000-{i}"),
        "labels": {"app": format!("app-{s}"), "pod-template-hash": "5d8f7c9b4"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                           "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {}}}},
                          {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "subresource": "status",
                           "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:status": {"f:conditions": {}, "f:podIP": {}, "f:podIPs": {}}}}]},
      "spec": {"serviceAccountName": "default",
        "containers": [{"name": "app", "image": format!("registry.example/app-{s}:1.2.3"),
          "ports": [{"containerPort": 8080, "protocol": "TCP"}],
          "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]},
      "status": {"hostIP": "192.168.0.10", "startTime": "2026-01-01T00:00:01Z",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "app:1.2.3",
          "imageID": "sha256:0123456789abcdef", "containerID": "containerd://0123456789abcdef",
          "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}}]}}))
        .json()
}

fn service(s: usize) -> Value {
    let mut service = k8s::service(&namespace(s), &format!("app-{s}"), Some(&service_ip(s)), 80);
    k8s::merge(
        &mut service,
        json!({"spec": {"selector": {"app": format!("app-{s}")},
                                             "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
    );
    service
}

fn slice(s: usize) -> Value {
    let pods: Vec<(String, String)> = (s * PODS_PER_SERVICE..(s + 1) * PODS_PER_SERVICE)
        .map(|i| (pod_ip(i), format!("app-{s}-5d8f7c9b4-{i:05x}")))
        .collect();
    let nodes: Vec<String> =
        (s * PODS_PER_SERVICE..(s + 1) * PODS_PER_SERVICE).map(|i| format!("node-{}", i % 500)).collect();
    let endpoints: Vec<Endpoint<'_>> =
        pods.iter().zip(&nodes).map(|((ip, pod), node)| Endpoint { ip, pod, node, hostname: None }).collect();
    k8s::endpoint_slice(&namespace(s), &format!("app-{s}"), &format!("app-{s}-abcde"), 8080, &endpoints)
}

fn replica_set(s: usize) -> Value {
    let mut replica_set =
        k8s::owned("ReplicaSet", &namespace(s), &format!("app-{s}-5d8f7c9b4"), "Deployment", &format!("app-{s}"));
    replica_set["spec"] = json!({"replicas": PODS_PER_SERVICE});
    replica_set
}

fn job(j: usize) -> Value {
    k8s::owned("Job", &namespace(j), &format!("nightly-{j}"), "CronJob", "nightly")
}

fn fake_cluster() -> FakeApi {
    let api = FakeApi::start();
    (0..PODS).for_each(|i| api.apply(pod(i)));
    for s in 0..SERVICES {
        api.apply(service(s));
        api.apply(slice(s));
        api.apply(replica_set(s));
    }
    (0..JOBS).for_each(|j| api.apply(job(j)));
    api
}

/// VmRSS and VmHWM (peak) of a process, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let usage = Usage::of(pid).unwrap();
    (usage.rss_kib as f64 / 1024.0, usage.peak_rss_kib as f64 / 1024.0)
}

/// The exporter against the fake API, with extra environment `env`: seconds to /readyz, RSS and peak RSS.
fn exporter_process(api: &FakeApi, dir: &std::path::Path, env: &[(&str, &str)]) -> (f64, f64, f64) {
    let port = free_port();
    let started = Instant::now();
    let child = Guarded::spawn(
        Command::new(env!("CARGO_BIN_EXE_network-mapper"))
            .args(["--pcap-file", "tests/fixtures/scrape/capture.pcap", "--no-socket-scan", "--node-name", "node-1"])
            .arg("--kubeconfig")
            .arg(api.write_kubeconfig(dir))
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stderr(Stdio::inherit()),
    )
    .unwrap();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let http = reqwest::blocking::Client::new();
    while !http.get(&ready).send().is_ok_and(|r| r.status() == 200) {
        assert!(started.elapsed() < Duration::from_secs(300), "exporter did not sync within 300 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sync = started.elapsed().as_secs_f64();
    // Let the last batch settle and the capture file be read.
    std::thread::sleep(Duration::from_secs(2));
    let (rss, peak) = rss_mb(child.pid());
    (sync, rss, peak)
}

fn synced_inventory(api: &FakeApi, dir: &std::path::Path) -> (Arc<RwLock<Inventory>>, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (metrics, _registry) = Metrics::new(
        Limits { max_edges: 10_000, max_external_names: 50 },
        Enabled { api_inventory: true, ..Enabled::default() },
    );
    let readiness = Readiness::default();
    let status = InventoryReport::watch_status(&metrics, readiness.clone());
    let inventory = Arc::new(RwLock::new(Inventory::new()));
    let config = inventory::client_config(Some(&api.write_kubeconfig(dir))).unwrap();
    let _guard = runtime.enter();
    let client = inventory::client(config, &status).unwrap();
    inventory::spawn_watches(client, inventory.clone(), status);
    while !readiness.is_ready() {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(_guard);
    (inventory, runtime)
}

/// Rounds of lookups timed separately: this machine's 2 cores are shared, and a round during which another
/// process held the core says nothing about the lookup. The median round is the figure.
const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 400_000;

/// Mean nanoseconds per call of `f` in each round, and the median round's.
fn time_ns(mut f: impl FnMut(usize)) -> (f64, Vec<f64>) {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let started = Instant::now();
            for i in round * CALLS_PER_ROUND..(round + 1) * CALLS_PER_ROUND {
                f(i);
            }
            started.elapsed().as_nanos() as f64 / CALLS_PER_ROUND as f64
        })
        .collect();
    let shown = rounds.clone();
    rounds.sort_by(f64::total_cmp);
    (rounds[ROUNDS / 2], shown)
}

fn lookups(inventory: &Inventory) -> (f64, f64) {
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: None };
    let resolver = Resolver::new(inventory, &config);
    let clients: Vec<IpAddr> = (0..PODS).step_by(7).map(|i| pod_ip(i).parse().unwrap()).collect();
    let names: Vec<String> =
        (0..SERVICES).step_by(3).map(|s| format!("app-{s}.{}.svc.cluster.local", namespace(s))).collect();
    let service_ips: Vec<IpAddr> = (0..SERVICES).step_by(3).map(|s| service_ip(s).parse().unwrap()).collect();
    let check = resolver.dns_answer(clients[1], &names[1], &[], MARCH);
    assert!(matches!(check, Resolution::Edge(_)), "{check:?}");
    let (dns, dns_rounds) = time_ns(|i| {
        black_box(resolver.dns_answer(clients[i % clients.len()], &names[i % names.len()], &[], MARCH));
    });
    let (connection, connection_rounds) = time_ns(|i| {
        black_box(resolver.connection(clients[i % clients.len()], service_ips[i % service_ips.len()], MARCH));
    });
    let show = |rounds: &[f64]| {
        let each: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
        format!("{} (mean {:.0})", each.join(" "), rounds.iter().sum::<f64>() / rounds.len() as f64)
    };
    println!("lookup rounds of {CALLS_PER_ROUND} calls, ns each: dns_answer {}", show(&dns_rounds));
    println!("                                        connection {}", show(&connection_rounds));
    (dns, connection)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here.
    }
    let built = Instant::now();
    let api = fake_cluster();
    println!(
        "fake API: {PODS} pods, {SERVICES} services, {SERVICES} endpointslices, {SERVICES} replicasets, {JOBS} jobs \
         (built in {:.1} s)",
        built.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let (sync, rss, peak) = exporter_process(&api, dir.path(), &[]);
    println!("exporter process: synced in {sync:.1} s, RSS after sync {rss:.1} MB (peak {peak:.1} MB)");
    // Diagnostic only: how much of that RSS is glibc's per-thread arenas holding freed list pages.
    let (_, arena_rss, _) = exporter_process(&api, dir.path(), &[("MALLOC_ARENA_MAX", "1")]);
    println!("  the same with MALLOC_ARENA_MAX=1: RSS after sync {arena_rss:.1} MB");

    let (inventory, _runtime) = synced_inventory(&api, dir.path());
    let (dns, connection) = lookups(&inventory.read().unwrap());
    println!(
        "lookup (median round): dns_answer {dns:.0} ns, connection {connection:.0} ns (pod client, service server)"
    );
    assert!(rss < RSS_BUDGET_MB, "RSS {rss:.1} MB over the {RSS_BUDGET_MB} MB budget");
    assert!(dns < LOOKUP_BUDGET_NS && connection < LOOKUP_BUDGET_NS, "lookup over {LOOKUP_BUDGET_NS} ns");
}
