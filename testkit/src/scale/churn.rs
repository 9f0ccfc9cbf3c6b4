//! Pods replaced the way the control plane replaces them, one change per API write, so every watcher sees the
//! events a real cluster would send: the old pod is marked for deletion, the ReplicaSet creates a new one
//! (unscheduled), the scheduler binds it, the kubelet starts it with an address and later reports it ready;
//! meanwhile the EndpointSlice controller marks the old endpoint terminating, adds the new one not ready, drops
//! the old one when the pod is gone and marks the new one ready, and the ReplicaSet's status follows.

use std::collections::BTreeMap;

use serde_json::Value;

use super::layout::{Shape, SliceEndpoint, endpoint_of};
use super::pods::{Stage, now};
use super::{ScaleCluster, ScalePod};
use crate::fake_apiserver::FakeApi;

/// What one [`ScaleCluster::replace_pods`] did.
#[derive(Clone, Debug, Default)]
pub struct Churn {
    /// `(old, new)` pod names (`namespace/name`).
    pub replaced: Vec<(String, String)>,
    /// Writes applied per kind: each is one watch event for a watcher of the whole kind.
    pub events: BTreeMap<&'static str, usize>,
}

impl Churn {
    fn write(&mut self, api: &FakeApi, kind: &'static str, object: Value) {
        api.apply(object);
        *self.events.entry(kind).or_default() += 1;
    }
}

impl ScaleCluster {
    /// Replaces `n` distinct Deployment pods, chosen by the seed (per pod: 6 Pod events, 2 ReplicaSet events,
    /// and 4 EndpointSlice events when a Service selects it). New pods are created now (`creationTimestamp`).
    pub fn replace_pods(&mut self, api: &FakeApi, n: usize) -> Churn {
        let mut candidates: Vec<usize> =
            (0..self.pods.len()).filter(|&i| self.defs[self.pods[i].def].shape == Shape::Deployment).collect();
        let mut churn = Churn::default();
        for picked in 0..n.min(candidates.len()) {
            let swap = picked + self.rng.below(candidates.len() - picked);
            candidates.swap(picked, swap);
            self.replace(api, candidates[picked], &mut churn);
        }
        churn
    }

    fn replace(&mut self, api: &FakeApi, index: usize, churn: &mut Churn) {
        let old = self.pods[index].clone();
        let (def, service) = (old.def, self.defs[old.def].service);
        let replicas = self.defs[def].replicas;
        churn.write(api, "Pod", self.pod_json(&old, Stage::Terminating));
        let new = self.new_pod(def, 0, &now());
        churn.write(api, "Pod", self.pod_json(&new, Stage::Pending));
        churn.write(api, "ReplicaSet", self.replica_set_json(&self.defs[def], replicas - 1));
        if let Some(service) = service {
            self.endpoint_changed(api, churn, service, &old.uid, |e| (e.ready, e.terminating) = (false, true));
        }
        churn.write(api, "Pod", self.pod_json(&new, Stage::Scheduled));
        churn.write(api, "Pod", self.pod_json(&new, Stage::Started));
        if let Some(service) = service {
            self.endpoint_added(api, churn, service, &old.uid, &new);
        }
        api.delete("Pod", &old.namespace, &old.name);
        *churn.events.entry("Pod").or_default() += 1;
        self.forget(&old);
        if let Some(service) = service {
            self.endpoint_removed(api, churn, service, &old.uid);
        }
        churn.write(api, "Pod", self.pod_json(&new, Stage::Ready));
        if let Some(service) = service {
            self.endpoint_changed(api, churn, service, &new.uid, |e| e.ready = true);
        }
        churn.write(api, "ReplicaSet", self.replica_set_json(&self.defs[def], replicas));
        churn.replaced.push((format!("{}/{}", old.namespace, old.name), format!("{}/{}", new.namespace, new.name)));
        self.by_ip.insert(new.ip.clone(), index);
        self.pods[index] = new;
    }

    /// The old pod's address and place on its node are free once it is gone.
    fn forget(&mut self, old: &ScalePod) {
        let node = self.nodes.iter().position(|n| n.name == old.node).expect("a known node");
        self.ipam[node].pods -= 1;
        self.ipam[node].release(&old.ip);
        self.by_ip.remove(&old.ip);
    }

    /// (slice, endpoint) of the pod with `uid` in `service`'s slices.
    fn find_endpoint(&self, service: usize, uid: &str) -> Option<(usize, usize)> {
        self.services[service]
            .slices
            .iter()
            .enumerate()
            .find_map(|(s, slice)| slice.endpoints.iter().position(|e| e.uid == uid).map(|e| (s, e)))
    }

    fn write_slice(&self, api: &FakeApi, churn: &mut Churn, service: usize, slice: usize) {
        let service = &self.services[service];
        churn.write(api, "EndpointSlice", self.slice_json(service, &service.slices[slice]));
    }

    fn endpoint_changed(
        &mut self,
        api: &FakeApi,
        churn: &mut Churn,
        service: usize,
        uid: &str,
        change: impl FnOnce(&mut SliceEndpoint),
    ) {
        let Some((slice, endpoint)) = self.find_endpoint(service, uid) else { return };
        change(&mut self.services[service].slices[slice].endpoints[endpoint]);
        self.write_slice(api, churn, service, slice);
    }

    /// The new pod's endpoint, not ready yet, in the slice of the pod it replaces.
    fn endpoint_added(&mut self, api: &FakeApi, churn: &mut Churn, service: usize, old_uid: &str, new: &ScalePod) {
        let Some((slice, _)) = self.find_endpoint(service, old_uid) else { return };
        let headless = self.services[service].cluster_ip.is_none();
        self.services[service].slices[slice].endpoints.push(endpoint_of(new, headless, false));
        self.write_slice(api, churn, service, slice);
    }

    fn endpoint_removed(&mut self, api: &FakeApi, churn: &mut Churn, service: usize, uid: &str) {
        let Some((slice, endpoint)) = self.find_endpoint(service, uid) else { return };
        self.services[service].slices[slice].endpoints.remove(endpoint);
        self.write_slice(api, churn, service, slice);
    }
}
