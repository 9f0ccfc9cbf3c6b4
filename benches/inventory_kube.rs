//! Live-inventory benchmark: a fake API server holding 100,000 pods, 20,000 Services and 20,000 EndpointSlices
//! (plus their 20,000 ReplicaSets and some Jobs). Measures
//! 1. the whole `network-mapper` process (started against the fake API): time to /readyz and RSS after sync
//!    (budget: under 150 MB), and as a diagnostic the same with `MALLOC_ARENA_MAX=1` (glibc arena slack);
//! 2. side by side, in process, the inventory index against a plain-hash-map baseline (`support/plain_index.rs`)
//!    loaded with the same records: heap held by each (counted by this binary's global allocator), and the
//!    median round of the same lookups (budget: under 1 µs each), rounds interleaved. `docs/inventory-index.md`
//!    records the figures and the decision they support.
//!
//! Run: `cargo bench --bench inventory_kube` (release build; under two minutes on 2 cores).

#[path = "support/plain_index.rs"]
mod plain_index;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use network_mapper::resolve::{Resolution, ResolveConfig, Resolver};
use network_mapper::sources::inventory::{Inventory, OwnerRecord, PodRecord, ServiceRecord, SliceRecord};
use plain_index::{PlainIndex, PlainResolver};
use serde_json::{Value, json};
use testkit::fake_apiserver::FakeApi;

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
    let name = format!("{rs}-{i:05x}");
    let ip = pod_ip(i);
    json!({"apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": name, "namespace": namespace(s), "uid": format!("0000-{i}"),
        "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": format!("app-{s}"), "pod-template-hash": "5d8f7c9b4"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": format!("rs-{s}"),
                             "controller": true, "blockOwnerDeletion": true}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                           "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {}}}},
                          {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "subresource": "status",
                           "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:status": {"f:conditions": {}, "f:podIP": {}, "f:podIPs": {}}}}]},
      "spec": {"nodeName": format!("node-{}", i % 500), "serviceAccountName": "default",
        "containers": [{"name": "app", "image": format!("registry.example/app-{s}:1.2.3"),
          "ports": [{"containerPort": 8080, "protocol": "TCP"}],
          "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]},
      "status": {"phase": "Running", "hostIP": "192.168.0.10", "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": "2026-01-01T00:00:01Z",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "app:1.2.3",
          "imageID": "sha256:0123456789abcdef", "containerID": "containerd://0123456789abcdef",
          "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}}]}})
}

fn service(s: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": format!("app-{s}"), "namespace": namespace(s), "uid": format!("svc-{s}")},
      "spec": {"type": "ClusterIP", "clusterIP": service_ip(s), "clusterIPs": [service_ip(s)],
               "selector": {"app": format!("app-{s}")}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
}

fn slice(s: usize) -> Value {
    let endpoints: Vec<Value> = (s * PODS_PER_SERVICE..(s + 1) * PODS_PER_SERVICE)
        .map(|i| {
            json!({"addresses": [pod_ip(i)], "conditions": {"ready": true},
                        "nodeName": format!("node-{}", i % 500),
                        "targetRef": {"kind": "Pod", "namespace": namespace(s),
                                      "name": format!("app-{s}-5d8f7c9b4-{i:05x}"), "uid": format!("0000-{i}")}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
      "metadata": {"name": format!("app-{s}-abcde"), "namespace": namespace(s),
                   "labels": {"kubernetes.io/service-name": format!("app-{s}")}},
      "endpoints": endpoints, "ports": [{"name": "", "port": 8080, "protocol": "TCP"}]})
}

fn replica_set(s: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
      "metadata": {"name": format!("app-{s}-5d8f7c9b4"), "namespace": namespace(s), "uid": format!("rs-{s}"),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{s}"),
                             "uid": format!("d-{s}"), "controller": true}]},
      "spec": {"replicas": PODS_PER_SERVICE}})
}

fn job(j: usize) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
      "metadata": {"name": format!("nightly-{j}"), "namespace": namespace(j),
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "c", "controller": true}]}})
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

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// VmRSS and VmHWM (peak) of a process, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The exporter against the fake API, with extra environment `env`: seconds to /readyz, RSS and peak RSS.
fn exporter_process(api: &FakeApi, dir: &std::path::Path, env: &[(&str, &str)]) -> (f64, f64, f64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_network-mapper"))
        .args(["--pcap-file", "tests/fixtures/scrape/capture.pcap", "--no-socket-scan", "--node-name", "node-1"])
        .arg("--kubeconfig")
        .arg(api.write_kubeconfig(dir))
        .args(["--listen-address", &format!("127.0.0.1:{port}")])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let child = Running(child);
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let http = reqwest::blocking::Client::new();
    while !http.get(&ready).send().is_ok_and(|r| r.status() == 200) {
        assert!(started.elapsed() < Duration::from_secs(300), "exporter did not sync within 300 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sync = started.elapsed().as_secs_f64();
    // Let the last batch settle and the capture file be read.
    std::thread::sleep(Duration::from_secs(2));
    let (rss, peak) = rss_mb(child.0.id());
    (sync, rss, peak)
}

/// Counts the heap this process holds: bytes asked for, and what glibc's malloc spends on them (16-byte
/// granules with an 8-byte header, 32 bytes at least), so two indexes are weighed the same way.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_MALLOC_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

fn malloc_size(size: usize) -> isize {
    ((size + 8 + 15) & !15).max(32) as isize
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        LIVE_MALLOC_BYTES.fetch_add(malloc_size(layout.size()), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_MALLOC_BYTES.fetch_sub(malloc_size(layout.size()), Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Live heap: (bytes, bytes as malloc holds them, blocks).
fn live_heap() -> (isize, isize, isize) {
    (LIVE_BYTES.load(Ordering::Relaxed), LIVE_MALLOC_BYTES.load(Ordering::Relaxed), LIVE_BLOCKS.load(Ordering::Relaxed))
}

/// What both indexes are loaded through: the projected records the live watches feed.
trait Load: Default {
    fn track_owner_kinds(&mut self, kinds: &[&'static str]);
    fn pod(&mut self, record: PodRecord);
    fn owner(&mut self, record: OwnerRecord);
    fn service(&mut self, record: ServiceRecord);
    fn slice(&mut self, record: SliceRecord);
}

impl Load for Inventory {
    fn track_owner_kinds(&mut self, kinds: &[&'static str]) {
        Inventory::track_owner_kinds(self, kinds);
    }
    fn pod(&mut self, record: PodRecord) {
        self.upsert_pod(record);
    }
    fn owner(&mut self, record: OwnerRecord) {
        self.upsert_owner(record);
    }
    fn service(&mut self, record: ServiceRecord) {
        self.upsert_service(record);
    }
    fn slice(&mut self, record: SliceRecord) {
        self.upsert_slice(record);
    }
}

impl Load for PlainIndex {
    fn track_owner_kinds(&mut self, kinds: &[&'static str]) {
        PlainIndex::track_owner_kinds(self, kinds);
    }
    fn pod(&mut self, record: PodRecord) {
        self.upsert_pod(record);
    }
    fn owner(&mut self, record: OwnerRecord) {
        self.upsert_owner(record);
    }
    fn service(&mut self, record: ServiceRecord) {
        self.upsert_service(record);
    }
    fn slice(&mut self, record: SliceRecord) {
        self.upsert_slice(record);
    }
}

fn meta(mut object: Value) -> ObjectMeta {
    serde_json::from_value(object["metadata"].take()).unwrap()
}

/// An index loaded with the objects the fake API serves, in the order the watches deliver them (each kind
/// listed in turn), projected one at a time as the watches do; and the heap it holds, as `live_heap`.
fn loaded<I: Load>() -> (I, (isize, isize, isize)) {
    let before = live_heap();
    let mut index = I::default();
    // As the live watches declare (src/sources/inventory/kube.rs).
    index.track_owner_kinds(&["ReplicaSet", "Job"]);
    for i in 0..PODS {
        let pod: Pod = serde_json::from_value(pod(i)).unwrap();
        index.pod(PodRecord::from_pod(&pod).unwrap());
    }
    for s in 0..SERVICES {
        let service: Service = serde_json::from_value(service(s)).unwrap();
        index.service(ServiceRecord::from_service(&service).unwrap());
    }
    for s in 0..SERVICES {
        let slice: EndpointSlice = serde_json::from_value(slice(s)).unwrap();
        index.slice(SliceRecord::from_slice(&slice).unwrap());
    }
    for s in 0..SERVICES {
        index.owner(OwnerRecord::from_meta("ReplicaSet", &meta(replica_set(s))).unwrap());
    }
    for j in 0..JOBS {
        index.owner(OwnerRecord::from_meta("Job", &meta(job(j))).unwrap());
    }
    let after = live_heap();
    (index, (after.0 - before.0, after.1 - before.1, after.2 - before.2))
}

/// Rounds of lookups timed separately, the two indexes' rounds interleaved: this machine's 2 cores are
/// shared, and a round during which another process held the core says nothing about the lookup. The median
/// round is the figure.
const ROUNDS: usize = 9;
const CALLS_PER_ROUND: usize = 400_000;

/// Mean nanoseconds per call of `f` over the calls of `round`.
fn time_round(round: usize, mut f: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for i in round * CALLS_PER_ROUND..(round + 1) * CALLS_PER_ROUND {
        f(i);
    }
    started.elapsed().as_nanos() as f64 / CALLS_PER_ROUND as f64
}

fn median(rounds: &[f64]) -> f64 {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn show(rounds: &[f64]) -> String {
    let each: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
    format!("{} (median {:.0})", each.join(" "), median(rounds))
}

/// The lookup mix: a DNS answer (client pod by IP → workload; name → Service → backing workload) and a
/// connection (client pod by IP; Service ClusterIP → backing workload). Returns the median rounds, ns per call:
/// (index dns, index connection, plain dns, plain connection).
fn lookups(inventory: &Inventory, plain: &PlainIndex) -> [f64; 4] {
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: None };
    let resolver = Resolver::new(inventory, &config);
    let baseline = PlainResolver { index: plain, cluster_domain: &config.cluster_domain };
    let clients: Vec<IpAddr> = (0..PODS).step_by(7).map(|i| pod_ip(i).parse().unwrap()).collect();
    let names: Vec<String> =
        (0..SERVICES).step_by(3).map(|s| format!("app-{s}.{}.svc.cluster.local", namespace(s))).collect();
    let service_ips: Vec<IpAddr> = (0..SERVICES).step_by(3).map(|s| service_ip(s).parse().unwrap()).collect();
    let dns = |i: usize| (clients[i % clients.len()], names[i % names.len()].as_str());
    let connection = |i: usize| (clients[i % clients.len()], service_ips[i % service_ips.len()]);
    // Both give the same answers, and they are edges.
    for i in (0..CALLS_PER_ROUND).step_by(97) {
        let (client, name) = dns(i);
        let expected = resolver.dns_answer(client, name, &[], MARCH);
        assert!(matches!(expected, Resolution::Edge(_)), "{expected:?}");
        assert_eq!(baseline.dns_answer(client, name, MARCH), expected, "{client} {name}");
        let (local, remote) = connection(i);
        let expected = resolver.connection(local, remote, MARCH);
        assert!(matches!(expected, Resolution::Edge(_)), "{expected:?}");
        assert_eq!(baseline.connection(local, remote, MARCH), expected, "{local} {remote}");
    }
    let mut rounds = [const { Vec::new() }; 4];
    for round in 0..ROUNDS {
        rounds[0].push(time_round(round, |i| {
            let (client, name) = dns(i);
            black_box(resolver.dns_answer(client, name, &[], MARCH));
        }));
        rounds[2].push(time_round(round, |i| {
            let (client, name) = dns(i);
            black_box(baseline.dns_answer(client, name, MARCH));
        }));
        rounds[1].push(time_round(round, |i| {
            let (local, remote) = connection(i);
            black_box(resolver.connection(local, remote, MARCH));
        }));
        rounds[3].push(time_round(round, |i| {
            let (local, remote) = connection(i);
            black_box(baseline.connection(local, remote, MARCH));
        }));
    }
    println!("lookup rounds of {CALLS_PER_ROUND} calls, ns each:");
    println!("  index dns_answer  {}", show(&rounds[0]));
    println!("  plain dns_answer  {}", show(&rounds[2]));
    println!("  index connection  {}", show(&rounds[1]));
    println!("  plain connection  {}", show(&rounds[3]));
    [median(&rounds[0]), median(&rounds[1]), median(&rounds[2]), median(&rounds[3])]
}

/// Changes both indexes alike (a pod, a Service, a slice and an owner removed and put back, one pod gone for
/// good) and checks that they still agree: the baseline's removals are part of what it costs.
fn churn(inventory: &mut Inventory, plain: &mut PlainIndex) {
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: None };
    let (s, gone, kept) = (5, 5 * PODS_PER_SERVICE, 5 * PODS_PER_SERVICE + 1);
    let pod_record = |i| PodRecord::from_pod(&serde_json::from_value(pod(i)).unwrap()).unwrap();
    let service_record = ServiceRecord::from_service(&serde_json::from_value(service(s)).unwrap()).unwrap();
    let slice_record = SliceRecord::from_slice(&serde_json::from_value(slice(s)).unwrap()).unwrap();
    let owner_record = OwnerRecord::from_meta("ReplicaSet", &meta(replica_set(s))).unwrap();
    let (ns, kept_record) = (namespace(s), pod_record(kept));
    inventory.remove_pod(&ns, &pod_record(gone).name);
    plain.remove_pod(&ns, &pod_record(gone).name);
    inventory.remove_pod(&ns, &kept_record.name);
    plain.remove_pod(&ns, &kept_record.name);
    inventory.remove_service(&ns, &service_record.name);
    plain.remove_service(&ns, &service_record.name);
    inventory.remove_slice(&ns, &slice_record.name);
    plain.remove_slice(&ns, &slice_record.name);
    inventory.remove_owner(&ns, "ReplicaSet", &owner_record.name);
    plain.remove_owner(&ns, "ReplicaSet", &owner_record.name);
    let resolver = Resolver::new(inventory, &config);
    let baseline = PlainResolver { index: plain, cluster_domain: &config.cluster_domain };
    let (client, name, ip) = (pod_ip(0).parse().unwrap(), format!("app-{s}.{ns}.svc.cluster.local"), service_ip(s));
    let (ip, kept_ip) = (ip.parse().unwrap(), pod_ip(kept).parse().unwrap());
    let gone_answers = [resolver.dns_answer(client, &name, &[], MARCH), resolver.connection(client, ip, MARCH)];
    assert_eq!(gone_answers, [baseline.dns_answer(client, &name, MARCH), baseline.connection(client, ip, MARCH)]);
    assert_eq!(resolver.connection(client, kept_ip, MARCH), baseline.connection(client, kept_ip, MARCH));
    inventory.upsert_pod(kept_record.clone());
    plain.upsert_pod(kept_record);
    inventory.upsert_service(service_record.clone());
    plain.upsert_service(service_record);
    inventory.upsert_slice(slice_record.clone());
    plain.upsert_slice(slice_record);
    inventory.upsert_owner(owner_record.clone());
    plain.upsert_owner(owner_record);
    let resolver = Resolver::new(inventory, &config);
    let baseline = PlainResolver { index: plain, cluster_domain: &config.cluster_domain };
    let back = [resolver.dns_answer(client, &name, &[], MARCH), resolver.connection(client, kept_ip, MARCH)];
    assert!(back.iter().all(|r| matches!(r, Resolution::Edge(_))), "{back:?}");
    assert_eq!(back, [baseline.dns_answer(client, &name, MARCH), baseline.connection(client, kept_ip, MARCH)]);
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
    drop(api);

    let mb = |bytes: isize| bytes as f64 / 1_048_576.0;
    let (mut inventory, index_heap) = loaded::<Inventory>();
    let (mut plain, plain_heap) = loaded::<PlainIndex>();
    for (name, (bytes, malloc, blocks)) in [("index", index_heap), ("plain", plain_heap)] {
        println!(
            "{name} heap after loading: {:.1} MB asked, {:.1} MB as malloc chunks, {blocks} blocks",
            mb(bytes),
            mb(malloc)
        );
    }
    let [dns, connection, plain_dns, plain_connection] = lookups(&inventory, &plain);
    churn(&mut inventory, &mut plain);
    println!(
        "lookup (median round): index dns_answer {dns:.0} ns, connection {connection:.0} ns; \
         plain dns_answer {plain_dns:.0} ns, connection {plain_connection:.0} ns"
    );
    assert!(rss < RSS_BUDGET_MB, "RSS {rss:.1} MB over the {RSS_BUDGET_MB} MB budget");
    assert!(dns < LOOKUP_BUDGET_NS && connection < LOOKUP_BUDGET_NS, "lookup over {LOOKUP_BUDGET_NS} ns");
}
