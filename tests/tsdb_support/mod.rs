//! What the tests of `netmap-reduce --prometheus` against real time-series engines share: two nodes'
//! expositions served on loopback, the listing they must sum to, and the checks run against each engine
//! (`reduce_prometheus.rs`, `reduce_victoriametrics.rs`).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NODE_A: &str = r#"# HELP network_mapper_edge Calls observed between workloads.
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

pub const NODE_B: &str = r#"# HELP network_mapper_edge Calls observed between workloads.
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

pub const EXPECTED_LIST: &str = "\
checkoutservice in namespace shop calls:
  - paymentservice in namespace payments
frontend in namespace shop calls:
  - api.stripe.com
  - cartservice
prometheus-operator in namespace monitoring calls:
  - kubernetes in namespace default
";

pub use testkit::cmd::Guarded as KillOnDrop;
pub use testkit::http::free_port;

/// Serves `body` as an OpenMetrics scrape to every connection; returns the port.
pub fn serve_exposition(body: &'static str) -> u16 {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    testkit::http::serve(move |_| (200, content_type, body.to_owned())).0
}

/// The value of a `count(...)` query, or 0 while the server is starting or has no data.
pub fn count(port: u16, query: &str) -> u64 {
    testkit::http::instant_query(&format!("http://127.0.0.1:{port}"), query).map_or(0, |n| n as u64)
}

/// A scrape config for `targets` (loopback ports) every second, with `honor_labels: true` as deploy/ ships it.
pub fn scrape_config(targets: &[u16]) -> String {
    let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: network-mapper\n    \
         honor_labels: true\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    )
}

/// Starts a time-series engine (`program` with `args`) logging to `dir/<program>.log`; fails with the package to
/// install when it is missing (`version_flag` probes it).
pub fn start_engine(program: &str, version_flag: &str, package: &str, args: &[String], dir: &Path) -> KillOnDrop {
    let found = Command::new(program).arg(version_flag).output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is not installed: run the project's setup (`make test` does; apt-get install -y {package})"
    );
    let log = std::fs::File::create(dir.join(format!("{program}.log"))).unwrap();
    let child = Command::new(program)
        .args(args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    KillOnDrop { child }
}

/// Waits until the engine on `port` has scraped both nodes; on timeout shows `dir/<program>.log`.
pub fn wait_for_series(dir: &Path, port: u16, program: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(port, "count(network_mapper_edge_total)") < 5 || count(port, "count(network_mapper_workload_info)") < 8
    {
        let log = std::fs::read_to_string(dir.join(format!("{program}.log"))).unwrap_or_default();
        assert!(Instant::now() < deadline, "{program} has not scraped both nodes after 90 s; its log:\n{log}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn reduce(args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_netmap-reduce")).args(args).env("NO_PROXY", "127.0.0.1").output().unwrap();
    assert!(output.status.success(), "netmap-reduce {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The listing, the cross-node sums and the intents, read back from the server at `url`.
pub fn check_reduce_against(url: &str) {
    assert_eq!(reduce(&["--prometheus", url]), EXPECTED_LIST);

    let json: serde_json::Value = serde_json::from_str(&reduce(&["--prometheus", url, "--format", "json"])).unwrap();
    let cart = json.as_array().unwrap().iter().find(|e| e["server"] == "cartservice").unwrap();
    assert_eq!(cart["count"], 7, "3 on node A + 4 on node B: {cart}");
    assert_eq!(cart["client_kind"], "Deployment");

    let intents = reduce(&["--prometheus", url, "--window", "10m", "--format", "intents", "--namespace", "shop"]);
    assert!(
        intents.contains("    - kubernetes:\n        name: paymentservice.payments\n        kind: StatefulSet\n"),
        "{intents}"
    );
    assert!(!intents.contains("prometheus-operator"), "{intents}");
}
