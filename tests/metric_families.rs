//! Every row of the exporter's table of metric families is on `/metrics`, and `/metrics` shows nothing else:
//! the replay of the golden scenario (`--print-metrics`) shows every family but the API inventory's, which the
//! binary shows against the fake API server. Each series carries only its row's labels, and a fixed label only
//! the row's values.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use network_mapper::exporter::metrics::{FamilyInfo, MetricType, Metrics, Shown};
use testkit::cmd::Guarded;
use testkit::fake_apiserver::FakeApi;
use testkit::http::{free_port, get_as};

const CAPTURE: &str = "tests/fixtures/scrape/capture.pcap";
const INVENTORY: &str = "tests/fixtures/inventory/cluster.yaml";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

/// The name of a family's `# TYPE` line: its samples' name without `_total` or `_info`.
fn type_name(family: &FamilyInfo) -> String {
    let exposed = &family.exposed_name;
    let name = match family.spec.metric_type {
        MetricType::Counter => exposed.strip_suffix("_total"),
        MetricType::Info => exposed.strip_suffix("_info"),
        MetricType::Gauge | MetricType::Histogram => None,
    };
    name.unwrap_or(exposed).to_string()
}

/// The families of an OpenMetrics exposition, each with its sample lines.
fn families(exposition: &str) -> BTreeMap<String, Vec<String>> {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            families.entry(name.clone()).or_default();
            current = Some(name);
        } else if !line.starts_with('#') {
            let name = current.clone().unwrap_or_else(|| panic!("a sample before any TYPE line: {line}"));
            families.entry(name).or_default().push(line.to_string());
        }
    }
    families
}

/// The `(label, value)` pairs of a sample line.
fn labels(sample: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = sample.split_once('{') else { return Vec::new() };
    let inside = &rest[..rest.rfind('}').unwrap()];
    let pairs = inside.split("\",").filter(|p| !p.is_empty());
    pairs
        .map(|p| {
            let (name, value) = p.split_once("=\"").unwrap();
            (name.to_string(), value.trim_end_matches('"').to_string())
        })
        .collect()
}

/// What is wrong with the series of `family` on `/metrics`.
fn label_problems(family: &FamilyInfo, samples: &[String]) -> Vec<String> {
    let rows: BTreeMap<&str, Option<BTreeSet<&str>>> =
        family.labels.iter().map(|l| (l.name, l.values.as_ref().map(|v| v.iter().copied().collect()))).collect();
    let mut problems = BTreeSet::new();
    for sample in samples {
        for (name, value) in labels(sample) {
            let problem = match rows.get(name.as_str()) {
                _ if name == "le" && family.spec.metric_type == MetricType::Histogram => None,
                None => Some(format!("{}: label {name} is not in its row", family.exposed_name)),
                Some(Some(values)) if !values.contains(value.as_str()) => {
                    Some(format!("{}: {name}=\"{value}\" is not a value of its row", family.exposed_name))
                }
                Some(_) => None,
            };
            problems.extend(problem);
        }
    }
    problems.into_iter().collect()
}

fn replay() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_network-mapper"))
        .args(["--pcap-file", CAPTURE, "--inventory-file", INVENTORY, "--node-name", "node-a"])
        .args(["--cluster-domain", "cluster.local", "--procfs-root", "tests/fixtures/proc", "--print-metrics"])
        .output()
        .expect("network-mapper runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// `/metrics` of the binary against the fake API, once the API inventory's families are there.
fn against_the_api(wanted: &[String]) -> String {
    let api = FakeApi::with_yaml(&std::fs::read_to_string(INVENTORY).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_network-mapper"));
    command
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .args(["--pcap-file", CAPTURE, "--node-name", "node-a", "--no-socket-scan"])
        .arg("--kubeconfig")
        .arg(api.write_kubeconfig(dir.path()))
        .args(["--listen-address", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null());
    let _exporter = Guarded::spawn(&mut command).unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some((200, text)) = get_as(&url, Some(OPENMETRICS)) {
            let shown = families(&text);
            if wanted.iter().all(|name| shown.get(name).is_some_and(|s| !s.is_empty())) {
                return text;
            }
            last = text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

#[test]
fn every_family_of_the_table_is_served_with_its_labels_and_nothing_else_is() {
    let table = Metrics::families();
    let api_only = |f: &&FamilyInfo| matches!(f.spec.shown, Shown::ApiInventory | Shown::ApiFetching);
    let replayed = families(&replay());
    let wanted: Vec<String> = table.iter().filter(api_only).map(type_name).collect();
    let live = families(&against_the_api(&wanted));
    let mut problems = Vec::new();
    for family in &table {
        let (shown, run) = if api_only(&family) { (&live, "against the API") } else { (&replayed, "in replay") };
        match shown.get(&type_name(family)).filter(|s| !s.is_empty()) {
            None => problems.push(format!("{}: a row of the table, not on /metrics {run}", family.exposed_name)),
            Some(samples) => problems.extend(label_problems(family, samples)),
        }
    }
    let known: BTreeSet<String> = table.iter().map(type_name).collect();
    let served = replayed.keys().chain(live.keys()).collect::<BTreeSet<_>>();
    let unknown = served.into_iter().filter(|name| !known.contains(*name));
    problems.extend(unknown.map(|name| format!("{name}: on /metrics, not a row of the table")));
    assert!(problems.is_empty(), "/metrics against the table of families:\n  {}", problems.join("\n  "));
}
