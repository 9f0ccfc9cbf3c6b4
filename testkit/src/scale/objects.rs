//! The objects around the pods, as a real API server returns them: Nodes (pod CIDRs, addresses, conditions,
//! capacity, images), the workloads' controllers and the owners between them and the pods (Deployment →
//! ReplicaSet, CronJob → Job, StatefulSet, DaemonSet, bare Job), Services and their EndpointSlices.

use serde_json::{Value, json};

use super::layout::{ServiceDef, Shape, Slice, WorkloadDef};
use super::pods::labels;
use super::{ScaleCluster, ScaleNode};
use crate::k8s::{LONG_AGO, fields_v1, managed_field};

impl ScaleCluster {
    pub(super) fn node_json(&self, node: &ScaleNode) -> Value {
        let index: usize = node.name.trim_start_matches("node-").parse().unwrap_or(0);
        let zone = format!("eu-west-1{}", ["a", "b", "c"][index % 3]);
        let metadata = json!({"name": node.name, "uid": format!("node-uid-{index:08}"), "creationTimestamp": LONG_AGO,
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
                       "node.kubernetes.io/instance-type": "m6i.2xlarge", "topology.kubernetes.io/region": "eu-west-1",
                       "topology.kubernetes.io/zone": zone},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}});
        let spec = json!({"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr],
                          "providerID": format!("aws:///{zone}/i-{:017x}", index * 7919)});
        let status = node_status(node, index);
        let managed = [
            managed_field("kubelet", "v1", LONG_AGO, None, fields_v1(&json!({"metadata": metadata}))),
            managed_field(
                "kube-controller-manager",
                "v1",
                LONG_AGO,
                None,
                fields_v1(&json!({"spec": {"podCIDR": "", "podCIDRs": []}})),
            ),
            managed_field("kubelet", "v1", LONG_AGO, Some("status"), fields_v1(&json!({"status": status}))),
        ];
        let mut metadata = metadata;
        metadata["managedFields"] = json!(managed);
        json!({"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec, "status": status})
    }

    /// The workload's controller and the owners between it and its pods.
    pub(super) fn owner_objects(&self, def: &WorkloadDef) -> Vec<Value> {
        let template = self.template(def);
        let selector = json!({"matchLabels": {"app": def.name}});
        let replicas = def.replicas;
        let ready = json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "observedGeneration": 1});
        match def.shape {
            Shape::Deployment => {
                let mut status = ready.clone();
                status["updatedReplicas"] = json!(replicas);
                let spec = json!({"replicas": replicas, "selector": selector, "template": template, "revisionHistoryLimit": 10,
                                  "progressDeadlineSeconds": 600, "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}});
                vec![controller("apps/v1", "Deployment", def, None, spec, status), self.replica_set_json(def, replicas)]
            }
            Shape::StatefulSet => {
                let spec = json!({"replicas": replicas, "selector": selector, "serviceName": def.name, "template": template,
                                  "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"}});
                let mut status = ready;
                status["currentRevision"] = json!(format!("{}-{}", def.name, def.hash));
                vec![controller("apps/v1", "StatefulSet", def, None, spec, status)]
            }
            Shape::DaemonSet => {
                let spec =
                    json!({"selector": selector, "template": template, "updateStrategy": {"type": "RollingUpdate"}});
                let status = json!({"currentNumberScheduled": replicas, "desiredNumberScheduled": replicas, "numberAvailable": replicas,
                                    "numberReady": replicas, "updatedNumberScheduled": replicas, "observedGeneration": 1});
                vec![controller("apps/v1", "DaemonSet", def, None, spec, status)]
            }
            Shape::CronJob => {
                let active = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": def.job_name(), "namespace": def.namespace, "uid": def.job_uid}]);
                let spec = json!({"schedule": "*/30 * * * *", "concurrencyPolicy": "Forbid", "suspend": false,
                                  "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                                  "jobTemplate": {"spec": {"backoffLimit": 6, "template": template}}});
                let status = json!({"active": active, "lastScheduleTime": LONG_AGO});
                vec![controller("batch/v1", "CronJob", def, None, spec, status), self.job_json(def)]
            }
            Shape::Job => vec![self.job_json(def)],
            Shape::Bare => Vec::new(),
        }
    }

    /// A Deployment's ReplicaSet with `ready` of its replicas ready.
    pub(super) fn replica_set_json(&self, def: &WorkloadDef, ready: usize) -> Value {
        let spec = json!({"replicas": def.replicas, "template": self.template(def),
            "selector": {"matchLabels": {"app": def.name, "pod-template-hash": def.hash}}});
        let status = json!({"replicas": def.replicas, "fullyLabeledReplicas": def.replicas, "readyReplicas": ready,
                            "availableReplicas": ready, "observedGeneration": 1});
        let owner = owner_ref("apps/v1", "Deployment", &def.name, &def.uid);
        let mut object = controller("apps/v1", "ReplicaSet", def, Some(owner), spec, status);
        let metadata = &mut object["metadata"];
        metadata["name"] = json!(format!("{}-{}", def.name, def.hash));
        metadata["uid"] = json!(def.owner_uid());
        metadata["labels"] = labels(def);
        metadata["annotations"] = json!({"deployment.kubernetes.io/desired-replicas": def.replicas.to_string(),
            "deployment.kubernetes.io/max-replicas": (def.replicas + def.replicas.div_ceil(4)).to_string(),
            "deployment.kubernetes.io/revision": "1"});
        object
    }

    /// A CronJob's current Job, or a bare Job.
    fn job_json(&self, def: &WorkloadDef) -> Value {
        let spec = json!({"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": false, "podReplacementPolicy": "TerminatingOrFailed", "template": self.template(def),
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": def.job_uid}}});
        let status =
            json!({"active": 1, "ready": 1, "terminating": 0, "startTime": LONG_AGO, "uncountedTerminatedPods": {}});
        let owner = (def.shape == Shape::CronJob).then(|| owner_ref("batch/v1", "CronJob", &def.name, &def.uid));
        let mut object = controller("batch/v1", "Job", def, owner, spec, status);
        object["metadata"]["name"] = json!(def.job_name());
        object["metadata"]["uid"] = json!(def.job_uid);
        object["metadata"]["labels"] = labels(def);
        object
    }

    pub(super) fn service_json(&self, service: &ServiceDef) -> Value {
        let def = &self.defs[service.def];
        let ip = service.cluster_ip.as_deref().unwrap_or("None");
        let target = if service.named_target { json!("http") } else { json!(def.port) };
        let mut ports = vec![json!({"name": "http", "port": service.port, "protocol": "TCP", "targetPort": target})];
        if def.name == "coredns" {
            ports = vec![
                json!({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}),
                json!({"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}),
            ];
        }
        let spec = json!({"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                          "ipFamilyPolicy": "SingleStack", "ports": ports, "selector": {"app": def.name},
                          "sessionAffinity": "None", "type": "ClusterIP"});
        let metadata = json!({"name": service.name, "namespace": service.namespace, "uid": service.uid,
                              "creationTimestamp": LONG_AGO, "labels": {"app": def.name}});
        let managed =
            managed_field("kubectl-client-side-apply", "v1", LONG_AGO, None, fields_v1(&json!({"spec": spec})));
        let mut object = json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec,
                                "status": {"loadBalancer": {}}});
        object["metadata"]["managedFields"] = json!([managed]);
        object
    }

    pub(super) fn slice_json(&self, service: &ServiceDef, slice: &Slice) -> Value {
        let def = &self.defs[service.def];
        let endpoints: Vec<Value> = slice
            .endpoints
            .iter()
            .map(|e| {
                let mut endpoint = json!({"addresses": [e.ip], "nodeName": e.node,
                "conditions": {"ready": e.ready, "serving": e.ready || e.terminating, "terminating": e.terminating},
                "targetRef": {"kind": "Pod", "name": e.pod, "namespace": service.namespace, "uid": e.uid}});
                if let Some(hostname) = &e.hostname {
                    endpoint["hostname"] = json!(hostname);
                }
                endpoint
            })
            .collect();
        let port = if def.name == "coredns" {
            vec![json!({"name": "dns", "port": 53, "protocol": "UDP"})]
        } else {
            vec![json!({"name": "http", "port": def.port, "protocol": "TCP"})]
        };
        let mut labels = json!({"app": def.name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                "kubernetes.io/service-name": service.name});
        if service.cluster_ip.is_none() {
            labels["service.kubernetes.io/headless"] = json!("");
        }
        let mut object = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": slice.name, "generateName": format!("{}-", service.name), "namespace": service.namespace,
                         "uid": slice.uid, "creationTimestamp": LONG_AGO, "labels": labels,
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": LONG_AGO},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service.name, "uid": service.uid,
                                              "controller": true, "blockOwnerDeletion": true}]},
            "endpoints": endpoints, "ports": port});
        let managed = fields_v1(
            &json!({"addressType": "", "endpoints": [], "ports": [], "metadata": {"labels": object["metadata"]["labels"]}}),
        );
        object["metadata"]["managedFields"] =
            json!([managed_field("endpointslice-controller.k8s.io", "discovery.k8s.io/v1", LONG_AGO, None, managed)]);
        object
    }
}

/// A controller object of `def`: metadata (with managed fields), `spec`, `status`.
fn controller(
    api_version: &str,
    kind: &str,
    def: &WorkloadDef,
    owner: Option<Value>,
    spec: Value,
    status: Value,
) -> Value {
    let mut metadata = json!({"name": def.name, "namespace": def.namespace, "uid": def.uid, "generation": 1,
                              "creationTimestamp": LONG_AGO, "labels": {"app": def.name}});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    metadata["managedFields"] = json!([
        managed_field("kubectl-client-side-apply", api_version, LONG_AGO, None, fields_v1(&json!({"spec": spec}))),
        managed_field(
            "kube-controller-manager",
            api_version,
            LONG_AGO,
            Some("status"),
            fields_v1(&json!({"status": status}))
        ),
    ]);
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec, "status": status})
}

/// A controller owner reference.
fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true})
}

/// What the kubelet reports for a node: capacity, conditions, addresses, versions, images.
fn node_status(node: &ScaleNode, index: usize) -> Value {
    let resources = json!({"cpu": "8", "ephemeral-storage": "101430960Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                           "memory": "32398108Ki", "pods": "110"});
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status,
        "lastHeartbeatTime": LONG_AGO, "lastTransitionTime": LONG_AGO, "reason": reason, "message": message})
    };
    let images: Vec<Value> = [
        "registry.k8s.io/kube-proxy:v1.33.1",
        "quay.io/prometheus/node-exporter:v1.9.1",
        "cr.fluentbit.io/fluent/fluent-bit:4.0.3",
        "registry.k8s.io/pause:3.10",
    ]
    .iter()
    .enumerate()
    .map(|(i, image)| json!({"names": [image], "sizeBytes": 10_000_000 + i * 7_654_321}))
    .collect();
    json!({"capacity": resources, "allocatable": resources,
        "conditions": [condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                       condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                       condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
        "addresses": [{"type": "InternalIP", "address": node.ip}, {"type": "Hostname", "address": node.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": format!("{:032x}", index), "systemUUID": format!("ec2{:029x}", index),
                     "bootID": format!("{:032x}", index * 31), "kernelVersion": "6.1.0-37-cloud-amd64",
                     "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.7.27",
                     "kubeletVersion": "v1.33.1", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
        "images": images})
}
