//! `netmap-reduce --prometheus` against a real Prometheus (Debian's `prometheus` package; `make test` installs
//! it): the test serves two nodes' OpenMetrics expositions on loopback, starts Prometheus on a free loopback port
//! with a temporary storage directory to scrape them (`honor_labels: true`, as DESIGN §2 requires), waits until
//! the series are in, and checks the exact listing and the cross-node sums. Prometheus is killed when the test
//! ends, pass or fail.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::cmd::Guarded;
use testkit::http::free_port;

const NODE_A: &str = r#"# HELP network_mapper_edge Calls observed between workloads.
# TYPE network_mapper_edge counter
network_mapper_edge_total{client="frontend",namespace="shop",server="cartservice",server_namespace="shop"} 3
network_mapper_edge_total{client="frontend",namespace="shop",server="api.stripe.com"} 1
network_mapper_edge_total{client="checkoutservice",namespace="shop",server="paymentservice",server_namespace="payments"} 2
# HELP network_mapper_workload Kind of every workload in an edge.
# TYPE network_mapper_workload info
network_mapper_workload_info{workload="frontend",namespace="shop",kind="Deployment"} 1
network_mapper_workload_info{workload="cartservice",namespace="shop",kind="Deployment"} 1
network_mapper_workload_info{workload="checkoutservice",namespace="shop",kind="Deployment"} 1
network_mapper_workload_info{workload="paymentservice",namespace="payments",kind="StatefulSet"} 1
# EOF
"#;

const NODE_B: &str = r#"# HELP network_mapper_edge Calls observed between workloads.
# TYPE network_mapper_edge counter
network_mapper_edge_total{client="frontend",namespace="shop",server="cartservice",server_namespace="shop"} 4
network_mapper_edge_total{client="prometheus-operator",namespace="monitoring",server="kubernetes",server_namespace="default"} 5
# HELP network_mapper_workload Kind of every workload in an edge.
# TYPE network_mapper_workload info
network_mapper_workload_info{workload="frontend",namespace="shop",kind="Deployment"} 1
network_mapper_workload_info{workload="cartservice",namespace="shop",kind="Deployment"} 1
network_mapper_workload_info{workload="prometheus-operator",namespace="monitoring",kind="Deployment"} 1
network_mapper_workload_info{workload="kubernetes",namespace="default",kind="Service"} 1
# EOF
"#;

const EXPECTED_LIST: &str = "\
checkoutservice in namespace shop calls:
  - paymentservice in namespace payments
frontend in namespace shop calls:
  - api.stripe.com
  - cartservice
prometheus-operator in namespace monitoring calls:
  - kubernetes in namespace default
";

/// Serves `body` as an OpenMetrics scrape to every connection; returns the port.
fn serve_exposition(body: &'static str) -> u16 {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    testkit::http::serve(move |_| (200, content_type, body.to_owned())).0
}

fn start_prometheus(dir: &Path, port: u16, targets: &[u16]) -> Guarded {
    let found = Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "prometheus is not installed: this test needs it. Run the project's setup (`make test` installs Debian's \
         `prometheus` package: apt-get install -y prometheus)"
    );
    let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: network-mapper\n    \
         honor_labels: true\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Guarded::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null()),
    )
    .expect("prometheus starts")
}

/// The value of a `count(...)` query, or 0 while Prometheus is starting or has no data.
fn count(port: u16, query: &str) -> u64 {
    testkit::http::instant_query(&format!("http://127.0.0.1:{port}"), query).map_or(0, |n| n as u64)
}

fn wait_for_series(dir: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(port, "count(network_mapper_edge_total)") < 5 || count(port, "count(network_mapper_workload_info)") < 8
    {
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "Prometheus has not scraped both nodes after 90 s; its log:\n{log}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn reduce(args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).env("NO_PROXY", "127.0.0.1").output().unwrap();
    assert!(output.status.success(), "netmap-reduce {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_listing_from_a_real_prometheus_sums_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [serve_exposition(NODE_A), serve_exposition(NODE_B)];
    let port = free_port();
    let _prometheus = start_prometheus(dir.path(), port, &targets);
    wait_for_series(dir.path(), port);
    let url = format!("http://127.0.0.1:{port}");

    assert_eq!(reduce(&["--prometheus", &url]), EXPECTED_LIST);

    let json: serde_json::Value = serde_json::from_str(&reduce(&["--prometheus", &url, "--format", "json"])).unwrap();
    let cart = json.as_array().unwrap().iter().find(|e| e["server"] == "cartservice").unwrap();
    assert_eq!(cart["count"], 7, "3 on node A + 4 on node B: {cart}");
    assert_eq!(cart["client_kind"], "Deployment");

    let intents = reduce(&["--prometheus", &url, "--window", "10m", "--format", "intents", "--namespace", "shop"]);
    assert!(
        intents.contains("    - kubernetes:\n        name: paymentservice.payments\n        kind: StatefulSet\n"),
        "{intents}"
    );
    assert!(!intents.contains("prometheus-operator"), "{intents}");
}
