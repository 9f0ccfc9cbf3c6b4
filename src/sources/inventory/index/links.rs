//! The index's cross-references: IPs to pods and services, pods to owners, slices to services and pods.
//! Every link made here has its undoing here, and a slot is freed when its last reference goes.

use std::net::IpAddr;
use std::sync::Arc;

use super::entries::{Backend, Origin, PodEntry, ServiceEntry, SliceShare};
use super::{Inventory, SliceRecord};
use crate::sources::inventory::objects::EndpointRecord;
use crate::sources::inventory::table::{Id, Key};

impl Inventory {
    /// Unlinks a present pod's IPs and owner, before it is replaced or removed.
    pub(super) fn unlink_pod(&mut self, id: Id) {
        let entry = self.pods.get_mut(id);
        let ips = std::mem::take(&mut entry.record.ips);
        let owner = entry.owner.take();
        ips.iter().for_each(|ip| self.pods_by_ip.unlink(ip, id));
        if let Some(owner) = owner {
            self.owners.remove_pod(owner, id);
        }
    }

    /// Frees a pod slot that holds no pod and no endpoint names. A pod fetched by an endpoint's name goes with the
    /// last endpoint that names it: nothing else would say when it is gone.
    pub(super) fn release_pod(&mut self, id: Id) {
        let entry = self.pods.get(id);
        if entry.endpoints > 0 {
            return;
        }
        match &entry.origin {
            _ if !entry.present => {
                self.pods.remove(id);
            }
            Origin::Fetched { by_address_at: None, .. } => self.remove_pod_at(id),
            Origin::Fetched { .. } | Origin::Listed => {}
        }
    }

    /// Recomputes the cached owner-chain roots of these pods after an owner changed.
    pub(super) fn refresh_roots(&mut self, pods: &[Id]) {
        for &id in pods {
            let root = self.pods.get(id).owner.map(|o| self.owners.root(o));
            self.pods.get_mut(id).root = root;
        }
    }

    pub(super) fn unlink_service_ips(&mut self, id: Id) {
        for ip in &self.services.get(id).record.cluster_ips {
            // Another service may have taken the IP since; only this service's own claims are dropped.
            if self.services_by_ip.get(ip) == Some(&id) {
                self.services_by_ip.remove(ip);
            }
        }
    }

    /// Frees a service slot that holds no service and no slices.
    pub(super) fn release_service(&mut self, id: Id) {
        let entry = self.services.get(id);
        if !entry.present && entry.slices.is_empty() {
            self.services.remove(id);
        }
    }

    /// Adds a slice's endpoints to its service (named `service` in `namespace`); returns the service's slot.
    pub(super) fn attach_slice(&mut self, namespace: &Arc<str>, service: &Arc<str>, slice: &SliceRecord) -> Id {
        let key = Key { namespace, kind: "", name: service };
        let service = self.services.find_or_insert(key, || ServiceEntry::placeholder(namespace, service));
        let backends: Vec<Backend> =
            slice.endpoints.iter().filter_map(|ep| self.attach_endpoint(namespace, ep)).collect();
        let entry = self.services.get_mut(service);
        let at = entry.slices.partition_point(|s| *s.name < *slice.name);
        let offset: usize = entry.slices[..at].iter().map(|s| s.backends).sum();
        let share = SliceShare {
            name: slice.name.clone(),
            backends: backends.len(),
            ports: slice.ports.clone(),
            addresses: slice.endpoints.iter().flat_map(|ep| ep.addresses.iter().copied()).collect(),
        };
        entry.slices.insert(at, share);
        entry.backends.splice(offset..offset, backends);
        entry.backends.shrink_to_fit();
        entry.first = entry.backends.first().cloned();
        self.refresh_dns(service);
        service
    }

    /// Recomputes which endpoint addresses this Service makes DNS servers (docs/design.md §3: a backend of a
    /// Service that exposes port 53), after its ports or slices changed.
    pub(super) fn refresh_dns(&mut self, id: Id) {
        let entry = self.services.get_mut(id);
        let dns = entry.exposes_dns();
        let old = std::mem::take(&mut entry.dns_addresses);
        let new: Vec<IpAddr> =
            if dns { entry.slices.iter().flat_map(|s| s.addresses.iter().copied()).collect() } else { Vec::new() };
        entry.dns = dns;
        entry.dns_addresses = new.clone();
        if old != new {
            // The node filter keeps answers to the node's DNS servers out.
            self.node_changed();
        }
        for ip in old {
            if let Some(n) = self.dns_servers.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.dns_servers.remove(&ip);
                }
            }
        }
        for ip in new {
            *self.dns_servers.entry(ip).or_default() += 1;
        }
    }

    /// Takes a slice's endpoints out of its service, releasing what only they referred to.
    pub(super) fn detach_slice(&mut self, id: Id) {
        let slot = self.slices.get_mut(id);
        let Some(service) = slot.service.take() else { return };
        let name = slot.name.clone();
        let entry = self.services.get_mut(service);
        let Some(at) = entry.slices.iter().position(|s| s.name == name) else { return };
        let offset: usize = entry.slices[..at].iter().map(|s| s.backends).sum();
        let count = entry.slices.remove(at).backends;
        let removed: Vec<Backend> = entry.backends.drain(offset..offset + count).collect();
        entry.first = entry.backends.first().cloned();
        self.refresh_dns(service);
        for backend in removed {
            if let Some(address) = backend.address {
                self.endpoint_ips.unlink(&address, backend.pod);
            }
            self.pods.get_mut(backend.pod).endpoints -= 1;
            self.release_pod(backend.pod);
        }
        self.release_service(service);
    }

    /// Links an endpoint that names a pod to the pod's slot (made if the pod is not known yet), and what it says
    /// of the pod to a pod the index did not list: where it runs, and whether it is terminating. A fetched pod
    /// whose uid the endpoint no longer names was deleted and recreated under its name, and is dropped to be
    /// fetched again.
    fn attach_endpoint(&mut self, namespace: &Arc<str>, ep: &EndpointRecord) -> Option<Backend> {
        let name = ep.pod.as_ref()?;
        let key = Key { namespace, kind: "", name };
        let pod = self.pods.find_or_insert(key, || PodEntry::placeholder(namespace, name));
        let node = ep.node_name.as_ref().map(|n| self.strings.intern(n));
        let entry = self.pods.get_mut(pod);
        entry.endpoints += 1;
        entry.endpoint_node = node.clone();
        let recreated = matches!(&entry.origin, Origin::Fetched { uid: Some(uid), .. }
            if entry.present && ep.pod_uid.as_ref().is_some_and(|named| named != uid));
        if recreated {
            self.remove_pod_at(pod);
        }
        let entry = self.pods.get_mut(pod);
        match (&entry.origin, entry.present) {
            (_, false) => entry.record.node_name = node,
            (Origin::Fetched { .. }, true) => entry.record.terminating |= ep.terminating,
            (Origin::Listed, true) => {}
        }
        let address = ep.addresses.first().copied();
        if let Some(address) = address {
            self.endpoint_ips.link(address, pod);
        }
        Some(Backend { hostname: ep.hostname.clone(), pod, address, terminating: ep.terminating })
    }
}
