//! The inventory index: compact records keyed for the lookups resolution makes.
//!
//! Sources (a file, the API watchers) feed it through `upsert_*`/`remove_*`; it never does I/O. Records are
//! shared as `Arc`s between the by-name and by-IP maps so an IP lookup is one hash probe. Maps use the Fx hash:
//! keys are IPs and object names from our own API server, not attacker-chosen, and lookups are on the packet path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::objects::{OwnerRecord, PodRecord, ServiceRecord, SliceRecord};

/// Per-namespace map from object name to record.
type ByName<T> = HashMap<Arc<str>, HashMap<Arc<str>, T>>;

/// Everything the resolver knows about the cluster.
#[derive(Debug, Default)]
pub struct Inventory {
    pods: ByName<Arc<PodRecord>>,
    pods_by_ip: HashMap<IpAddr, Vec<Arc<PodRecord>>>,
    /// Owners by namespace and name; a short list because different kinds may share a name.
    owners: ByName<Vec<OwnerRecord>>,
    services: ByName<Arc<ServiceRecord>>,
    services_by_ip: HashMap<IpAddr, Arc<ServiceRecord>>,
    slices: ByName<Arc<SliceRecord>>,
    /// Slices of each Service by namespace and service name; a BTreeMap keyed by slice name keeps the
    /// "first backing pod" choice deterministic.
    slices_by_service: ByName<BTreeMap<Arc<str>, Arc<SliceRecord>>>,
}

/// Object counts per kind, for the `network_mapper_inventory_objects` gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pods.
    pub pods: usize,
    /// Owners (ReplicaSets, Jobs, …).
    pub owners: usize,
    /// Services.
    pub services: usize,
    /// EndpointSlices.
    pub slices: usize,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Adds or replaces a pod.
    pub fn upsert_pod(&mut self, pod: PodRecord) {
        self.remove_pod(&pod.namespace, &pod.name);
        let pod = Arc::new(pod);
        for ip in &pod.ips {
            self.pods_by_ip.entry(*ip).or_default().push(pod.clone());
        }
        self.pods.entry(pod.namespace.clone()).or_default().insert(pod.name.clone(), pod);
    }

    /// Removes a pod; returns whether it was known.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(old) = remove_named(&mut self.pods, namespace, name) else { return false };
        for ip in &old.ips {
            if let Some(list) = self.pods_by_ip.get_mut(ip) {
                list.retain(|p| !Arc::ptr_eq(p, &old));
                if list.is_empty() {
                    self.pods_by_ip.remove(ip);
                }
            }
        }
        true
    }

    /// Adds or replaces an owner object.
    pub fn upsert_owner(&mut self, owner: OwnerRecord) {
        let list = self.owners.entry(owner.namespace.clone()).or_default().entry(owner.name.clone()).or_default();
        list.retain(|o| o.kind != owner.kind);
        list.push(owner);
    }

    /// Removes an owner object; returns whether it was known.
    pub fn remove_owner(&mut self, namespace: &str, kind: &str, name: &str) -> bool {
        let Some(by_name) = self.owners.get_mut(namespace) else { return false };
        let Some(list) = by_name.get_mut(name) else { return false };
        let before = list.len();
        list.retain(|o| &*o.kind != kind);
        let removed = list.len() != before;
        if list.is_empty() {
            by_name.remove(name);
            if by_name.is_empty() {
                self.owners.remove(namespace);
            }
        }
        removed
    }

    /// Adds or replaces a service.
    pub fn upsert_service(&mut self, service: ServiceRecord) {
        self.remove_service(&service.namespace, &service.name);
        let service = Arc::new(service);
        for ip in &service.cluster_ips {
            self.services_by_ip.insert(*ip, service.clone());
        }
        self.services.entry(service.namespace.clone()).or_default().insert(service.name.clone(), service);
    }

    /// Removes a service; returns whether it was known.
    pub fn remove_service(&mut self, namespace: &str, name: &str) -> bool {
        let Some(old) = remove_named(&mut self.services, namespace, name) else { return false };
        for ip in &old.cluster_ips {
            if self.services_by_ip.get(ip).is_some_and(|s| Arc::ptr_eq(s, &old)) {
                self.services_by_ip.remove(ip);
            }
        }
        true
    }

    /// Adds or replaces an EndpointSlice.
    pub fn upsert_slice(&mut self, slice: SliceRecord) {
        self.remove_slice(&slice.namespace, &slice.name);
        let slice = Arc::new(slice);
        if let Some(service) = &slice.service {
            self.slices_by_service
                .entry(slice.namespace.clone())
                .or_default()
                .entry(service.clone())
                .or_default()
                .insert(slice.name.clone(), slice.clone());
        }
        self.slices.entry(slice.namespace.clone()).or_default().insert(slice.name.clone(), slice);
    }

    /// Removes an EndpointSlice; returns whether it was known.
    pub fn remove_slice(&mut self, namespace: &str, name: &str) -> bool {
        let Some(old) = remove_named(&mut self.slices, namespace, name) else { return false };
        if let Some(service) = &old.service
            && let Some(by_service) = self.slices_by_service.get_mut(namespace)
            && let Some(slices) = by_service.get_mut(service)
        {
            slices.remove(name);
            if slices.is_empty() {
                by_service.remove(service);
            }
        }
        true
    }

    /// Every pod that holds this IP, in any state.
    pub fn pods_with_ip(&self, ip: &IpAddr) -> &[Arc<PodRecord>] {
        self.pods_by_ip.get(ip).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A pod by namespace and name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Arc<PodRecord>> {
        self.pods.get(namespace)?.get(name)
    }

    /// An owner by namespace, kind and name.
    pub fn owner(&self, namespace: &str, kind: &str, name: &str) -> Option<&OwnerRecord> {
        self.owners.get(namespace)?.get(name)?.iter().find(|o| &*o.kind == kind)
    }

    /// A service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<ServiceRecord>> {
        self.services.get(namespace)?.get(name)
    }

    /// The service that owns this ClusterIP.
    pub fn service_with_ip(&self, ip: &IpAddr) -> Option<&Arc<ServiceRecord>> {
        self.services_by_ip.get(ip)
    }

    /// The EndpointSlices of a service, ordered by slice name.
    pub fn slices_of(&self, namespace: &str, service: &str) -> impl Iterator<Item = &SliceRecord> {
        self.slices_by_service
            .get(namespace)
            .and_then(|m| m.get(service))
            .into_iter()
            .flat_map(|m| m.values())
            .map(|s| &**s)
    }

    /// How many objects of each kind are indexed.
    pub fn counts(&self) -> Counts {
        let count = |m: &ByName<_>| m.values().map(HashMap::len).sum::<usize>();
        Counts {
            pods: count_named(&self.pods),
            owners: self.owners.values().flat_map(HashMap::values).map(Vec::len).sum(),
            services: count(&self.services),
            slices: count_named(&self.slices),
        }
    }
}

fn count_named<T>(map: &ByName<T>) -> usize {
    map.values().map(HashMap::len).sum()
}

fn remove_named<T>(map: &mut ByName<T>, namespace: &str, name: &str) -> Option<T> {
    let by_name = map.get_mut(namespace)?;
    let old = by_name.remove(name)?;
    if by_name.is_empty() {
        map.remove(namespace);
    }
    Some(old)
}
