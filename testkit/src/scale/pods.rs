//! Pod objects as a real API server returns them, at each stage of a pod's life: created unscheduled, bound to
//! a node, started with an address, ready, terminating. The template (labels, containers with env, resources,
//! probes and mounts) is what the workload's controller stamps; admission adds the service-account token volume
//! and the default tolerations; the managed fields are those of the creator and of the kubelet.

use serde_json::{Value, json};

use super::layout::{Shape, WorkloadDef};
use super::rng::ALPHABET;
use super::{ScaleCluster, ScalePod};
use crate::k8s::{fields_v1, managed_field};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    Pending,
    Scheduled,
    Started,
    Ready,
    Terminating,
}

impl ScaleCluster {
    pub(super) fn pod_json(&self, pod: &ScalePod, stage: Stage) -> Value {
        let def = &self.defs[pod.def];
        let spec = pod_spec(def, pod, stage);
        let status = self.pod_status(def, pod, stage);
        let mut metadata = pod_metadata(def, pod);
        let creator_fields = def.creator_fields.get_or_init(|| creator_fields(def, &metadata));
        let mut managed = vec![managed_field(creator(def), "v1", &pod.created, None, creator_fields.clone())];
        if stage >= Stage::Started {
            managed.push(managed_field(
                "kubelet",
                "v1",
                &pod.created,
                Some("status"),
                fields_v1(&json!({"status": status})),
            ));
        }
        metadata["managedFields"] = json!(managed);
        if stage == Stage::Terminating {
            metadata["deletionTimestamp"] = json!(now());
            metadata["deletionGracePeriodSeconds"] = json!(30);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status})
    }

    /// What a workload's controller stamps on every pod (`spec.template` of its object).
    pub(super) fn template(&self, def: &WorkloadDef) -> Value {
        json!({"metadata": {"labels": labels(def), "annotations": annotations(def)}, "spec": template_spec(def)})
    }

    fn pod_status(&self, def: &WorkloadDef, pod: &ScalePod, stage: Stage) -> Value {
        match stage {
            Stage::Pending => json!({"phase": "Pending", "qosClass": "Burstable"}),
            Stage::Scheduled => {
                json!({"phase": "Pending", "conditions": [condition("PodScheduled", true, &pod.created)], "qosClass": "Burstable"})
            }
            _ => {
                let ready = stage != Stage::Started;
                let node_ip = self.nodes.iter().find(|n| n.name == pod.node).map_or("", |n| n.ip.as_str());
                let conditions: Vec<Value> = [
                    ("PodReadyToStartContainers", true),
                    ("Initialized", true),
                    ("Ready", ready),
                    ("ContainersReady", ready),
                    ("PodScheduled", true),
                ]
                .iter()
                .map(|(ty, status)| condition(ty, *status, &pod.created))
                .collect();
                let statuses: Vec<Value> = containers(def).iter().map(|c| container_status(c, pod, ready)).collect();
                json!({"phase": "Running", "conditions": conditions, "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
                       "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": pod.created,
                       "containerStatuses": statuses, "qosClass": "Burstable"})
            }
        }
    }
}

fn pod_metadata(def: &WorkloadDef, pod: &ScalePod) -> Value {
    let mut labels = labels(def);
    if def.shape == Shape::StatefulSet {
        labels["statefulset.kubernetes.io/pod-name"] = json!(pod.name);
        labels["apps.kubernetes.io/pod-index"] = json!(pod.name.rsplit('-').next());
    }
    let mut metadata = json!({"name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
                              "creationTimestamp": pod.created, "labels": labels, "annotations": annotations(def)});
    if let Some((kind, name)) = def.owner() {
        let uid = def.owner_uid();
        let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        metadata["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
                                              "controller": true, "blockOwnerDeletion": true}]);
        if def.shape != Shape::StatefulSet {
            metadata["generateName"] =
                json!(format!("{}-", pod.name.rsplit_once('-').map_or("", |(prefix, _)| prefix)));
        }
    }
    metadata
}

/// The labels the controller stamps (the Service selects `app`).
pub(super) fn labels(def: &WorkloadDef) -> Value {
    let name = &def.name;
    match def.shape {
        Shape::Deployment => {
            json!({"app": name, "app.kubernetes.io/part-of": def.namespace, "pod-template-hash": def.hash})
        }
        Shape::StatefulSet => json!({"app": name, "controller-revision-hash": format!("{name}-{}", def.hash)}),
        Shape::DaemonSet => json!({"app": name, "controller-revision-hash": def.hash, "pod-template-generation": "1"}),
        Shape::CronJob | Shape::Job => json!({"batch.kubernetes.io/controller-uid": def.job_uid,
            "batch.kubernetes.io/job-name": def.job_name(), "controller-uid": def.job_uid, "job-name": def.job_name()}),
        Shape::Bare => json!({"app": name, "run": name}),
    }
}

fn annotations(def: &WorkloadDef) -> Value {
    let mut annotations = json!({"prometheus.io/scrape": "true"});
    if let Some(name) = &def.workload_name {
        annotations["intents.otterize.com/workload-name"] = json!(name);
    }
    annotations
}

fn template_spec(def: &WorkloadDef) -> Value {
    let restart = if matches!(def.shape, Shape::Job | Shape::CronJob) { "OnFailure" } else { "Always" };
    let service_account = if def.shape == Shape::Bare { "default".to_owned() } else { def.name.clone() };
    let mut spec = json!({"containers": containers(def), "restartPolicy": restart, "terminationGracePeriodSeconds": 30,
        "dnsPolicy": if def.host_network { "ClusterFirstWithHostNet" } else { "ClusterFirst" },
        "serviceAccountName": service_account, "serviceAccount": service_account, "schedulerName": "default-scheduler",
        "securityContext": {"runAsNonRoot": true},
        "volumes": [{"name": "config", "configMap": {"name": format!("{}-config", def.name), "defaultMode": 420}}]});
    if def.host_network {
        spec["hostNetwork"] = json!(true);
        spec["tolerations"] = json!([{"operator": "Exists"}]);
    }
    spec
}

fn pod_spec(def: &WorkloadDef, pod: &ScalePod, stage: Stage) -> Value {
    let mut spec = template_spec(def);
    let token = format!("kube-api-access-{}", stable_suffix(&pod.uid));
    spec["volumes"].as_array_mut().unwrap().push(json!({"name": token, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}));
    for container in spec["containers"].as_array_mut().unwrap() {
        container["volumeMounts"].as_array_mut().unwrap().push(json!({"name": token, "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
    }
    if !def.host_network {
        spec["tolerations"] = json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]);
    }
    if def.shape == Shape::StatefulSet {
        spec["hostname"] = json!(pod.name);
        spec["subdomain"] = json!(def.name);
    }
    spec["priority"] = json!(0);
    spec["enableServiceLinks"] = json!(true);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    if stage >= Stage::Scheduled {
        spec["nodeName"] = json!(pod.node);
    }
    spec
}

/// The application container, and a log shipper beside it in some workloads.
fn containers(def: &WorkloadDef) -> Vec<Value> {
    let port = def.port;
    let probe = |path: &str| {
        json!({"httpGet": {"path": path, "port": port, "scheme": "HTTP"}, "initialDelaySeconds": 5,
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    };
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    let mut app = json!({"name": "app", "image": format!("ghcr.io/acme/{}:1.{}.0", def.name, port % 7),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": field("metadata.name")}, {"name": "POD_IP", "valueFrom": field("status.podIP")}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "livenessProbe": probe("/healthz"),
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
    if def.host_network {
        app["ports"][0]["hostPort"] = json!(port);
    }
    let mut containers = vec![app];
    if def.sidecar {
        containers.push(json!({"name": "log-shipper", "image": "ghcr.io/acme/log-shipper:2.3.1",
            "imagePullPolicy": "IfNotPresent", "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}, "volumeMounts": [],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}));
    }
    containers
}

fn container_status(container: &Value, pod: &ScalePod, ready: bool) -> Value {
    let name = container["name"].as_str().unwrap_or_default();
    let image = container["image"].as_str().unwrap_or_default();
    let digest = |what: &str| {
        (0..4).map(|i| format!("{:016x}", fnv(&format!("{what}{i}{}{name}", pod.uid)))).collect::<String>()
    };
    json!({"name": name, "image": image, "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), digest("image")),
           "containerID": format!("containerd://{}", digest("container")), "ready": ready, "started": true, "restartCount": 0,
           "state": {"running": {"startedAt": pod.created}}, "lastState": {}})
}

fn condition(ty: &str, status: bool, time: &str) -> Value {
    let mut condition = json!({"type": ty, "status": if status { "True" } else { "False" }, "lastProbeTime": null,
                               "lastTransitionTime": time});
    if !status {
        condition["reason"] = json!("ContainersNotReady");
        condition["message"] = json!("containers with unready status: [app]");
    }
    condition
}

/// The fields the creator set: the metadata it stamped and the template (admission's additions and the binding
/// are not its). The same for every pod of a workload: the tree holds field names, not values.
fn creator_fields(def: &WorkloadDef, metadata: &Value) -> Value {
    let stamped = ["labels", "annotations", "generateName", "ownerReferences"];
    let mut metadata = metadata.clone();
    metadata.as_object_mut().unwrap().retain(|k, _| stamped.contains(&k.as_str()));
    fields_v1(&json!({"metadata": metadata, "spec": template_spec(def)}))
}

/// Who created the pod: a controller, or a person with kubectl.
fn creator(def: &WorkloadDef) -> &'static str {
    if def.shape == Shape::Bare { "kubectl-run" } else { "kube-controller-manager" }
}

/// Five name characters derived from `seed` (pod JSON is a function of the pod, so nothing random here).
fn stable_suffix(seed: &str) -> String {
    let mut hash = fnv(seed);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char;
            hash /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Now, as the API server stamps times.
pub(super) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
