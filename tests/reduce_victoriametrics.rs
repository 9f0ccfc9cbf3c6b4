//! `netmap-reduce --prometheus` against a second real time-series engine: VictoriaMetrics' single-node server
//! (Debian's `victoria-metrics` package; `make setup` installs it). It scrapes the same two nodes' expositions
//! as the Prometheus test, with its own Prometheus-compatible scraper (`-promscrape.config`, `honor_labels:
//! true`), and the reducer reads the map back through its `/api/v1/query`: the same listing, the same sums.
//! The server is killed when the test ends, pass or fail.

mod tsdb_support;

use std::path::Path;

use tsdb_support::{
    KillOnDrop, NODE_A, NODE_B, check_reduce_against, free_port, scrape_config, serve_exposition, start_engine,
    wait_for_series,
};

const BINARY: &str = "victoria-metrics";

fn start_victoria_metrics(dir: &Path, port: u16, targets: &[u16]) -> KillOnDrop {
    std::fs::write(dir.join("scrape.yml"), scrape_config(targets)).unwrap();
    let args = [
        format!("-promscrape.config={}", dir.join("scrape.yml").display()),
        format!("-storageDataPath={}", dir.join("data").display()),
        format!("-httpListenAddr=127.0.0.1:{port}"),
        // Samples become visible to queries after -search.latencyOffset (30 s by default, to hide samples that
        // are still arriving); 1 s keeps the test short and changes nothing else.
        "-search.latencyOffset=1s".to_owned(),
    ];
    start_engine(BINARY, "-version", "victoria-metrics", &args, dir)
}

#[test]
fn the_listing_from_a_real_victoria_metrics_sums_both_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let targets = [serve_exposition(NODE_A), serve_exposition(NODE_B)];
    let port = free_port();
    let _server = start_victoria_metrics(dir.path(), port, &targets);
    wait_for_series(dir.path(), port, BINARY);
    check_reduce_against(&format!("http://127.0.0.1:{port}"));
}
