//! `netmap-reduce --prometheus` against a real Prometheus (Debian's `prometheus` package; `make test` installs
//! it): the test serves two nodes' OpenMetrics expositions on loopback, starts Prometheus on a free loopback port
//! with a temporary storage directory to scrape them (`honor_labels: true`, as docs/design.md §2 requires), waits until
//! the series are in, and checks the exact listing and the cross-node sums. Prometheus is killed when the test
//! ends, pass or fail.

mod tsdb_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tsdb_support::{
    KillOnDrop, NODE_A, NODE_B, check_reduce_against, count, free_port, reduce, scrape_config, serve_exposition,
    start_engine, wait_for_series,
};

fn start_prometheus(dir: &Path, port: u16, targets: &[u16]) -> KillOnDrop {
    std::fs::write(dir.join("prometheus.yml"), scrape_config(targets)).unwrap();
    let args = [
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    start_engine("prometheus", "--version", "prometheus", &args, dir)
}

#[test]
fn the_listing_from_a_real_prometheus_sums_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [serve_exposition(NODE_A), serve_exposition(NODE_B)];
    let port = free_port();
    let _prometheus = start_prometheus(dir.path(), port, &targets);
    wait_for_series(dir.path(), port, "prometheus");
    check_reduce_against(&format!("http://127.0.0.1:{port}"));
}

/// Serves whatever `body` holds at the time of each scrape; returns the port.
fn serve_switchable(body: std::sync::Arc<std::sync::Mutex<&'static str>>) -> u16 {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    testkit::http::serve(move |_| (200, content_type, body.lock().unwrap().to_string())).0
}

const BEFORE: &str = "# TYPE network_mapper_edge counter\n\
network_mapper_edge_total{client=\"frontend\",namespace=\"shop\",server=\"cartservice\",server_namespace=\"shop\"} 3\n\
network_mapper_edge_total{client=\"frontend\",namespace=\"shop\",server=\"api.stripe.com\"} 1\n# EOF\n";
const AFTER: &str = "# TYPE network_mapper_edge counter\n\
network_mapper_edge_total{client=\"frontend\",namespace=\"shop\",server=\"cartservice\",server_namespace=\"shop\"} 5\n\
network_mapper_edge_total{client=\"frontend\",namespace=\"shop\",server=\"adservice\",server_namespace=\"ads\"} 1\n\
# TYPE network_mapper_edge_connections counter\n\
network_mapper_edge_connections_total{client=\"frontend\",namespace=\"shop\",server=\"cartservice\",server_namespace=\"shop\",port=\"7070\"} 2\n# EOF\n";

/// The workloads of BEFORE and AFTER, and a policy that isolates cartservice with nothing allowed in.
const INVENTORY: &str = "apiVersion: v1\nkind: List\nitems:\n\
- {apiVersion: v1, kind: Pod, metadata: {name: frontend, namespace: shop, labels: {app: frontend}}}\n\
- {apiVersion: v1, kind: Pod, metadata: {name: cartservice, namespace: shop, labels: {app: cartservice}}}\n\
- {apiVersion: v1, kind: Pod, metadata: {name: adservice, namespace: ads, labels: {app: adservice}}}\n";
const ISOLATE_CART: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
metadata: {name: cart, namespace: shop}\nspec: {podSelector: {matchLabels: {app: cartservice}}, policyTypes: [Ingress]}\n";

fn wait_until(dir: &Path, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "{what} not seen after 90 s; Prometheus log:\n{log}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `diff` against one real Prometheus at two windows: the exporter's scrape changes half-way (one edge gone, one
/// new); the window before the change against the window after it lists both, and exits 1 for the new edge.
/// Also the first/last seen times of the live range query, and `impact` on the live map (ports, last seen).
#[test]
fn diff_of_two_windows_of_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::sync::Arc::new(std::sync::Mutex::new(BEFORE));
    let target = serve_switchable(body.clone());
    let port = free_port();
    let _prometheus = start_prometheus(dir.path(), port, &[target]);
    wait_until(dir.path(), "the first scrape", || count(port, "count(network_mapper_edge_total)") == 2);
    std::thread::sleep(Duration::from_secs(4));
    *body.lock().unwrap() = AFTER;
    let switched = Instant::now();
    let ads = "count(network_mapper_edge_total{server=\"adservice\"})";
    wait_until(dir.path(), "the changed scrape", || count(port, ads) == 1);
    std::thread::sleep(Duration::from_secs(5));
    let url = format!("http://127.0.0.1:{port}");

    // OLD: the 3 s that ended 1 s before the switch; NEW: the last 3 s.
    let offset = format!("{}ms", switched.elapsed().as_millis() + 1000);
    let output = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .args(["diff", "--prometheus", &url, "--window", "3s", "--offset", &offset])
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "new edges exit 1: {stderr}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "+ frontend in namespace shop calls adservice in namespace ads\n- frontend in namespace shop calls api.stripe.com\n"
    );
    assert!(stderr.contains("1 new, 1 gone, 1 in both."), "{stderr}");

    // The same window twice: nothing new, exit 0.
    let same = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .args(["diff", "--prometheus", &url, "--window", "3s", "--offset", "0s"])
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));

    // First/last seen from the live range query: cartservice grew after the switch, stripe never did.
    let json: serde_json::Value =
        serde_json::from_str(&reduce(&["--prometheus", &url, "--window", "5m", "--format", "json"])).unwrap();
    let edge = |server: &str| json.as_array().unwrap().iter().find(|e| e["server"] == server).unwrap().clone();
    let (cart, stripe) = (edge("cartservice"), edge("api.stripe.com"));
    for e in [&cart, &stripe] {
        assert!(e["first_seen"].as_str().unwrap() <= e["last_seen"].as_str().unwrap(), "{e}");
    }
    assert!(cart["last_seen"].as_str() > stripe["last_seen"].as_str(), "{cart} {stripe}");
    assert!(reduce(&["--prometheus", &url, "--window", "5m", "--show-seen"]).contains("(first seen 20"));

    // impact reads the live map with its ports and last seen.
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let policy = dir.path().join("cart.yaml");
    std::fs::write(&policy, ISOLATE_CART).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_netmap-reduce"))
        .args(["impact", "--policies", &policy.display().to_string(), "--prometheus", &url, "--window", "5m"])
        .args(["--inventory-file", &inventory.display().to_string()])
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "a denied edge exits 1: {stderr}");
    assert!(stdout.starts_with("deny: frontend in namespace shop calls cartservice on TCP 7070"), "{stdout}");
    assert!(stdout.contains("5 observation(s), last seen 20"), "{stdout}");
}
