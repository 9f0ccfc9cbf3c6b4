//! What the tests of `netmap-reduce --prometheus` against real time-series engines share: two nodes'
//! expositions served on loopback, the listing they must sum to, and the checks run against each engine
//! (`reduce_prometheus.rs`, `reduce_victoriametrics.rs`).
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command};

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

/// Kills Prometheus when the test ends, whether it passed or panicked.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `body` as an OpenMetrics scrape to every connection; returns the port.
pub fn serve_exposition(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The value of a `count(...)` query, or 0 while the server is starting or has no data.
pub fn count(port: u16, query: &str) -> u64 {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let Ok(response) =
        reqwest::blocking::Client::builder().no_proxy().build().unwrap().get(url).query(&[("query", query)]).send()
    else {
        return 0;
    };
    let Ok(body) = response.json::<serde_json::Value>() else { return 0 };
    body["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
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
