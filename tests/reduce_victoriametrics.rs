//! `netmap-reduce --prometheus` against a second real time-series engine: VictoriaMetrics' single-node server
//! (Debian's `victoria-metrics` package; `make setup` installs it). It scrapes the same two nodes' expositions
//! as the Prometheus test, with its own Prometheus-compatible scraper (`-promscrape.config`, `honor_labels:
//! true`), and the reducer reads the map back through its `/api/v1/query`: the same listing, the same sums.
//! The server is killed when the test ends, pass or fail.

mod tsdb_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tsdb_support::{KillOnDrop, NODE_A, NODE_B, check_reduce_against, count, free_port, serve_exposition};

const BINARY: &str = "victoria-metrics";

fn start_victoria_metrics(dir: &Path, port: u16, targets: &[u16]) -> KillOnDrop {
    let found = Command::new(BINARY).arg("-version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "victoria-metrics is not installed: this test needs it. Run the project's setup (`make setup` installs \
         Debian's `victoria-metrics` package: apt-get install -y victoria-metrics)"
    );
    let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: network-mapper\n    honor_labels: true\n    \
         static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    std::fs::write(dir.join("scrape.yml"), config).unwrap();
    let log = std::fs::File::create(dir.join("victoria-metrics.log")).unwrap();
    let child = Command::new(BINARY)
        .arg(format!("-promscrape.config={}", dir.join("scrape.yml").display()))
        .arg(format!("-storageDataPath={}", dir.join("data").display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        // Samples become visible to queries after -search.latencyOffset (30 s by default, to hide samples that
        // are still arriving); 1 s keeps the test short and changes nothing else.
        .arg("-search.latencyOffset=1s")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("victoria-metrics starts");
    KillOnDrop { child }
}

fn wait_for_series(dir: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(port, "count(network_mapper_edge_total)") < 5 || count(port, "count(network_mapper_workload_info)") < 8
    {
        let log = std::fs::read_to_string(dir.join("victoria-metrics.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "VictoriaMetrics has not scraped both nodes after 90 s; its log:\n{log}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_listing_from_a_real_victoria_metrics_sums_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [serve_exposition(NODE_A), serve_exposition(NODE_B)];
    let port = free_port();
    let _server = start_victoria_metrics(dir.path(), port, &targets);
    wait_for_series(dir.path(), port);
    check_reduce_against(&format!("http://127.0.0.1:{port}"));
}
