//! Policies you can apply without fear (docs/policies.md, "Safety"): what the generator does when it cannot
//! see everything, proven by running `netmap-reduce impact` on its output with the whole map and the whole
//! inventory. Under `--namespace`, servers keep their clients from other namespaces; a workload missing from
//! the inventory never gets a default-deny it cannot be let out of; an inventory of another cluster is exit 2;
//! policies from the `--format json` map equal those from the scrape; the self-check stops a set that would
//! deny an observed edge and writes nothing; `--output-dir` never overwrites a file without the marker and an
//! empty map prunes nothing unless `--allow-empty` says it is meant.

mod policy_support;

use std::path::Path;

use policy_support::{assert_exit, generate, reduce, shop, texts};
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `impact` of `policies` on the whole shop map and inventory must deny nothing.
fn denies_nothing(dir: &Path, policies: &str) {
    let file = write(dir, "generated.yaml", policies);
    let output =
        reduce(&["impact", "--policies", &file, &shop("input.prom"), "--inventory-file", &shop("inventory.yaml")]);
    assert_exit(&output, 0, &["0 of 17 observed edge(s) would be denied"]);
}

/// The shop's inventory without the objects of one workload (its controller, ReplicaSet, pods and Service).
fn inventory_without(dir: &Path, workload: &str) -> String {
    let text = std::fs::read_to_string(shop("inventory.yaml")).unwrap();
    let mut list: Value = serde_yaml::from_str(&text).unwrap();
    list["items"].as_array_mut().unwrap().retain(|item| {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        !(name == workload || name.starts_with(&format!("{workload}-")))
    });
    write(dir, &format!("inventory-without-{workload}.yaml"), &serde_yaml::to_string(&list).unwrap())
}

fn generate_with(inventory: &str, extra: &[&str]) -> (String, String) {
    let input = shop("input.prom");
    let mut args = vec![input.as_str(), "--format", "networkpolicy", "--inventory-file", inventory];
    args.extend(extra);
    let output = reduce(&args);
    assert_exit(&output, 0, &[]);
    texts(&output)
}

#[test]
fn under_a_namespace_its_servers_keep_their_clients_from_other_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let policies = generate(&["-n", "payments", "--policy-direction", "both"]);
    let namespaces: Vec<&str> = policies.lines().filter_map(|l| l.strip_prefix("  namespace: ")).collect();
    assert!(!namespaces.is_empty() && namespaces.iter().all(|ns| *ns == "payments"), "{namespaces:?}");
    let ingress = policies.split("---\n").find(|d| d.contains("name: payments-ingress")).unwrap();
    for client in ["cart", "checkout", "email-reminder"] {
        assert!(ingress.contains(&format!("app.kubernetes.io/name: {client}")), "{client} missing:\n{ingress}");
    }
    denies_nothing(dir.path(), &policies);
}

#[test]
fn a_workload_missing_from_the_inventory_keeps_its_namespace_free_of_default_deny() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory_without(dir.path(), "cart");
    let (policies, stderr) = generate_with(&inventory, &["--policy-direction", "both"]);
    // cart is a server (so no default-deny ingress) and a client (so no default-deny egress) in shop.
    for direction in ["ingress", "egress"] {
        let why = format!("no default-deny {direction} in namespace shop: shop/cart is not in the inventory");
        assert!(stderr.contains(&why) && policies.contains(&why), "{stderr}");
    }
    assert!(!policies.contains("name: default-deny\n  namespace: shop"), "{policies}");
    assert!(policies.contains("name: default-deny\n  namespace: payments"), "payments keeps its own");
    denies_nothing(dir.path(), &policies);
}

#[test]
fn a_client_missing_from_the_inventory_is_allowed_as_any_source_on_its_ports() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory_without(dir.path(), "loadgenerator");
    let (policies, stderr) = generate_with(&inventory, &["--policy-direction", "both"]);
    assert!(stderr.contains("ingress of shop/frontend allows any source on TCP 8080"), "{stderr}");
    assert!(stderr.contains("no default-deny egress in namespace shop: shop/loadgenerator"), "{stderr}");
    denies_nothing(dir.path(), &policies);
}

#[test]
fn edges_a_filter_leaves_out_are_listed_as_denied_by_that_choice() {
    let (policies, stderr) = generate_with(&shop("inventory.yaml"), &["--min-count", "2"]);
    let denied: Vec<&str> = stderr.lines().filter(|l| l.contains("left out by --min-count 2, so denied: ")).collect();
    assert_eq!(denied.len(), 5, "the five edges seen once:\n{stderr}");
    assert!(
        denied[0].ends_with(
            "cart in namespace shop calls payments in namespace payments on TCP 50051: ingress \
         of payments/payments is isolated by payments/default-deny, payments/payments-ingress and no rule allows it; \
         1 observation(s), last seen unknown"
        ),
        "{}",
        denied[0]
    );
    assert!(policies.contains("#   - left out by --min-count 2, so denied: "), "the header says it too");
}

#[test]
fn an_inventory_of_another_cluster_is_exit_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let other = write(dir.path(), "other.yaml", "apiVersion: v1\nkind: List\nitems: []\n");
    let output = reduce(&[&shop("input.prom"), "--format", "networkpolicy", "--inventory-file", &other]);
    assert_exit(&output, 2, &["other.yaml", "no Kubernetes objects found"]);
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: elsewhere, labels: {app: x}}\n";
    let other = write(dir.path(), "other.yaml", pods);
    let output = reduce(&[&shop("input.prom"), "--format", "networkpolicy", "--inventory-file", &other]);
    assert_exit(&output, 2, &["other.yaml: the inventory names none of the map's 10 workload(s)", "-A -o yaml"]);
    assert!(output.stdout.is_empty());
}

#[test]
fn policies_from_the_json_map_equal_policies_from_the_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let json = reduce(&[&shop("input.prom"), "--format", "json"]);
    assert_exit(&json, 0, &[]);
    let map = write(dir.path(), "map.json", &texts(&json).0);
    assert!(texts(&json).0.contains("\"ports\""), "the JSON map carries the ports");
    for extra in [
        &[][..],
        &["--policy-direction", "both", "--node-local-dns", "169.254.20.10"],
        &["--policy-format", "cilium", "--policy-direction", "both"],
    ] {
        let mut args = vec![map.as_str(), "--format", "networkpolicy", "--inventory-file"];
        let inventory = shop("inventory.yaml");
        args.push(&inventory);
        args.extend(extra);
        let from_json = reduce(&args);
        assert_exit(&from_json, 0, &[]);
        assert_eq!(texts(&from_json).0, generate(extra), "{extra:?}");
    }
}

/// Deployment `a` selects its pods by the absence of a label, which `b`'s pods (bare, only volatile labels,
/// so no selector of their own) share: `a`'s ingress policy isolates `b` too, and `c`'s calls to `b` on 9000
/// would be cut. Nothing in the plan says so; the self-check does.
const OVERLAP_INVENTORY: &str = "apiVersion: v1
kind: List
items:
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: a, namespace: app},
   spec: {selector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}, template: {metadata: {labels: {app: a}}}}}
- {apiVersion: v1, kind: Pod, metadata: {name: a-1, namespace: app, labels: {app: a},
   ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: a, uid: u1, controller: true}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: app, labels: {pod-template-hash: x}}}
- {apiVersion: v1, kind: Pod, metadata: {name: c, namespace: app, labels: {app: c, tier: web}}}
";
const OVERLAP_MAP: &str = "network_mapper_edge_total{client=\"c\",namespace=\"app\",server=\"a\",server_namespace=\"app\"} 3
network_mapper_edge_total{client=\"c\",namespace=\"app\",server=\"b\",server_namespace=\"app\"} 2
network_mapper_edge_connections_total{client=\"c\",namespace=\"app\",server=\"a\",server_namespace=\"app\",port=\"8080\"} 3
network_mapper_edge_connections_total{client=\"c\",namespace=\"app\",server=\"b\",server_namespace=\"app\",port=\"9000\"} 2
";

#[test]
fn the_self_check_stops_a_set_that_would_deny_an_observed_edge_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (map, inventory) =
        (write(dir.path(), "map.prom", OVERLAP_MAP), write(dir.path(), "inv.yaml", OVERLAP_INVENTORY));
    let out = dir.path().join("policies").display().to_string();
    for extra in [&[][..], &["--output-dir", &out]] {
        let mut args = vec![map.as_str(), "--format", "networkpolicy", "--inventory-file", inventory.as_str()];
        args.extend(extra);
        let output = reduce(&args);
        assert_exit(
            &output,
            1,
            &[
                "self-check failed",
                "c in namespace app calls b on TCP 9000: ingress of app/b is isolated by app/a-ingress",
            ],
        );
        assert!(output.stdout.is_empty(), "{}", texts(&output).0);
        assert!(!Path::new(&out).exists(), "nothing is written");
    }
}

#[test]
fn output_dir_never_overwrites_a_file_without_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policies");
    std::fs::create_dir_all(&out).unwrap();
    let out_arg = out.display().to_string();
    let args = [
        &shop("input.prom"),
        "--format",
        "networkpolicy",
        "--inventory-file",
        &shop("inventory.yaml"),
        "--output-dir",
        &out_arg,
    ];
    for name in ["shop.cart-ingress.yaml", "NOTES.txt"] {
        let mine = out.join(name);
        std::fs::write(&mine, "# mine\nkind: NetworkPolicy\n").unwrap();
        let output = reduce(&args);
        assert_exit(
            &output,
            2,
            &[&mine.display().to_string(), "was not written by netmap-reduce", "nothing was written"],
        );
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "# mine\nkind: NetworkPolicy\n");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "no other file was written");
        std::fs::remove_file(&mine).unwrap();
    }
    assert_exit(&reduce(&args), 0, &[]);
    assert_exit(&reduce(&args), 0, &[]);
}

#[test]
fn prune_with_an_empty_map_removes_nothing_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policies").display().to_string();
    let (input, inventory) = (shop("input.prom"), shop("inventory.yaml"));
    let base = [
        input.as_str(),
        "--format",
        "networkpolicy",
        "--inventory-file",
        inventory.as_str(),
        "--output-dir",
        out.as_str(),
    ];
    assert_exit(&reduce(&base), 0, &[]);
    let files = std::fs::read_dir(&out).unwrap().count();
    let empty = [&base[..], &["-n", "nonexistent", "--prune"]].concat();
    assert_exit(&reduce(&empty), 2, &[&out, "the map is empty", "nothing was removed", "--allow-empty"]);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), files);
    let allowed = reduce(&[&empty[..], &["--allow-empty"]].concat());
    assert_exit(&allowed, 0, &["removed", "No connections found"]);
    let left: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["NOTES.txt"], "every generated policy is gone; the notes of the last run that wrote them stay");
}
