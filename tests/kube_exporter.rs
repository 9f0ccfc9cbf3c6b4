//! The `network-mapper` binary against the fake API server (through a kubeconfig pointing at it): it serves
//! `/metrics` while the API is down, turns ready when it comes back, and counts exactly the edges it counts with
//! the equivalent `--inventory-file`.

use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::cmd::Guarded;
use testkit::fake_apiserver::FakeApi;
use testkit::http::{free_port, get_as, sample};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";
const FLAGS: [&str; 7] =
    ["--pcap-file", CAPTURE, "--node-name", "node-a", "--cluster-domain", "cluster.local", "--no-socket-scan"];
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

fn exporter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_network-mapper"));
    // Never the machine's own cluster.
    cmd.env_remove("KUBERNETES_SERVICE_HOST").env_remove("KUBECONFIG").env("RUST_LOG", "warn");
    cmd
}

fn get(url: &str) -> Option<(u16, String)> {
    get_as(url, Some(OPENMETRICS))
}

fn until<T>(what: &str, seconds: u64, probe: impl FnMut() -> Option<T>) -> T {
    testkit::http::eventually(what, Duration::from_secs(seconds), probe)
}

/// Starts the exporter in server mode against the fake API.
fn start_live(api: &FakeApi, dir: &std::path::Path) -> (Guarded, String) {
    let port = free_port();
    let child = Guarded::spawn(
        exporter()
            .args(FLAGS)
            .arg("--kubeconfig")
            .arg(api.write_kubeconfig(dir))
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null()),
    )
    .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// The series that say what was counted: edges, workloads, DNS outcomes and unresolved reasons.
fn counted(exposition: &str) -> Vec<String> {
    let prefixes = [
        "network_mapper_edge_total",
        "network_mapper_workload_info",
        "network_mapper_dns_responses_total",
        "network_mapper_unresolved_total",
    ];
    let mut lines: Vec<String> =
        exposition.lines().filter(|l| prefixes.iter().any(|p| l.starts_with(p))).map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn exporter_counts_the_same_edges_from_the_api_as_from_the_inventory_file() {
    let from_file = exporter().args(FLAGS).args(["--inventory-file", INVENTORY, "--print-metrics"]).output().unwrap();
    assert!(from_file.status.success(), "{}", String::from_utf8_lossy(&from_file.stderr));
    let expected = counted(&String::from_utf8(from_file.stdout).unwrap());
    assert!(expected.iter().any(|l| l.starts_with("network_mapper_edge_total{")), "{expected:?}");

    let api = FakeApi::with_yaml(&std::fs::read_to_string(INVENTORY).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (_exporter, base) = start_live(&api, dir.path());
    until("ready", 30, || get(&format!("{base}/readyz")).filter(|(code, _)| *code == 200));
    // The capture is read once the inventory has synced; wait until every response has an outcome.
    let total = |lines: &[String]| -> f64 {
        lines
            .iter()
            .filter(|l| l.starts_with("network_mapper_dns_responses_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let live = until("capture processed", 30, || {
        let lines = counted(&get(&format!("{base}/metrics"))?.1);
        (total(&lines) == total(&expected)).then_some(lines)
    });
    assert_eq!(live, expected);
}

#[test]
fn exporter_serves_metrics_while_the_api_is_down_and_turns_ready_when_it_returns() {
    let api = FakeApi::with_yaml(&std::fs::read_to_string(INVENTORY).unwrap());
    api.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let (_exporter, base) = start_live(&api, dir.path());
    let metrics = until("watch errors on /metrics", 30, || {
        let (code, text) = get(&format!("{base}/metrics"))?;
        (code == 200 && sample(&text, r#"network_mapper_inventory_watch_errors_total{kind="Pod"}"#)? >= 1.0)
            .then_some(text)
    });
    assert_eq!(sample(&metrics, r#"network_mapper_inventory_synced{kind="Pod"}"#), Some(0.0));
    assert_eq!(get(&format!("{base}/readyz")).unwrap().0, 503);
    assert_eq!(get(&format!("{base}/healthz")).unwrap().0, 200);

    api.set_down(false);
    until("ready", 40, || get(&format!("{base}/readyz")).filter(|(code, _)| *code == 200));
    // A node's agent watches its pods, Services, EndpointSlices and its Node; owners are fetched, not watched.
    // Readiness waits for the first three only (the Node's CIDRs are an optimisation), so the Node may sync later.
    let synced = |text: &str, kind: &str| sample(text, &format!("network_mapper_inventory_synced{{kind=\"{kind}\"}}"));
    let text = until("the Node watch synced", 20, || {
        let text = get(&format!("{base}/metrics"))?.1;
        (synced(&text, "Node") == Some(1.0)).then_some(text)
    });
    for kind in ["Pod", "Service", "EndpointSlice"] {
        assert_eq!(synced(&text, kind), Some(1.0), "{kind}");
    }
    assert_eq!(sample(&text, r#"network_mapper_inventory_synced{kind="ReplicaSet"}"#), None);
    let fixture: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(INVENTORY).unwrap()).unwrap();
    let on_node = |o: &&serde_json::Value| o["kind"] == "Pod" && o["spec"]["nodeName"] == "node-a";
    let own_pods = fixture["items"].as_array().unwrap().iter().filter(on_node).count();
    assert_eq!(sample(&text, r#"network_mapper_inventory_objects{kind="Pod"}"#), Some(own_pods as f64));
    let edge = r#"network_mapper_edge_total{client="checkout",namespace="shop",server="cart",server_namespace="shop"}"#;
    let text = until("edges counted after sync", 20, || {
        let text = get(&format!("{base}/metrics"))?.1;
        sample(&text, edge).map(|_| text)
    });
    let found = r#"network_mapper_inventory_fetches_total{kind="Pod",result="found"}"#;
    assert!(sample(&text, found).unwrap_or(0.0) >= 1.0, "cart's pod, on node-b, was fetched:\n{text}");
}

#[test]
fn print_metrics_without_an_inventory_file_is_a_usage_error() {
    let out = exporter().args(FLAGS).arg("--print-metrics").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--inventory-file"));
}

#[test]
fn an_unreadable_kubeconfig_exits_2_naming_the_file() {
    let out = exporter().args(FLAGS).args(["--kubeconfig", "/nonexistent/kubeconfig"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kubeconfig"));
}
