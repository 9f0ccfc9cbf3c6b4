//! Benchmark of the reduction at cluster scale: a snapshot of 200,000 series (50,000 edges × 4 nodes, the shape
//! of a raw `network_mapper_edge_total` query with `instance`, `job` and `pod` labels) plus 10,000 workload
//! kinds, reduced to ClientIntents. Times parse + sum + join + render, and reports the peak RSS (VmHWM) of the
//! whole process, generated input included. Budget: under 1 s and under 300 MB.
//!
//! Run: `cargo bench --bench reduce` (exits 1 when over budget). With `NETMAP_BENCH_SNAPSHOT=FILE` it also
//! writes the generated API response to FILE, to time the CLI end to end, e.g.
//! `/usr/bin/time -v target/release/netmap-reduce --format intents FILE > /dev/null`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use network_mapper::reduce::input::parse_input;
use network_mapper::reduce::intents::{IntentsVersion, render_intents_stream};
use network_mapper::reduce::model::{Filter, Snapshot};

const NODES: usize = 4;
const CLIENTS: usize = 10_000;
const TARGETS_PER_CLIENT: usize = 5;
const NAMESPACES: usize = 100;
const BUDGET_SECONDS: f64 = 1.0;
const BUDGET_RSS_MB: f64 = 300.0;

fn workload(index: usize) -> (String, String) {
    (format!("service-{index:05}"), format!("team-{:03}", index % NAMESPACES))
}

/// The edge `k` of client `c`: another workload, or (for one in ten) a name outside the cluster.
fn server(c: usize, k: usize) -> (String, Option<String>) {
    if k == TARGETS_PER_CLIENT - 1 && c.is_multiple_of(2) {
        return (format!("api-{c}.example.com"), None);
    }
    let (name, namespace) = workload((c + 1 + k * 97) % CLIENTS);
    (name, Some(namespace))
}

fn api_edges_json() -> String {
    let mut json = String::with_capacity(64 << 20);
    json.push_str(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let mut first = true;
    for node in 0..NODES {
        for c in 0..CLIENTS {
            let (client, namespace) = workload(c);
            for k in 0..TARGETS_PER_CLIENT {
                let (server, server_namespace) = server(c, k);
                let server_namespace =
                    server_namespace.map(|ns| format!(r#","server_namespace":"{ns}""#)).unwrap_or_default();
                let _ = write!(
                    json,
                    r#"{}{{"metric":{{"__name__":"network_mapper_edge_total","client":"{client}","instance":"10.0.0.{node}:9953","job":"network-mapper","namespace":"{namespace}","pod":"network-mapper-{node}","server":"{server}"{server_namespace}}},"value":[1732492800.123,"{}"]}}"#,
                    if first { "" } else { "," },
                    1 + (c + k + node) % 50
                );
                first = false;
            }
        }
    }
    json.push_str("]}}");
    json
}

fn api_kinds_json() -> String {
    let series: Vec<String> = (0..CLIENTS)
        .map(|i| {
            let (name, namespace) = workload(i);
            let kind = ["Deployment", "StatefulSet", "DaemonSet", "CronJob"][i % 4];
            format!(r#"{{"metric":{{"workload":"{name}","namespace":"{namespace}","kind":"{kind}"}},"value":[1,"1"]}}"#)
        })
        .collect();
    format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#, series.join(","))
}

fn exposition(node: usize) -> String {
    let mut text = String::from("# TYPE network_mapper_edge counter\n");
    for c in 0..CLIENTS {
        let (client, namespace) = workload(c);
        for k in 0..TARGETS_PER_CLIENT {
            let (server, server_namespace) = server(c, k);
            let server_namespace = server_namespace.map(|ns| format!(",server_namespace=\"{ns}\"")).unwrap_or_default();
            let _ = writeln!(
                text,
                "network_mapper_edge_total{{client=\"{client}\",namespace=\"{namespace}\",server=\"{server}\"{server_namespace}}} {}",
                1 + (c + k + node) % 50
            );
        }
    }
    text.push_str("# EOF\n");
    text
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// Parses the inputs, reduces and renders intents; returns the elapsed time and the output size.
fn reduce(inputs: &[(&str, &[u8])]) -> (Duration, usize, usize) {
    let start = Instant::now();
    let mut snapshot = Snapshot::default();
    for (name, bytes) in inputs {
        parse_input(name, bytes, &mut snapshot).expect("generated input parses");
    }
    let map = snapshot.into_map(&Filter::default());
    let yaml = render_intents_stream(&map, IntentsVersion::V2beta1);
    let elapsed = start.elapsed();
    let edges = map.clients.iter().map(|c| c.calls.len()).sum();
    (elapsed, edges, yaml.len())
}

fn main() {
    let edges = api_edges_json();
    let kinds = api_kinds_json();
    if let Some(path) = std::env::var_os("NETMAP_BENCH_SNAPSHOT") {
        std::fs::write(&path, &edges).expect("the snapshot file is writable");
    }
    let (elapsed, edge_count, yaml_bytes) =
        reduce(&[("edges.json", edges.as_bytes()), ("kinds.json", kinds.as_bytes())]);
    let json_rss = peak_rss_mb();
    println!(
        "api json:   {} series ({} MB) -> {edge_count} edges, {} KB of intents in {:.3} s; peak RSS {json_rss:.0} MB",
        NODES * CLIENTS * TARGETS_PER_CLIENT,
        edges.len() >> 20,
        yaml_bytes >> 10,
        elapsed.as_secs_f64()
    );
    drop((edges, kinds));

    let nodes: Vec<String> = (0..NODES).map(exposition).collect();
    let inputs: Vec<(&str, &[u8])> = nodes.iter().map(|n| ("node.prom", n.as_bytes())).collect();
    let (text_elapsed, text_edges, _) = reduce(&inputs);
    println!(
        "exposition: {} series in {NODES} scrapes -> {text_edges} edges in {:.3} s; peak RSS so far {:.0} MB",
        NODES * CLIENTS * TARGETS_PER_CLIENT,
        text_elapsed.as_secs_f64(),
        peak_rss_mb()
    );

    let slowest = elapsed.max(text_elapsed).as_secs_f64();
    let within = slowest < BUDGET_SECONDS && json_rss < BUDGET_RSS_MB;
    println!("budget < {BUDGET_SECONDS} s and < {BUDGET_RSS_MB} MB: {}", if within { "PASS" } else { "FAIL" });
    if !within {
        std::process::exit(1);
    }
}
