//! One naming rule (docs/design.md §4.1, `sources::inventory::naming`): the exporter names the workload it counts
//! and the reducer names the workload it writes a policy for the same way, for every shape of pod, so a policy
//! always selects the name an edge carries.

use network_mapper::reduce::policy::ClusterInfo;
use network_mapper::resolve::{Resolution, ResolveConfig, Resolver};
use network_mapper::sources::inventory::naming::{MAX_OWNER_HOPS, SERVICE_NAME_ANNOTATION, WORKLOAD_NAME_ANNOTATION};
use network_mapper::sources::inventory::parse_inventory;
use serde_json::{Value, json};
use testkit::k8s::{self, Pod};

/// 2026-03-01T00:00:00Z: after every object's creation.
const MARCH: i64 = 1_772_323_200 * 1_000_000;

/// One pod of each shape, with the objects its chain needs and the name and kind it must get.
fn table() -> Vec<(Vec<Value>, &'static str, &'static str)> {
    let pod = |name: &str, ip: &str| Pod::new("shop", name, ip);
    let rs = |name: &str, deployment: &str| k8s::owned("ReplicaSet", "shop", name, "Deployment", deployment);
    let annotated = |pairs: &[(&str, &str)]| {
        let map: serde_json::Map<String, Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        json!({"metadata": {"annotations": map}})
    };
    let mut deep = vec![pod("deep-pod", "10.0.0.9").owner("Chain", "link-0").json()];
    deep.extend(
        (0..MAX_OWNER_HOPS + 2)
            .map(|i| k8s::owned("Chain", "shop", &format!("link-{i}"), "Chain", &format!("link-{}", i + 1))),
    );
    vec![
        (
            vec![
                pod("checkout-7d9-a", "10.0.0.1").owner("ReplicaSet", "checkout-7d9").json(),
                rs("checkout-7d9", "checkout"),
            ],
            "checkout",
            "Deployment",
        ),
        (
            vec![
                pod("front-7d9-a", "10.0.0.2")
                    .owner("ReplicaSet", "front-7d9")
                    .with(annotated(&[(WORKLOAD_NAME_ANNOTATION, "storefront")]))
                    .json(),
                rs("front-7d9", "front"),
            ],
            "storefront",
            "Deployment",
        ),
        (
            vec![
                pod("legacy", "10.0.0.3")
                    .with(annotated(&[(WORKLOAD_NAME_ANNOTATION, ""), (SERVICE_NAME_ANNOTATION, "legacy.ui")]))
                    .json(),
            ],
            "legacy_ui",
            "Pod",
        ),
        (
            vec![
                pod("blank-7d9-a", "10.0.0.4")
                    .owner("ReplicaSet", "blank-7d9")
                    .with(annotated(&[(WORKLOAD_NAME_ANNOTATION, "")]))
                    .json(),
                rs("blank-7d9", "blank"),
            ],
            "blank",
            "Deployment",
        ),
        (
            vec![pod("api.v2-5f5-z", "10.0.0.5").owner("ReplicaSet", "api.v2-5f5").json(), rs("api.v2-5f5", "api.v2")],
            "api_v2",
            "Deployment",
        ),
        (vec![pod("debug", "10.0.0.6").json()], "debug", "Pod"),
        (
            vec![
                pod("web-6f8-p", "10.0.0.7").owner("ReplicaSet", "web-6f8").json(),
                k8s::owned("ReplicaSet", "shop", "web-6f8", "Rollout", "web"),
            ],
            "web",
            "Rollout",
        ),
        (
            vec![
                pod("report-29-q", "10.0.0.8").owner("Job", "report-29").json(),
                k8s::owned("Job", "shop", "report-29", "CronJob", "report"),
            ],
            "report",
            "CronJob",
        ),
        (deep, "link-9", "Chain"),
    ]
}

fn exporter_names(objects: &[Value], ip: &str) -> (String, String) {
    let inventory = parse_inventory(&k8s::list(objects.to_vec())).unwrap();
    let config = ResolveConfig { cluster_domain: "cluster.local".into(), node_name: None };
    match Resolver::new(&inventory, &config).dns_answer(ip.parse().unwrap(), "api.example.com", &[], MARCH) {
        Resolution::Edge(edge) => (edge.client.name.to_string(), edge.client.kind.to_string()),
        other => panic!("{ip}: {other:?}"),
    }
}

#[test]
fn the_exporter_and_the_reducer_name_every_shape_of_pod_alike() {
    for (objects, name, kind) in table() {
        let ip = objects[0]["status"]["podIP"].as_str().unwrap().to_owned();
        assert_eq!(exporter_names(&objects, &ip), (name.to_owned(), kind.to_owned()), "the exporter, {ip}");
        let info = ClusterInfo::from_objects(objects.clone()).unwrap();
        let workload = info.workload("shop", name).unwrap_or_else(|| panic!("the reducer has no {name}"));
        assert_eq!(workload.kind, kind, "the reducer's kind of {name}");
    }
}

#[test]
fn both_binaries_warn_alike_about_an_inventory_that_cannot_name_pods() {
    use network_mapper::sources::inventory::naming::KUBECTL_GET;
    let orphan = Pod::new("shop", "web-7d9f-x", "10.0.1.10").owner("ReplicaSet", "web-7d9f").json();
    let cluster = ClusterInfo::from_objects(vec![orphan.clone()]).unwrap();
    let expected = "1 pod(s) owned by a ReplicaSet that the inventory does not hold";
    assert!(
        cluster.warnings.iter().any(|w| w.starts_with(expected) && w.ends_with(KUBECTL_GET)),
        "{:?}",
        cluster.warnings
    );
    let list = json!({"kind": "List", "items": [orphan]}).to_string();
    let inventory = parse_inventory(&list).unwrap();
    assert_eq!(inventory.pods_of_missing_owners(), [("ReplicaSet".to_owned(), 1)].into());

    let no_pods = ClusterInfo::from_objects(vec![
        json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
    ]);
    let no_pods = no_pods.unwrap();
    assert!(no_pods.warnings.iter().any(|w| w.contains("holds no Pod (only Deployment)")), "{:?}", no_pods.warnings);
}

/// The docs give one `kubectl get` for an inventory file, the one both binaries name in their help and errors.
#[test]
fn every_inventory_command_in_the_docs_is_the_one() {
    use network_mapper::sources::inventory::naming::KUBECTL_GET;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    files.extend(std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()));
    let mut found = 0;
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "md")) {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            if line.trim_start().starts_with("kubectl get") && line.contains("pods") {
                assert_eq!(line.trim(), KUBECTL_GET, "{}", file.display());
                found += 1;
            }
        }
    }
    assert!(found >= 1, "the docs show the command");
}
