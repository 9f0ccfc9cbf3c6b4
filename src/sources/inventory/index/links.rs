//! The index's cross-references: IPs to pods and services, pods to owners, slices to services and pods.
//! Every link made here has its undoing here, and a slot is freed when its last reference goes.

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::entries::{Backend, PodEntry, ServiceEntry, SliceShare};
use super::{Inventory, SHARED, SliceRecord};
use crate::sources::inventory::table::{Id, IpMap, Key};

impl Inventory {
    /// Unlinks a present pod's IPs and owner, before it is replaced or removed.
    pub(super) fn unlink_pod(&mut self, id: Id) {
        let entry = self.pods.get_mut(id);
        let ips = std::mem::take(&mut entry.record.ips);
        let owner = entry.owner.take();
        ips.iter().for_each(|ip| unlink_ip(&mut self.pods_by_ip, &mut self.shared_ips, ip, id));
        if let Some(owner) = owner {
            self.owners.remove_pod(owner, id);
        }
    }

    /// Frees a pod slot that holds no pod and no endpoint names.
    pub(super) fn release_pod(&mut self, id: Id) {
        let entry = self.pods.get(id);
        if !entry.present && entry.endpoints == 0 {
            self.pods.remove(id);
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
        let backends: Vec<Backend> = slice
            .endpoints
            .iter()
            .filter_map(|ep| {
                let name = ep.pod.as_ref()?;
                let pod = self
                    .pods
                    .find_or_insert(Key { namespace, kind: "", name }, || PodEntry::placeholder(namespace, name));
                self.pods.get_mut(pod).endpoints += 1;
                Some(Backend { hostname: ep.hostname.clone(), pod })
            })
            .collect();
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
            self.pods.get_mut(backend.pod).endpoints -= 1;
            self.release_pod(backend.pod);
        }
        self.release_service(service);
    }
}

pub(super) fn link_ip(by_ip: &mut IpMap<Id>, shared: &mut HashMap<IpAddr, Vec<Id>>, ip: IpAddr, id: Id) {
    match by_ip.get_mut(&ip) {
        None => {
            by_ip.insert(ip, id);
        }
        Some(&mut SHARED) => shared.entry(ip).or_default().push(id),
        Some(first) => {
            shared.insert(ip, vec![*first, id]);
            *first = SHARED;
        }
    }
}

/// Drops every claim of pod `id` on `ip`.
fn unlink_ip(by_ip: &mut IpMap<Id>, shared: &mut HashMap<IpAddr, Vec<Id>>, ip: &IpAddr, id: Id) {
    match by_ip.get(ip).copied() {
        Some(SHARED) => {
            let Some(pods) = shared.get_mut(ip) else { return };
            pods.retain(|&p| p != id);
            match pods[..] {
                [] => {
                    shared.remove(ip);
                    by_ip.remove(ip);
                }
                [one] => {
                    shared.remove(ip);
                    by_ip.insert(*ip, one);
                }
                _ => {}
            }
        }
        Some(one) if one == id => {
            by_ip.remove(ip);
        }
        _ => {}
    }
}
