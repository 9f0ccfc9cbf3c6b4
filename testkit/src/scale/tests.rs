//! The generated cluster is realistic where benchmarks rely on it: pod sizes, addresses inside each node's pod
//! CIDR, every shape the map must name, Services and slices that agree with the pods, determinism, and churn
//! that produces the control plane's events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::Value;

use super::{ScaleCluster, ScaleSpec};
use crate::fake_apiserver::FakeApi;

/// 5 nodes, 300 pods: every shape, quick to build and to serve (tests run unoptimized).
fn small() -> ScaleCluster {
    ScaleCluster::new(ScaleSpec { nodes: 5, pods: 300, namespaces: 3, seed: 7 })
}

/// The mean, smallest and largest pod, in bytes of JSON.
fn pod_sizes(cluster: &ScaleCluster) -> (f64, usize, usize) {
    let sizes: Vec<usize> = cluster.pod_objects().map(|pod| pod.to_string().len()).collect();
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    (mean, *sizes.iter().min().unwrap(), *sizes.iter().max().unwrap())
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

/// The benchmark cluster's proportions at a tenth of its size (same shapes, same share of DaemonSet pods and
/// sidecars); `cargo run -p testkit --release --example fake_api_load` measures the full one.
#[test]
fn pods_weigh_5_to_8_kb() {
    let (mean, min, max) = pod_sizes(&ScaleCluster::new(ScaleSpec { nodes: 20, pods: 2_000, ..ScaleSpec::default() }));
    println!("pod JSON: mean {mean:.0} bytes, min {min}, max {max}");
    assert!((5_000.0..=8_000.0).contains(&mean), "mean pod size {mean:.0} bytes");
}

#[test]
fn pod_addresses_are_unique_and_inside_their_nodes_pod_cidr() {
    let cluster = small();
    let cidr: BTreeMap<&str, &str> = cluster.nodes().iter().map(|n| (n.name.as_str(), n.pod_cidr.as_str())).collect();
    let mut seen = BTreeSet::new();
    for pod in cluster.pods().iter().filter(|p| !p.host_network) {
        let prefix = cidr[pod.node.as_str()].trim_end_matches("0/24");
        assert!(pod.ip.starts_with(prefix), "{} {} outside {}", pod.name, pod.ip, cidr[pod.node.as_str()]);
        assert!(seen.insert(pod.ip.clone()), "{} used twice", pod.ip);
        assert_eq!(cluster.pod_by_ip(&pod.ip).unwrap().name, pod.name);
    }
    let node = &cluster.nodes()[3];
    let host_network: Vec<_> = cluster.pods_on(&node.name).filter(|p| p.host_network).collect();
    assert_eq!(host_network.len(), 2, "kube-proxy and node-exporter");
    assert!(host_network.iter().all(|p| p.ip == node.ip));
    assert!(cluster.nodes().iter().all(|n| cluster.pods_on(&n.name).count() <= super::MAX_PODS_PER_NODE));
}

#[test]
fn every_shape_the_map_must_name_is_there() {
    let cluster = small();
    let kinds: BTreeSet<&str> = cluster.pods().iter().map(|p| p.workload.kind.as_str()).collect();
    assert_eq!(kinds, ["CronJob", "DaemonSet", "Deployment", "Job", "Pod", "StatefulSet"].into());
    let find = |name: &str| cluster.pods().iter().find(|p| p.name.starts_with(name)).unwrap();
    assert_eq!(find("redis-0-0").workload.name, "redis-0");
    assert_eq!(find("report-0-").workload.name, "report-0", "a CronJob's pod is the CronJob's");
    assert_eq!(find("db-migrate-0-").workload.kind, "Job");
    assert_eq!(find("debug-0").workload.kind, "Pod");
    assert_eq!(find("toolbox-0").workload.name, "legacy-toolbox-0", "named by the Otterize annotation");
    assert!(cluster.pods().iter().any(|p| p.workload.kind == "Deployment" && p.workload.name.ends_with("-intents")));
    assert!(
        cluster.pods().iter().any(|p| p.workload.kind == "Deployment" && !p.in_service),
        "workers no Service selects"
    );
    assert!(find("kube-proxy-").host_network);
    let objects = cluster.objects();
    let node = of_kind(&objects, "Node").next().unwrap();
    assert_eq!(node["spec"]["podCIDRs"][0], cluster.nodes()[0].pod_cidr.as_str());
    assert_eq!(node["status"]["addresses"][0]["address"], cluster.nodes()[0].ip.as_str());
    let headless = of_kind(&objects, "Service").find(|s| s["metadata"]["name"] == "redis-0").unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
    let named = of_kind(&objects, "Service").filter(|s| s["spec"]["ports"][0]["targetPort"] == "http").count();
    assert!(named > 0, "some Services target a named port");
    assert_eq!(cluster.pods().len(), 300);
}

#[test]
fn slices_name_exactly_the_pods_services_select() {
    let cluster = small();
    let objects = cluster.objects();
    let mut endpoints = BTreeMap::new();
    for slice in of_kind(&objects, "EndpointSlice") {
        assert!(slice["endpoints"].as_array().unwrap().len() <= 100);
        for endpoint in slice["endpoints"].as_array().unwrap() {
            let pod = endpoint["targetRef"]["name"].as_str().unwrap().to_owned();
            endpoints.insert(
                pod,
                (endpoint["addresses"][0].clone(), endpoint["nodeName"].clone(), endpoint.get("hostname").cloned()),
            );
        }
    }
    for pod in cluster.pods() {
        let Some((address, node, hostname)) = endpoints.get(&pod.name) else {
            assert!(!pod.in_service, "{} is selected but in no slice", pod.name);
            continue;
        };
        assert!(pod.in_service);
        assert_eq!((address.as_str(), node.as_str()), (Some(pod.ip.as_str()), Some(pod.node.as_str())));
        assert_eq!(hostname.is_some(), pod.workload.kind == "StatefulSet", "{}", pod.name);
    }
    let pods: BTreeMap<&str, &Value> =
        of_kind(&objects, "Pod").map(|p| (p["metadata"]["name"].as_str().unwrap(), p)).collect();
    let owners: BTreeSet<(String, String)> =
        objects.iter().map(|o| (o["kind"].to_string(), o["metadata"]["uid"].to_string())).collect();
    for pod in pods.values() {
        if let Some(owner) = pod["metadata"]["ownerReferences"].get(0) {
            assert!(
                owners.contains(&(owner["kind"].to_string(), owner["uid"].to_string())),
                "{owner} of {}",
                pod["metadata"]["name"]
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_cluster() {
    assert_eq!(small().objects(), small().objects());
    let other = ScaleCluster::new(ScaleSpec { seed: 8, ..small().spec().clone() });
    assert_ne!(other.objects(), small().objects());
}

/// One replacement of a pod behind a Service, watched as a whole-kind watcher sees it.
#[test]
fn replacing_a_pod_sends_the_control_planes_events() {
    let mut cluster = small();
    let api = FakeApi::start();
    cluster.apply_to(&api);
    let from = api.resource_version();
    let pods = watch_types(&api, &format!("/api/v1/pods?watch=true&resourceVersion={from}"), 6);
    let slices =
        watch_types(&api, &format!("/apis/discovery.k8s.io/v1/endpointslices?watch=true&resourceVersion={from}"), 4);
    let before: BTreeSet<String> = cluster.pods().iter().map(|p| p.name.clone()).collect();
    let churn = cluster.replace_pods(&api, 1);
    assert_eq!(pods.join().unwrap(), ["MODIFIED", "ADDED", "MODIFIED", "MODIFIED", "DELETED", "MODIFIED"]);
    let (old, new) = &churn.replaced[0];
    let (namespace, old) = old.split_once('/').unwrap();
    assert!(api.get("Pod", namespace, old).is_none() && before.contains(old));
    let new_pod = cluster.pods().iter().find(|p| format!("{}/{}", p.namespace, p.name) == *new).unwrap();
    let served = api.get("Pod", namespace, &new_pod.name).unwrap();
    assert_eq!(served["status"]["podIP"], new_pod.ip.as_str());
    assert_eq!(cluster.pod_by_ip(&new_pod.ip).unwrap().name, new_pod.name);
    assert!(new_pod.in_service, "seed 7 replaces a pod behind a Service");
    assert_eq!(slices.join().unwrap(), ["MODIFIED"; 4]);
    assert_eq!(churn.events["EndpointSlice"], 4);
    assert_eq!((churn.events["Pod"], churn.events["ReplicaSet"]), (6, 2));
    let total: usize = churn.events.values().sum();
    assert_eq!(api.resource_version() - from, total as u64);
}

#[test]
fn churn_keeps_the_cluster_and_the_api_in_step() {
    let mut cluster = small();
    let api = FakeApi::start();
    cluster.apply_to(&api);
    let churn = cluster.replace_pods(&api, 30);
    assert_eq!(churn.replaced.len(), 30);
    for (old, _) in &churn.replaced {
        let (namespace, name) = old.split_once('/').unwrap();
        assert!(api.get("Pod", namespace, name).is_none(), "{old} is gone");
    }
    for pod in cluster.pods() {
        let served = api.get("Pod", &pod.namespace, &pod.name).unwrap();
        assert_eq!(
            (served["status"]["podIP"].as_str(), served["spec"]["nodeName"].as_str()),
            (Some(pod.ip.as_str()), Some(pod.node.as_str()))
        );
    }
    let in_service = churn.replaced.iter().filter(|(_, new)| {
        cluster.pods().iter().any(|p| &format!("{}/{}", p.namespace, p.name) == new && p.in_service)
    });
    let expected = BTreeMap::from([("EndpointSlice", 4 * in_service.count()), ("Pod", 6 * 30), ("ReplicaSet", 2 * 30)]);
    assert_eq!(
        churn.events.into_iter().filter(|(_, n)| *n > 0).collect::<BTreeMap<_, _>>(),
        expected.into_iter().filter(|(_, n)| *n > 0).collect()
    );
}

/// The types of the first `count` events of a watch, read on a thread.
fn watch_types(api: &FakeApi, path: &str, count: usize) -> std::thread::JoinHandle<Vec<String>> {
    let client = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap();
    let response = client.get(format!("{}{path}", api.url())).send().unwrap();
    std::thread::spawn(move || {
        let lines = BufReader::new(response).lines().map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap());
        lines.filter(|e| e["type"] != "BOOKMARK").take(count).map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    })
}
