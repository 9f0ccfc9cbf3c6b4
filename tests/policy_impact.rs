//! `netmap-reduce impact` on the demo shop (tests/fixtures/policy/shop/): the generator's own policies deny
//! nothing the map holds (NetworkPolicy and Cilium, every direction); a set missing a policy lists each edge it
//! would deny with port, count and last seen (golden text and JSON) and exits 1; the same set as a file, a
//! `kubectl get -o yaml` List or a directory, and the inventory from a file or the API, give the same answer;
//! bad policy files, a wrong inventory and an unreachable Prometheus exit 2 naming what is wrong; what the
//! inventory cannot decide is unknown, not denied; and the NetworkPolicy and Cilium renderings of one plan let
//! the same traffic between pods through (the Cilium reader checked against the analyzer-checked one).

mod policy_support;

use std::path::Path;

use policy_support::{assert_exit, generate, reduce, shop, texts};
use serde_json::Value;
use testkit::fake_apiserver::FakeApi;

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/impact").join(name);
    testkit::golden::assert_matches(&path, actual.as_bytes());
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn impact(policies: &str, extra: &[&str]) -> std::process::Output {
    let (map, inventory) = (shop("input.prom"), shop("inventory.yaml"));
    let mut args = vec!["impact", "--policies", policies, map.as_str(), "--inventory-file", inventory.as_str()];
    args.extend(extra);
    reduce(&args)
}

/// The shop's ingress policies without `cart-ingress`: cart's three clients are cut off.
fn without_cart_ingress() -> String {
    let stream = generate(&[]);
    stream.split("---\n").filter(|d| !d.contains("name: cart-ingress")).collect::<Vec<_>>().join("---\n")
}

/// The shop's map as `--format json`, every edge seen first at 03:04:05 and last at 04:05:06.
fn map_with_times(dir: &Path) -> String {
    let output = reduce(&[&shop("input.prom"), "--format", "json"]);
    let mut edges: Value = serde_json::from_slice(&output.stdout).unwrap();
    for edge in edges.as_array_mut().unwrap() {
        edge["first_seen"] = "2026-01-02T03:04:05Z".into();
        edge["last_seen"] = "2026-01-02T04:05:06Z".into();
    }
    write(dir, "map.json", &serde_json::to_string_pretty(&edges).unwrap())
}

#[test]
fn the_generators_own_policies_deny_no_observed_edge() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &[][..],
        &["--policy-direction", "both", "--node-local-dns", "169.254.20.10"],
        &["--policy-format", "cilium", "--policy-direction", "both"],
        &["--policy-direction", "egress", "--no-default-deny"],
    ] {
        let policies = write(dir.path(), "policies.yaml", &generate(extra));
        let output = impact(&policies, &[]);
        assert_exit(&output, 0, &["0 of 17 observed edge(s) would be denied", "0 edge port(s) cannot be told"]);
        assert!(output.stdout.is_empty(), "{extra:?}: {}", texts(&output).0);
    }
}

#[test]
fn a_set_missing_a_policy_lists_what_it_would_deny_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let policies = write(dir.path(), "policies.yaml", &without_cart_ingress());
    let (map, inventory) = (map_with_times(dir.path()), shop("inventory.yaml"));
    let args = ["impact", "--policies", &policies, &map, "--inventory-file", &inventory];
    let text = reduce(&args);
    assert_exit(&text, 1, &["3 of 17 observed edge(s) would be denied (3 edge port(s))"]);
    golden("denied.txt", &texts(&text).0);
    let json = reduce(&[&args[..], &["--format", "json"]].concat());
    assert_exit(&json, 1, &[]);
    golden("denied.json", &texts(&json).0);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["denied"].as_array().unwrap().len(), 3);
    assert_eq!(report["denied"][0]["last_seen"], "2026-01-02T04:05:06Z");
}

#[test]
fn a_list_a_directory_and_the_live_api_give_the_same_answer_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let stream = without_cart_ingress();
    let file = write(dir.path(), "policies.yaml", &stream);
    let expected = impact(&file, &[]);
    assert_exit(&expected, 1, &[]);
    // `kubectl get networkpolicy -A -o yaml` prints one List.
    let items: Vec<Value> = serde_yaml::Deserializer::from_str(&stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let listed = write(dir.path(), "list.yaml", &serde_yaml::to_string(&list).unwrap());
    assert_eq!(impact(&listed, &[]).stdout, expected.stdout);
    // A directory of files, one policy each, in a subdirectory, with other manifests beside them.
    let tree = dir.path().join("tree/netpol");
    std::fs::create_dir_all(&tree).unwrap();
    for (index, document) in stream.split("---\n").skip(1).enumerate() {
        write(&tree, &format!("{index:02}.yaml"), document);
    }
    write(&tree, "kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    let from_dir = impact(&dir.path().join("tree").display().to_string(), &[]);
    assert_exit(&from_dir, 1, &["skipped 1 object(s) that are not policies"]);
    assert_eq!(from_dir.stdout, expected.stdout);
    // The inventory from the API (the fake API server serves the same objects).
    let inventory = std::fs::read_to_string(shop("inventory.yaml")).unwrap();
    let api = FakeApi::with_yaml(&inventory);
    let kubeconfig = api.write_kubeconfig(dir.path()).display().to_string();
    let args = ["impact", "--policies", &file, &shop("input.prom"), "--kubeconfig", &kubeconfig];
    let live = reduce(&args);
    assert_exit(&live, 1, &[]);
    assert_eq!(live.stdout, expected.stdout);
}

#[test]
fn bad_policy_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("broken.yaml", "kind: [\n", &["broken.yaml: document 1: malformed YAML"]),
        (
            "nons.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}}\n",
            &["nons.yaml", "has no metadata.namespace"],
        ),
        (
            "deny.yaml",
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: d, namespace: shop}\n\
             spec: {endpointSelector: {}, egressDeny: [{toEntities: [world]}]}\n",
            &["deny.yaml", "egressDeny", "does not evaluate"],
        ),
        (
            "deployments.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: shop}\n",
            &["deployments.yaml", "no NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy found"],
        ),
    ];
    for (name, text, needles) in cases {
        assert_exit(&impact(&write(dir.path(), name, text), &[]), 2, needles);
    }
    let missing = dir.path().join("nope.yaml").display().to_string();
    assert_exit(&impact(&missing, &[]), 2, &["nope.yaml: no such file"]);
}

#[test]
fn a_wrong_inventory_or_an_unreachable_source_is_trouble_not_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let policies = write(dir.path(), "policies.yaml", &without_cart_ingress());
    let other = write(
        dir.path(),
        "other-cluster.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: x, namespace: elsewhere, labels: {app: x}}}\n",
    );
    let args = ["impact", "--policies", &policies, &shop("input.prom"), "--inventory-file", &other];
    assert_exit(&reduce(&args), 2, &["other-cluster.yaml: the inventory names none of the map's", "kubectl get"]);
    let url = format!("http://127.0.0.1:{}", testkit::http::free_port());
    let args = ["impact", "--policies", &policies, "--prometheus", &url, "--inventory-file", &shop("inventory.yaml")];
    assert_exit(&reduce(&args), 2, &[&url, "cannot query Prometheus"]);
}

#[test]
fn what_the_inventory_cannot_decide_is_listed_as_unknown_not_denied() {
    let dir = tempfile::tempdir().unwrap();
    // The shop's inventory has no Namespace objects: a selector on a namespace label cannot be decided.
    let by_team = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: cart, namespace: shop}\n\
                   spec:\n  podSelector: {matchLabels: {app.kubernetes.io/name: cart}}\n  \
                   ingress: [{from: [{namespaceSelector: {matchLabels: {team: shop}}}]}]\n";
    let output = impact(&write(dir.path(), "by-team.yaml", by_team), &[]);
    assert_exit(&output, 0, &["0 of 17 observed edge(s) would be denied", "3 edge port(s) cannot be told"]);
    let (stdout, _) = texts(&output);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.starts_with(
            "unknown: catalog in namespace shop calls cart on TCP 8070: cannot tell: the labels of namespace shop \
             are not in the inventory (add `namespaces` to the kubectl get)"
        ),
        "{stdout}"
    );
}

/// The two renderings of one plan, read back by their two translators, must let the same traffic between the
/// shop's pods through, pair by pair and port by port: a differential check of the Cilium reader against the
/// NetworkPolicy reader (which the analyzer checks). The one planned difference is left out: a client that calls
/// names outside the cluster has open egress in NetworkPolicy and `toFQDNs` in Cilium.
#[test]
fn the_kubernetes_and_cilium_renderings_let_the_same_pod_traffic_through() {
    use network_mapper::reduce::impact::evaluate::{Endpoint, Evaluator, Pod};
    use network_mapper::reduce::impact::load::policies_from_text;
    use network_mapper::reduce::policy::ClusterInfo;

    let both = ["--policy-direction", "both"];
    let kubernetes = policies_from_text("k8s", &generate(&both)).unwrap();
    let cilium =
        policies_from_text("cilium", &generate(&[&both[..], &["--policy-format", "cilium"]].concat())).unwrap();
    let cluster = ClusterInfo::from_yaml(&std::fs::read_to_string(shop("inventory.yaml")).unwrap()).unwrap();
    let pods: Vec<Pod<'_>> = cluster
        .workloads()
        .filter(|w| !w.host_network)
        .flat_map(|w| {
            w.pod_labels().iter().map(move |labels| Pod {
                namespace: &w.namespace,
                labels: Some(labels),
                named_ports: Some(&w.named_ports),
            })
        })
        .collect();
    let (k8s, cil) = (
        Evaluator { policies: &kubernetes, namespaces: &cluster.namespaces },
        Evaluator { policies: &cilium, namespaces: &cluster.namespaces },
    );
    let mut compared = 0;
    for client in pods.iter().filter(|p| p.namespace != "payments") {
        for server in &pods {
            let (a, b) = (k8s.reach(*client, Endpoint::Pod(*server)), cil.reach(*client, Endpoint::Pod(*server)));
            assert_eq!((a.sure(), a.possible()), (b.sure(), b.possible()), "{client:?} => {server:?}");
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared} pairs");
}

#[test]
fn a_changed_policy_replaces_the_clusters_version_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let current = write(dir.path(), "current.yaml", &generate(&[]));
    let changed = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: cart-ingress, namespace: shop}\n\
                   spec: {podSelector: {matchLabels: {app.kubernetes.io/name: cart}}, policyTypes: [Ingress], ingress: []}\n";
    let changed = write(dir.path(), "cart-ingress.yaml", changed);
    assert_exit(&impact(&current, &[]), 0, &[]);
    let output = impact(&current, &["--policies", &changed]);
    assert_exit(&output, 1, &["1 policy(ies) given more than once: the last version counts", "3 of 17"]);
    // The same three edges as without cart-ingress, now isolated by the changed version of it too.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/impact/denied.txt");
    let expected = std::fs::read_to_string(golden)
        .unwrap()
        .replace("last seen 2026-01-02T04:05:06Z", "last seen unknown")
        .replace("isolated by shop/default-deny", "isolated by shop/cart-ingress, shop/default-deny");
    assert_eq!(texts(&output).0, expected);
}
