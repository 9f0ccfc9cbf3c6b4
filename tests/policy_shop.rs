//! `netmap-reduce --format networkpolicy` on the demo shop (`testkit/src/e2e/shop.rs`): the shop's map as the exporter
//! reports it (edges, kinds and per-port connections), its inventory as `kubectl get -o yaml` prints it, and
//! what must come out:
//!
//! - golden outputs (`UPDATE_GOLDEN=1` rewrites them and the generated fixtures; review the diff);
//! - the same policies from the live API (`--kubeconfig`, the fake API server) as from the file;
//! - `--output-dir` writes one marked file per policy, `--prune` removes only marked files that are gone;
//! - strict schema validation of every object (`kubernetes-validate --strict -k 1.33.0`; Cilium's CRD schema);
//! - the semantics, proven by an independent analyzer: np-guard's Network Config Analyzer computes the
//!   connectivity the policies allow between the shop's pods, which must be exactly the observed edges on
//!   their ports plus DNS (`scripts/nca-venv.sh` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use testkit::e2e::cluster::Cluster;
use testkit::e2e::shop;
use testkit::fake_apiserver;

/// The node's address in the fixture (hostNetwork pods have it).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 2);
/// The API server's endpoint in the fixture (`default/kubernetes` EndpointSlice).
const API_SERVER: &str = "192.168.10.1";
const API_PORT: u16 = 6443;
const NODE_LOCAL_DNS: &str = "169.254.20.10";

mod policy_support;

use policy_support::nca::analyzer;
use policy_support::{reduce, shop as path, shop_dir as dir};

/// Compares `actual` with a golden file of this scenario, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    testkit::golden::assert_matches(&dir().join(name), actual.as_bytes());
}

fn cluster() -> Cluster {
    shop::cluster(NODE_IP)
}

/// The inventory as `kubectl get deploy,sts,ds,cronjobs,jobs,pods,services,endpointslices -A -o yaml` prints it,
/// with the API server's EndpointSlice.
fn inventory() -> Value {
    let mut list = cluster().inventory_list();
    list["items"].as_array_mut().unwrap().push(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "endpoints": [{"addresses": [API_SERVER], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}]}));
    list
}

/// The exporter's exposition of the shop: edges, kinds and per-port connections.
fn snapshot() -> String {
    let cluster = cluster();
    let mut lines = shop::expected_edge_lines();
    let mut kinds = BTreeSet::new();
    for (client, ns, server, server_ns, _) in shop::expected_edges() {
        kinds.insert((client, ns));
        if let Some(server_ns) = server_ns {
            kinds.insert((server, server_ns));
        }
    }
    for (workload, ns) in kinds {
        let kind = match cluster.workloads.iter().find(|w| w.name == workload) {
            Some(w) => format!("{:?}", w.controller),
            None => "Service".to_owned(),
        };
        lines.push(format!(
            "network_mapper_workload_info{{workload=\"{workload}\",namespace=\"{ns}\",kind=\"{kind}\"}} 1"
        ));
    }
    for (client, ns, server, server_ns, port, n) in shop::expected_connection_series() {
        let server_ns = server_ns.map(|s| format!(",server_namespace=\"{s}\"")).unwrap_or_default();
        lines.push(format!(
            "network_mapper_edge_connections_total{{client=\"{client}\",namespace=\"{ns}\",server=\"{server}\"{server_ns},port=\"{port}\"}} {n}"
        ));
    }
    format!("{}\n# EOF\n", lines.join("\n"))
}

/// The pods NetworkPolicies govern (hostNetwork pods are the node's) and the namespaces, for the analyzer.
fn pods_and_namespaces() -> (String, String) {
    let items = inventory()["items"].as_array().unwrap().clone();
    let pods: Vec<Value> =
        items.into_iter().filter(|o| o["kind"] == "Pod" && o["spec"]["hostNetwork"] != json!(true)).collect();
    let mut names: BTreeSet<String> = ["default", "kube-system"].map(String::from).into();
    names.extend(cluster().workloads.iter().map(|w| w.namespace.to_owned()));
    let namespaces: Vec<Value> = names
        .iter()
        .map(|ns| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}})
        })
        .collect();
    let list = |items: Vec<Value>| {
        serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap()
    };
    (list(pods), list(namespaces))
}

/// Writes (under UPDATE_GOLDEN) or checks the generated fixtures, so they stay what the scenario describes.
#[test]
fn fixtures_match_the_shop_scenario() {
    let (pods, namespaces) = pods_and_namespaces();
    golden("inventory.yaml", &serde_yaml::to_string(&inventory()).unwrap());
    golden("input.prom", &snapshot());
    golden("pods.yaml", &pods);
    golden("namespaces.yaml", &namespaces);
}

/// The golden cases: output file → extra arguments.
const CASES: &[(&str, &[&str])] = &[
    ("networkpolicy-ingress.yaml", &[]),
    ("networkpolicy-both.yaml", &["--policy-direction", "both", "--node-local-dns", NODE_LOCAL_DNS]),
    ("cilium-both.yaml", &["--policy-format", "cilium", "--policy-direction", "both"]),
    ("networkpolicy-allow-from.yaml", &["--allow-from-cidr", "192.168.10.0/24", "--no-default-deny"]),
];

fn policies(extra: &[&str]) -> (String, String) {
    let (input, inventory) = (path("input.prom"), path("inventory.yaml"));
    let mut args = vec![input.as_str(), "--format", "networkpolicy", "--inventory-file", inventory.as_str()];
    args.extend(extra);
    let output = reduce(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

#[test]
fn golden_policies_of_the_shop() {
    for (file, extra) in CASES {
        let (stdout, stderr) = policies(extra);
        golden(file, &stdout);
        // What cannot be expressed is said on stderr and in the header, never silently dropped.
        for note in stderr.lines() {
            let note = note.trim_start_matches("netmap-reduce: ");
            assert!(stdout.contains(note), "{file}: stderr note missing from the header: {note}");
        }
    }
}

#[test]
fn selectors_are_stable_and_hostnetwork_and_outside_peers_are_explained() {
    let (stdout, stderr) = policies(&["--policy-direction", "both"]);
    for volatile in [
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "job-name",
        "controller-uid",
        "batch.kubernetes.io/",
        "apps.kubernetes.io/pod-index",
    ] {
        assert!(!stdout.contains(volatile), "a selector uses {volatile}");
    }
    assert!(stderr.contains("api.payment-gateway.example (outside the cluster"), "{stderr}");
    assert!(stdout.contains("- ipBlock:\n            cidr: 192.168.10.1/32"), "the API server by address:\n{stdout}");
}

#[test]
fn the_live_api_gives_the_same_policies_as_the_file() {
    let api = fake_apiserver::FakeApi::with_yaml(&serde_yaml::to_string(&inventory()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(tmp.path());
    for (_, extra) in CASES {
        let (from_file, _) = policies(extra);
        let input = path("input.prom");
        let mut args = vec![input.as_str(), "--format", "networkpolicy", "--kubeconfig", kubeconfig.to_str().unwrap()];
        args.extend(*extra);
        let output = reduce(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), from_file, "{extra:?}");
    }
}

#[test]
fn output_dir_writes_marked_files_and_prune_removes_only_marked_stale_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("policies");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("shop.gone-ingress.yaml"), "# generated by netmap-reduce\nkind: NetworkPolicy\n").unwrap();
    std::fs::write(out.join("mine.yaml"), "kind: NetworkPolicy\n").unwrap();
    let (input, inventory) = (path("input.prom"), path("inventory.yaml"));
    let out_arg = out.display().to_string();
    let args = ["--format", "networkpolicy", "--inventory-file", &inventory, "--output-dir", &out_arg];
    let run = |prune: bool| {
        let mut all = vec![input.as_str()];
        all.extend(args);
        if prune {
            all.push("--prune");
        }
        let output = reduce(&all);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.stdout.is_empty());
    };
    run(false);
    assert!(out.join("shop.gone-ingress.yaml").exists(), "without --prune nothing is removed");
    run(true);
    assert!(!out.join("shop.gone-ingress.yaml").exists(), "--prune removes a marked file whose policy is gone");
    assert!(out.join("mine.yaml").exists(), "--prune keeps files without the marker");
    let (stream, _) = policies(&[]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.file_name().unwrap() != "mine.yaml")
        .collect();
    files.sort();
    let documents: Vec<&str> = stream.split("---\n").skip(1).collect();
    assert_eq!(files.len(), documents.len());
    for (file, document) in files.iter().zip(documents) {
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(text, format!("# generated by netmap-reduce\n{document}"), "{}", file.display());
    }
    assert!(std::fs::read_to_string(out.join("NOTES.txt")).unwrap().starts_with("# generated by netmap-reduce"));
}

/// The validators come from scripts/setup.sh (`make test` runs it); without one the test fails and says so.
fn require_tool(tool: &str) {
    let found = Command::new(tool).arg("--help").output().is_ok();
    assert!(found, "{tool} is not installed: run scripts/setup.sh (make test does)");
}

#[test]
fn every_networkpolicy_passes_strict_schema_validation() {
    require_tool("kubernetes-validate");
    for (file, _) in CASES.iter().filter(|(f, _)| f.starts_with("networkpolicy")) {
        let output =
            Command::new("kubernetes-validate").args(["--strict", "-k", "1.33.0", &path(file)]).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && !text.contains("ERROR"), "{file}: {text}");
        let documents = std::fs::read_to_string(path(file)).unwrap().matches("\nkind: NetworkPolicy").count();
        assert!(documents > 0);
        let passed = text.matches("passed for resource networkpolicy/").count();
        assert_eq!(passed, documents, "{file}: every document is validated:\n{text}");
    }
}

#[test]
fn every_cilium_policy_passes_the_crd_schema() {
    require_tool("python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-cilium.py");
    for (file, _) in CASES.iter().filter(|(f, _)| f.starts_with("cilium")) {
        let output = Command::new("python3").arg(&script).arg(path(file)).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {text}");
        let documents = std::fs::read_to_string(path(file)).unwrap().matches("\nkind: CiliumNetworkPolicy").count();
        assert_eq!(text.matches("ok ").count(), documents, "{file}:\n{text}");
    }
}

/// One allowed connection as the analyzer prints it: `src => dst : conns`, with endpoints renamed to workloads.
type Allowed = BTreeMap<(String, String), BTreeSet<(String, u16)>>;
/// Port 0 stands for "all ports of the protocol", ("ALL", 0) for "All connections".
const ALL: (&str, u16) = ("ALL", 0);

/// Parses the analyzer's `txt_no_fw_rules` output, naming pods by workload (`ns/workload`).
fn parse_nca(text: &str, names: &BTreeMap<String, String>) -> Allowed {
    let mut allowed = Allowed::new();
    for line in text.lines().filter(|l| l.contains(" => ")) {
        let (pair, conns) = line.split_once(" : ").unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let (src, dst) = pair.split_once(" => ").unwrap();
        let rename = |e: &str| names.get(e).cloned().unwrap_or_else(|| e.to_owned());
        let entry = allowed.entry((rename(src), rename(dst))).or_default();
        if conns.trim() == "All connections" {
            entry.insert((ALL.0.to_owned(), ALL.1));
            continue;
        }
        for set in conns.split(';') {
            let set = set.trim().trim_start_matches('{').trim_end_matches('}');
            let (protocols, ports) = match set.split_once(",dst_ports:") {
                Some((p, ports)) => (p, Some(ports)),
                None => (set, None),
            };
            for protocol in protocols.trim_start_matches("protocols:").split(", ") {
                let ports: Vec<u16> = match ports {
                    None => vec![0],
                    Some(list) => list
                        .split(',')
                        .flat_map(|r| {
                            let (a, b) = r.split_once('-').unwrap_or((r, r));
                            a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()
                        })
                        .collect(),
                };
                entry.extend(ports.into_iter().map(|p| (protocol.to_owned(), p)));
            }
        }
    }
    allowed
}

/// The analyzer's endpoint names (`ns/<owner>[Kind]`, `ns/<pod>[Pod]`) → `ns/workload`.
fn nca_names(pods_yaml: &str) -> BTreeMap<String, String> {
    let list: Value = serde_yaml::from_str(pods_yaml).unwrap();
    let mut names = BTreeMap::new();
    for pod in list["items"].as_array().unwrap() {
        let meta = &pod["metadata"];
        let ns = meta["namespace"].as_str().unwrap();
        let workload = meta["labels"]["app.kubernetes.io/name"].as_str().unwrap();
        let owner = &meta["ownerReferences"][0];
        let nca = format!("{ns}/{}[{}]", owner["name"].as_str().unwrap(), owner["kind"].as_str().unwrap());
        names.insert(nca, format!("{ns}/{workload}"));
    }
    names
}

/// What the map says must be allowed with `--policy-direction both --node-local-dns`: every observed edge
/// between pods on its observed ports (an edge seen only through DNS on its Service's target port), the API
/// server by address, DNS from every pod of the client namespaces (to the DNS pods and the node-local cache),
/// DNS into the DNS pods from everywhere, the DNS pods' own traffic out (kube-system gets no default-deny), and
/// open egress for a client that calls names outside the cluster.
fn expected_connectivity() -> Allowed {
    let cluster = cluster();
    let mut expected = Allowed::new();
    let mut add = |src: String, dst: String, conns: Vec<(&str, u16)>| {
        expected.entry((src, dst)).or_default().extend(conns.into_iter().map(|(p, n)| (p.to_owned(), n)));
    };
    let observed: BTreeMap<(&str, &str), u16> =
        shop::expected_connection_series().into_iter().map(|(c, _, s, _, port, _)| ((c, s), port)).collect();
    let has_pods =
        |name: &str| cluster.workloads.iter().any(|w| w.name == name && w.pods.iter().any(|p| !p.host_network));
    for (client, ns, server, server_ns, _) in shop::expected_edges() {
        let src = format!("{ns}/{client}");
        match server_ns {
            Some("default") if server == "kubernetes" => add(src, API_SERVER.to_owned(), vec![("TCP", API_PORT)]),
            Some(server_ns) if has_pods(server) => {
                let port = observed.get(&(client, server)).copied().unwrap_or_else(|| {
                    cluster.services.iter().find(|s| s.backend == Some(server)).expect("a Service").target_port()
                });
                add(src, format!("{server_ns}/{server}"), vec![("TCP", port)]);
            }
            _ => {} // outside the cluster: NetworkPolicy cannot name it (the header says so)
        }
    }
    let dns = vec![("TCP", 53), ("UDP", 53)];
    let client_namespaces: BTreeSet<&str> = shop::expected_edges().iter().map(|e| e.1).collect();
    for w in cluster.workloads.iter().filter(|w| w.pods.iter().any(|p| !p.host_network)) {
        let me = format!("{}/{}", w.namespace, w.name);
        if client_namespaces.contains(w.namespace) {
            add(me.clone(), NODE_LOCAL_DNS.to_owned(), dns.clone());
            if w.name != "coredns" {
                add(me, "kube-system/coredns".to_owned(), dns.clone());
            }
        }
    }
    // A DNS server that is the server of no observed edge gets no policy of its own (nothing was seen that
    // would scope it), and kube-system no default-deny: it stays open. One that is gets DNS from everywhere.
    let dns_server_in_map = shop::expected_edges().iter().any(|e| e.2 == "coredns");
    let into_dns = if dns_server_in_map { dns } else { vec![ALL] };
    add("0.0.0.0-255.255.255.255".to_owned(), "kube-system/coredns".to_owned(), into_dns.clone());
    add("kube-system/coredns".to_owned(), "0.0.0.0-255.255.255.255".to_owned(), vec![ALL]);
    // A client that calls a name outside the cluster keeps its egress open (a NetworkPolicy cannot name it):
    // every address, and every pod whose ingress is not isolated (the DNS pods here).
    let outside: BTreeSet<String> =
        shop::expected_edges().iter().filter(|e| e.3.is_none()).map(|e| format!("{}/{}", e.1, e.0)).collect();
    for client in outside {
        expected.remove(&(client.clone(), NODE_LOCAL_DNS.to_owned()));
        expected.insert((client.clone(), "0.0.0.0-255.255.255.255".to_owned()), [(ALL.0.to_owned(), ALL.1)].into());
        expected.insert(
            (client, "kube-system/coredns".to_owned()),
            into_dns.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
        );
    }
    expected
}

#[test]
#[ignore = "live: installs np-guard's analyzer from PyPI into target/nca-venv (run by `make test`)"]
fn the_analyzer_allows_exactly_the_observed_edges_plus_dns() {
    let output = Command::new(analyzer())
        .args(["--connectivity", &path("networkpolicy-both.yaml"), "--pod_list", &path("pods.yaml")])
        .args(["--ns_list", &path("namespaces.yaml"), "--output_format", "txt_no_fw_rules"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "nca failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    let names = nca_names(&std::fs::read_to_string(path("pods.yaml")).unwrap());
    let actual = parse_nca(&text, &names);
    let expected = expected_connectivity();
    let show = |a: &Allowed| a.iter().map(|((s, d), c)| format!("{s} => {d} : {c:?}")).collect::<Vec<_>>().join("\n");
    assert!(
        actual == expected,
        "the analyzer's connectivity differs from the map\n--- expected\n{}\n--- actual\n{}",
        show(&expected),
        show(&actual)
    );
}
