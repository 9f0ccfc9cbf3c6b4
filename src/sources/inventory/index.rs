//! The inventory index: compact records laid out for the lookups resolution makes.
//!
//! Sources (a file, the API watchers) feed it through `upsert_*`/`remove_*`; it never does I/O. Lookups are on
//! the packet path, so the index does at write time what resolution would otherwise repeat per observation:
//! - pods, services and slices live in `Slots` with stable ids; EndpointSlices refer to their pods, and pods
//!   to their owners, by id, so following a reference is an array access rather than a hash probe and string
//!   compares;
//! - each pod carries the root of its owner chain, kept current by `Owners` as owners arrive, change or go;
//! - each Service carries its backing endpoints in slice order, so its server is found without visiting slices;
//! - namespaces, node names and owner kinds are shared strings.
//!
//! A key that something refers to keeps its slot while the object itself is absent (an endpoint naming a pod
//! not seen yet, a slice of a Service not seen yet); such slots are invisible to lookups and counts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::naming;
use super::objects::{NodeRecord, OwnerRecord, OwnerRef, PodRecord, ServiceRecord, SliceRecord};
use super::owners::Owners;
use super::table::{Id, Interner, IpMap, Key, Slots};
use crate::{IpNet, UnixMicros};

mod entries;
mod fetched;
mod ip_index;
mod links;
#[cfg(test)]
mod tests;

use entries::{Origin, SliceSlot};
pub use entries::{PodEntry, ServiceEntry};
pub use fetched::{Fetching, Unfetched, Wanted};
use ip_index::IpIndex;

/// What [`Inventory::on_node_change`] calls.
#[derive(Default)]
struct NodeListener(Option<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for NodeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "NodeListener(set)" } else { "NodeListener(none)" })
    }
}

/// Everything the resolver knows about the cluster.
#[derive(Debug, Default)]
pub struct Inventory {
    strings: Interner,
    /// Upserts so far; each record remembers the value at its last upsert, so a relist can find the records
    /// it did not name.
    stamp: u64,
    pods: Slots<PodEntry>,
    present_pods: usize,
    /// Present pods by their IPs.
    pods_by_ip: IpIndex,
    /// Pods (present or not) by the addresses EndpointSlices give them: how a remote pod is found by address
    /// before it is fetched, and where it runs.
    endpoint_ips: IpIndex,
    /// Changes to the watched node's listed pods, to its pod CIDRs and to the DNS servers so far (to every node's,
    /// while none is watched): a reader that saw the same number saw the same node.
    node_changes: u64,
    /// The node [`Inventory::watch_node`] watches, and what it tells of each change.
    watched_node: Option<Arc<str>>,
    node_listener: NodeListener,
    owners: Owners,
    services: Slots<ServiceEntry>,
    present_services: usize,
    services_by_ip: IpMap<Id>,
    slices: Slots<SliceSlot>,
    /// Endpoint addresses of Services that expose port 53, with how many such Services list each.
    dns_servers: HashMap<IpAddr, u32>,
    /// Owner kinds whose every object is delivered (the live watches'); empty for a file.
    tracked_owner_kinds: Vec<&'static str>,
    /// What the source fetches on request (docs/design.md §7); nothing for a file.
    fetching: Fetching,
    /// Fetches that brought nothing, until when that answer holds.
    unfetched: HashMap<Wanted, (Unfetched, UnixMicros)>,
    /// Nodes' `spec.podCIDRs`: the agent's own node from the API, every node of a file.
    node_pod_cidrs: HashMap<Arc<str>, Vec<IpNet>>,
}

/// An endpoint of a Service, and the pod it names (present, or a slot waiting for the pod).
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    /// The endpoint's hostname (headless Services).
    pub hostname: Option<&'a str>,
    /// The pod it names.
    pub pod: &'a PodEntry,
    /// The endpoint's `terminating` condition.
    pub terminating: bool,
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

/// The objects one relist sweeps.
#[derive(Clone, Copy, Debug)]
pub(super) enum Collection<'k> {
    Pods,
    Services,
    Slices,
    /// Owner objects of this kind.
    Owners(&'k str),
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// Adds or replaces a pod from a watch or a file; returns whether it is new.
    pub fn upsert_pod(&mut self, pod: PodRecord) -> bool {
        let key = Key { namespace: &pod.namespace, kind: "", name: &pod.name };
        let was = self.pods.find(key).map(|id| self.pods.get(id)).filter(|p| p.present);
        if self.concerns_node(pod.node_name.as_deref())
            || was.is_some_and(|p| self.concerns_node(p.record.node_name.as_deref()))
        {
            self.node_changed();
        }
        self.upsert_pod_from(pod, Origin::Listed)
    }

    fn upsert_pod_from(&mut self, mut pod: PodRecord, origin: Origin) -> bool {
        pod.namespace = self.strings.intern(&pod.namespace);
        pod.node_name = pod.node_name.map(|n| self.strings.intern(&n));
        pod.ips.shrink_to_fit();
        self.stamp += 1;
        let key = Key { namespace: &pod.namespace, kind: "", name: &pod.name };
        let id = self.pods.find_or_insert(key, || PodEntry::placeholder(&pod.namespace, &pod.name));
        // Link the new owner before unlinking the old one, so an owner that stays keeps its slot.
        let owner = pod.owner.as_ref().map(|o| self.owners.add_pod(&pod.namespace, o, id, &mut self.strings));
        pod.owner = owner.map(|o| self.owners.reference(o));
        let root = owner.map(|o| self.owners.root(o));
        let new = !self.pods.get(id).present;
        if !new {
            self.unlink_pod(id);
        }
        pod.ips.iter().for_each(|ip| self.pods_by_ip.link(*ip, id));
        let entry = self.pods.get_mut(id);
        let (endpoints, endpoint_node) = (entry.endpoints, entry.endpoint_node.take());
        *entry =
            PodEntry { present: true, root, record: pod, stamp: self.stamp, owner, endpoints, origin, endpoint_node };
        self.present_pods += usize::from(new);
        new
    }

    /// Removes a pod; returns whether it was known.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(id) = self.pods.find(Key { namespace, kind: "", name }) else { return false };
        let pod = self.pods.get(id);
        if !pod.present {
            return false;
        }
        if self.concerns_node(pod.record.node_name.as_deref()) {
            self.node_changed();
        }
        self.remove_pod_at(id);
        true
    }

    /// Removes the present pod in slot `id`.
    fn remove_pod_at(&mut self, id: Id) {
        self.unlink_pod(id);
        self.present_pods -= 1;
        let entry = self.pods.get_mut(id);
        let endpoints = entry.endpoints;
        let node_name = entry.endpoint_node.clone();
        *entry = PodEntry { endpoints, ..PodEntry::placeholder(&entry.record.namespace, &entry.record.name) };
        entry.record.node_name = node_name.clone();
        entry.endpoint_node = node_name;
        self.release_pod(id);
    }

    /// Adds or replaces an owner object; returns whether it is new.
    pub fn upsert_owner(&mut self, mut owner: OwnerRecord) -> bool {
        owner.namespace = self.strings.intern(&owner.namespace);
        owner.kind = self.strings.intern(&owner.kind);
        self.stamp += 1;
        let (new, pods) = self.owners.upsert(owner, self.stamp, &mut self.strings);
        self.refresh_roots(&pods);
        new
    }

    /// Removes an owner object; returns whether it was known.
    pub fn remove_owner(&mut self, namespace: &str, kind: &str, name: &str) -> bool {
        let Some(pods) = self.owners.remove(namespace, kind, name) else { return false };
        self.refresh_roots(&pods);
        true
    }

    /// Adds or replaces a service; returns whether it is new.
    pub fn upsert_service(&mut self, mut service: ServiceRecord) -> bool {
        service.namespace = self.strings.intern(&service.namespace);
        service.cluster_ips.shrink_to_fit();
        self.stamp += 1;
        let key = Key { namespace: &service.namespace, kind: "", name: &service.name };
        let id = self.services.find_or_insert(key, || ServiceEntry::placeholder(&service.namespace, &service.name));
        let new = !self.services.get(id).present;
        self.unlink_service_ips(id);
        for ip in &service.cluster_ips {
            self.services_by_ip.insert(*ip, id);
        }
        let entry = self.services.get_mut(id);
        entry.set_record(service);
        (entry.present, entry.stamp) = (true, self.stamp);
        self.present_services += usize::from(new);
        self.refresh_dns(id);
        new
    }

    /// Removes a service; returns whether it was known.
    pub fn remove_service(&mut self, namespace: &str, name: &str) -> bool {
        let Some(id) = self.services.find(Key { namespace, kind: "", name }) else { return false };
        if !self.services.get(id).present {
            return false;
        }
        self.unlink_service_ips(id);
        self.present_services -= 1;
        let entry = self.services.get_mut(id);
        entry.present = false;
        entry.record.cluster_ips = Vec::new();
        entry.record.ports = Vec::new();
        self.refresh_dns(id);
        self.release_service(id);
        true
    }

    /// Adds or replaces an EndpointSlice; returns whether it is new.
    pub fn upsert_slice(&mut self, slice: SliceRecord) -> bool {
        let namespace = self.strings.intern(&slice.namespace);
        self.stamp += 1;
        let existing = self.slices.find(Key { namespace: &namespace, kind: "", name: &slice.name });
        if let Some(id) = existing {
            self.detach_slice(id);
        }
        let service = slice.service.as_ref().map(|name| self.attach_slice(&namespace, name, &slice));
        let id = existing.unwrap_or_else(|| {
            let name = slice.name.clone();
            let make = || SliceSlot { namespace: namespace.clone(), name, stamp: 0, service: None };
            self.slices.find_or_insert(Key { namespace: &namespace, kind: "", name: &slice.name }, make)
        });
        let slot = self.slices.get_mut(id);
        (slot.stamp, slot.service) = (self.stamp, service);
        existing.is_none()
    }

    /// Removes an EndpointSlice; returns whether it was known.
    pub fn remove_slice(&mut self, namespace: &str, name: &str) -> bool {
        let Some(id) = self.slices.find(Key { namespace, kind: "", name }) else { return false };
        self.detach_slice(id);
        self.slices.remove(id);
        true
    }

    /// Every pod that holds this IP, in any state.
    pub fn pods_with_ip(&self, ip: &IpAddr) -> impl Iterator<Item = &PodEntry> {
        self.pods_by_ip.get(ip).map(|id| self.pods.get(id))
    }

    /// The pods EndpointSlices give this address, present or not yet fetched (their node is known either way).
    pub fn endpoint_pods_at(&self, ip: &IpAddr) -> impl Iterator<Item = &PodEntry> {
        self.endpoint_ips.get(ip).map(|id| self.pods.get(id))
    }

    /// How many times a listed pod of the watched node, its pod CIDRs or the DNS servers changed (of any node,
    /// while none is watched): a reader that saw the same number saw the same node.
    pub fn node_changes(&self) -> u64 {
        self.node_changes
    }

    /// From now on counts in [`Inventory::node_changes`] only the changes that concern `node` (its listed pods,
    /// its pod CIDRs, and the DNS servers), and calls `listener` after each, under the write lock of whoever
    /// changes the inventory: it must be quick (the capture's node filter wakes its thread). With a cluster-wide
    /// Pod watch, other nodes' pods then neither wake the capture nor make its filter be rebuilt.
    pub fn watch_node(&mut self, node: &str, listener: impl Fn() + Send + Sync + 'static) {
        self.watched_node = Some(Arc::from(node));
        self.node_listener = NodeListener(Some(Box::new(listener)));
    }

    /// Whether a change on `node` (`None`: a pod not yet scheduled) may change what the watched node's filter
    /// passes.
    fn concerns_node(&self, node: Option<&str>) -> bool {
        self.watched_node.as_deref().is_none_or(|watched| node == Some(watched))
    }

    fn node_changed(&mut self) {
        self.node_changes += 1;
        if let Some(listener) = &self.node_listener.0 {
            listener();
        }
    }

    /// The pod-network addresses of the listed pods on `node`: the node's own pods, whose traffic it counts.
    pub fn node_pod_addresses(&self, node: &str) -> Vec<IpAddr> {
        let own =
            |p: &&PodEntry| p.present && p.origin == Origin::Listed && p.record.node_name.as_deref() == Some(node);
        let pods = self.pods.iter().map(|(_, p)| p).filter(own).filter(|p| !p.record.host_network);
        let mut addresses: Vec<IpAddr> = pods.flat_map(|p| p.record.ips.iter().copied()).collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }

    /// Adds or replaces a node's pod CIDRs; returns whether the node is new.
    pub fn upsert_node(&mut self, node: NodeRecord) -> bool {
        if self.concerns_node(Some(&node.name)) {
            self.node_changed();
        }
        self.node_pod_cidrs.insert(node.name, node.pod_cidrs).is_none()
    }

    /// Forgets a node; returns whether it was known.
    pub fn remove_node(&mut self, name: &str) -> bool {
        if self.concerns_node(Some(name)) {
            self.node_changed();
        }
        self.node_pod_cidrs.remove(name).is_some()
    }

    /// A node's `spec.podCIDRs`; empty when unknown.
    pub fn node_pod_cidrs(&self, node: &str) -> &[IpNet] {
        self.node_pod_cidrs.get(node).map_or(&[], Vec::as_slice)
    }

    /// A pod by namespace and name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodEntry> {
        let entry = self.pods.get(self.pods.find(Key { namespace, kind: "", name })?);
        entry.present.then_some(entry)
    }

    /// An owner by namespace, kind and name.
    pub fn owner(&self, namespace: &str, kind: &str, name: &str) -> Option<&OwnerRecord> {
        self.owners.get(namespace, kind, name)
    }

    /// Declares that every owner of these kinds will be delivered (the live API watches them), so a chain that
    /// stops at a missing one is incomplete rather than rooted there. A file inventory declares none: whatever
    /// it lacks stays missing, and the chain stops at the reference as Otterize does.
    pub fn track_owner_kinds(&mut self, kinds: &[&'static str]) {
        self.tracked_owner_kinds = kinds.to_vec();
    }

    /// Whether owners of `kind` are declared complete (see [`Inventory::track_owner_kinds`]).
    pub fn tracks_owner_kind(&self, kind: &str) -> bool {
        self.tracked_owner_kinds.contains(&kind)
    }

    /// The root of the owner chain that starts at `owner` (a pod's owner reference in `namespace`); `None`
    /// when there is no owner. What [`PodEntry::owner_root`] holds, for a pod record from anywhere.
    pub fn owner_root(&self, namespace: &str, owner: Option<&OwnerRef>) -> Option<OwnerRef> {
        owner.map(|owner| self.owners.root_of(namespace, owner))
    }

    /// A service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        let entry = self.services.get(self.services.find(Key { namespace, kind: "", name })?);
        entry.present.then_some(entry)
    }

    /// The service that owns this ClusterIP.
    pub fn service_with_ip(&self, ip: &IpAddr) -> Option<&ServiceEntry> {
        self.services_by_ip.get(ip).map(|&id| self.services.get(id))
    }

    /// Whether `ip` is a DNS server by the inventory's account: a backend of a Service that exposes port 53
    /// (TCP or UDP), or the ClusterIP of such a Service. Answers addressed to a DNS server are forwarded
    /// lookups, and its port 53 is not a call (docs/design.md §3). Two hash probes; on the packet path.
    pub fn is_dns_server(&self, ip: &IpAddr) -> bool {
        (!self.dns_servers.is_empty() && self.dns_servers.contains_key(ip))
            || self.services_by_ip.get(ip).is_some_and(|&id| self.services.get(id).dns)
    }

    /// Every address the DNS-server rule names by the inventory's account: backends of Services that expose
    /// port 53.
    pub fn dns_server_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.dns_servers.keys().copied()
    }

    /// The known pods behind a service's endpoints, in slice-name then endpoint order, each with the
    /// endpoint's hostname.
    pub fn backing_pods<'s>(
        &'s self,
        service: &'s ServiceEntry,
    ) -> impl Iterator<Item = (Option<&'s str>, &'s PodEntry)> {
        // `first` spares a visit to the backends list when the first backend will do, as it usually does.
        let backends = service.first.iter().chain(service.backends.get(1..).unwrap_or_default());
        backends.map(|b| (b.hostname.as_deref(), self.pods.get(b.pod))).filter(|(_, pod)| pod.present)
    }

    /// Every endpoint of a service that names a pod, known or not, in the order of [`Inventory::backing_pods`].
    pub fn endpoints<'s>(&'s self, service: &'s ServiceEntry) -> impl Iterator<Item = Endpoint<'s>> {
        service.backends.iter().map(|b| Endpoint {
            hostname: b.hostname.as_deref(),
            pod: self.pods.get(b.pod),
            terminating: b.terminating,
        })
    }

    /// How many objects of each kind are indexed.
    pub fn counts(&self) -> Counts {
        Counts {
            pods: self.present_pods,
            owners: self.owners.len(),
            services: self.present_services,
            slices: self.slices.len(),
        }
    }

    /// Present pods by the kind of their owner, for owners of a kind in [`naming::OWNED_OWNER_KINDS`] that the
    /// inventory does not hold: such pods are named after that owner, not the workload above it.
    pub fn pods_of_missing_owners(&self) -> BTreeMap<String, usize> {
        let mut missing = BTreeMap::new();
        for (_, pod) in self.pods.iter().filter(|(_, pod)| pod.present) {
            let Some(owner) = &pod.record.owner else { continue };
            if naming::OWNED_OWNER_KINDS.contains(&&*owner.kind)
                && self.owner(&pod.record.namespace, &owner.kind, &owner.name).is_none()
            {
                *missing.entry(owner.kind.to_string()).or_insert(0) += 1;
            }
        }
        missing
    }

    /// The number of upserts so far: objects upserted later have a larger stamp.
    pub(super) fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Namespace and name of every object of `collection` last upserted at or before `stamp`.
    pub(super) fn upserted_before(&self, collection: Collection<'_>, stamp: u64) -> Vec<(Arc<str>, Arc<str>)> {
        let key = |ns: &Arc<str>, name: &Arc<str>| (ns.clone(), name.clone());
        match collection {
            Collection::Pods => self
                .pods
                .iter()
                .map(|(_, p)| p)
                .filter(|p| p.present && p.origin == Origin::Listed && p.stamp <= stamp)
                .map(|p| key(&p.record.namespace, &p.record.name))
                .collect(),
            Collection::Services => self
                .services
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.present && s.stamp <= stamp)
                .map(|s| key(&s.record.namespace, &s.record.name))
                .collect(),
            Collection::Slices => self
                .slices
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.stamp <= stamp)
                .map(|s| key(&s.namespace, &s.name))
                .collect(),
            Collection::Owners(kind) => self.owners.upserted_before(kind, stamp),
        }
    }
}
