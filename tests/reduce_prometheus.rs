//! `netmap-reduce --prometheus` against a real Prometheus (Debian's `prometheus` package; `make test` installs
//! it): the test serves two nodes' OpenMetrics expositions on loopback, starts Prometheus on a free loopback port
//! with a temporary storage directory to scrape them (`honor_labels: true`, as docs/design.md §2 requires), waits until
//! the series are in, and checks the exact listing and the cross-node sums. Prometheus is killed when the test
//! ends, pass or fail.

mod tsdb_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tsdb_support::{KillOnDrop, NODE_A, NODE_B, check_reduce_against, count, free_port, serve_exposition};

fn start_prometheus(dir: &Path, port: u16, targets: &[u16]) -> KillOnDrop {
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
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    KillOnDrop { child }
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

#[test]
fn the_listing_from_a_real_prometheus_sums_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [serve_exposition(NODE_A), serve_exposition(NODE_B)];
    let port = free_port();
    let _prometheus = start_prometheus(dir.path(), port, &targets);
    wait_for_series(dir.path(), port);
    check_reduce_against(&format!("http://127.0.0.1:{port}"));
}
