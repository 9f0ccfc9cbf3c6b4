//! The baseline the inventory index is measured against (`docs/inventory-index.md`): the same information the
//! resolver needs, held the obvious way — std `HashMap`s keyed by namespace and name, holding the projected
//! records as they come, with owner chains walked and endpoints followed at lookup time — and a resolver over
//! it that gives the same answers as `network_mapper::resolve::Resolver` for DNS answers naming Services or
//! pods and for connections.
//!
//! What it leaves out against the real index: the relist bookkeeping (`upserted_before`) and object counts.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use network_mapper::UnixMicros;
use network_mapper::resolve::{ClusterName, Edge, Reason, Resolution, Server, Side, Workload, parse_cluster_name};
use network_mapper::sources::inventory::{OwnerRecord, OwnerRef, PodRecord, ServiceRecord, SliceRecord};

/// Namespace → name → value.
type ByName<V> = HashMap<Arc<str>, HashMap<Arc<str>, V>>;
/// An object's namespace and name.
type NameKey = (Arc<str>, Arc<str>);

/// Longest owner chain followed, as the real index.
const MAX_OWNER_HOPS: usize = 10;

/// Pods, owners, services and slices in plain maps.
#[derive(Default)]
pub struct PlainIndex {
    pods: ByName<PodRecord>,
    /// Every pod (namespace, name) that holds an IP.
    pods_by_ip: HashMap<IpAddr, Vec<NameKey>>,
    /// Namespace → kind → name → owner.
    owners: HashMap<Arc<str>, ByName<OwnerRecord>>,
    services: ByName<ServiceRecord>,
    services_by_ip: HashMap<IpAddr, NameKey>,
    slices: ByName<SliceRecord>,
    /// Namespace → Service name → its slices' names, in name order.
    slices_by_service: ByName<BTreeSet<Arc<str>>>,
    tracked_owner_kinds: Vec<&'static str>,
}

fn get<'m, V>(map: &'m ByName<V>, namespace: &str, name: &str) -> Option<&'m V> {
    map.get(namespace)?.get(name)
}

impl PlainIndex {
    pub fn track_owner_kinds(&mut self, kinds: &[&'static str]) {
        self.tracked_owner_kinds = kinds.to_vec();
    }

    pub fn upsert_pod(&mut self, pod: PodRecord) {
        self.remove_pod(&pod.namespace.clone(), &pod.name.clone());
        for ip in &pod.ips {
            self.pods_by_ip.entry(*ip).or_default().push((pod.namespace.clone(), pod.name.clone()));
        }
        self.pods.entry(pod.namespace.clone()).or_default().insert(pod.name.clone(), pod);
    }

    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        let Some(pod) = self.pods.get_mut(namespace).and_then(|pods| pods.remove(name)) else { return };
        for ip in &pod.ips {
            if let Some(holders) = self.pods_by_ip.get_mut(ip) {
                holders.retain(|(ns, n)| !(**ns == *namespace && **n == *name));
                if holders.is_empty() {
                    self.pods_by_ip.remove(ip);
                }
            }
        }
    }

    pub fn upsert_owner(&mut self, owner: OwnerRecord) {
        let kinds = self.owners.entry(owner.namespace.clone()).or_default();
        kinds.entry(owner.kind.clone()).or_default().insert(owner.name.clone(), owner);
    }

    pub fn remove_owner(&mut self, namespace: &str, kind: &str, name: &str) {
        if let Some(names) = self.owners.get_mut(namespace).and_then(|kinds| kinds.get_mut(kind)) {
            names.remove(name);
        }
    }

    pub fn upsert_service(&mut self, service: ServiceRecord) {
        self.remove_service(&service.namespace.clone(), &service.name.clone());
        for ip in &service.cluster_ips {
            self.services_by_ip.insert(*ip, (service.namespace.clone(), service.name.clone()));
        }
        self.services.entry(service.namespace.clone()).or_default().insert(service.name.clone(), service);
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        let Some(service) = self.services.get_mut(namespace).and_then(|s| s.remove(name)) else { return };
        for ip in &service.cluster_ips {
            // Another service may have taken the IP since.
            if self.services_by_ip.get(ip).is_some_and(|(ns, n)| **ns == *namespace && **n == *name) {
                self.services_by_ip.remove(ip);
            }
        }
    }

    pub fn upsert_slice(&mut self, slice: SliceRecord) {
        self.remove_slice(&slice.namespace.clone(), &slice.name.clone());
        if let Some(service) = &slice.service {
            let by_service = self.slices_by_service.entry(slice.namespace.clone()).or_default();
            by_service.entry(service.clone()).or_default().insert(slice.name.clone());
        }
        self.slices.entry(slice.namespace.clone()).or_default().insert(slice.name.clone(), slice);
    }

    pub fn remove_slice(&mut self, namespace: &str, name: &str) {
        let Some(slice) = self.slices.get_mut(namespace).and_then(|s| s.remove(name)) else { return };
        if let Some(service) = &slice.service
            && let Some(names) = self.slices_by_service.get_mut(namespace).and_then(|s| s.get_mut(service))
        {
            names.remove(name);
        }
    }

    fn owner(&self, namespace: &str, kind: &str, name: &str) -> Option<&OwnerRecord> {
        self.owners.get(namespace)?.get(kind)?.get(name)
    }

    /// The root of a pod's owner chain, walked through the owners known now.
    fn owner_root<'s>(&'s self, namespace: &str, first: &'s OwnerRef) -> &'s OwnerRef {
        let mut current = first;
        for _ in 1..MAX_OWNER_HOPS {
            match self.owner(namespace, &current.kind, &current.name).and_then(|o| o.owner.as_ref()) {
                Some(parent) => current = parent,
                None => break,
            }
        }
        current
    }

    /// The known pods behind a service's endpoints, in slice-name then endpoint order, each with the endpoint's
    /// hostname.
    fn backing_pods<'s>(
        &'s self,
        namespace: &'s str,
        service: &str,
    ) -> impl Iterator<Item = (Option<&'s str>, &'s PodRecord)> {
        let slices = get(&self.slices_by_service, namespace, service).into_iter().flatten();
        slices
            .filter_map(move |name| get(&self.slices, namespace, name))
            .flat_map(|slice| &slice.endpoints)
            .filter_map(move |ep| Some((ep.hostname.as_deref(), get(&self.pods, namespace, ep.pod.as_deref()?)?)))
    }
}

/// `Resolver::dns_answer` and `Resolver::connection` over a [`PlainIndex`] (no node filter, no outside names).
pub struct PlainResolver<'a> {
    pub index: &'a PlainIndex,
    pub cluster_domain: &'a str,
}

enum Target<'a> {
    Pod(&'a PodRecord),
    Service(&'a ServiceRecord),
    ApiServer,
}

impl<'a> PlainResolver<'a> {
    pub fn dns_answer(&self, client: IpAddr, name: &str, at: UnixMicros) -> Resolution {
        let client = match self.pod_for_ip(&client, at) {
            Ok(pod) => pod,
            Err(reason) => return Resolution::Unresolved(Side::Client, reason),
        };
        let server = match parse_cluster_name(name, self.cluster_domain) {
            ClusterName::Service { namespace, service, .. } if namespace == "default" && service == "kubernetes" => {
                Ok(Target::ApiServer)
            }
            ClusterName::Service { namespace, service, host } => match get(&self.index.services, namespace, service) {
                Some(record) => Ok(self.service_server(record, host, at)),
                None => Err(Reason::UnknownService),
            },
            ClusterName::Pod { ip, .. } => self.pod_for_ip(&ip, at).map(Target::Pod),
            ClusterName::Outside => unimplemented!("the bench names only in-cluster services and pods"),
        };
        self.complete(client, server)
    }

    pub fn connection(&self, local: IpAddr, remote: IpAddr, at: UnixMicros) -> Resolution {
        let client = match self.pod_for_ip(&local, at) {
            Ok(pod) => pod,
            Err(reason) => return Resolution::Unresolved(Side::Client, reason),
        };
        let server = match self.index.services_by_ip.get(&remote) {
            Some((ns, name)) if &**ns == "default" && &**name == "kubernetes" => Ok(Target::ApiServer),
            Some((ns, name)) => {
                let record = get(&self.index.services, ns, name).expect("services_by_ip names a known service");
                Ok(self.service_server(record, None, at))
            }
            None => self.pod_for_ip(&remote, at).map(Target::Pod),
        };
        self.complete(client, server)
    }

    fn pod_for_ip(&self, ip: &IpAddr, at: UnixMicros) -> Result<&'a PodRecord, Reason> {
        let (mut known, mut live, mut pod_network, mut active) = (0, 0, 0, 0);
        let mut found = None;
        let holders = self.index.pods_by_ip.get(ip).map_or(&[][..], Vec::as_slice);
        for pod in holders.iter().filter_map(|(ns, name)| get(&self.index.pods, ns, name)) {
            known += 1;
            if pod.finished {
                continue;
            }
            live += 1;
            if pod.host_network {
                continue;
            }
            pod_network += 1;
            if !pod.terminating {
                active += 1;
                found = Some(pod);
            }
        }
        match (live, pod_network, active, found) {
            _ if known == 0 => Err(Reason::UnknownIp),
            (0, ..) => Err(Reason::Finished),
            (_, 0, ..) => Err(Reason::HostNetwork),
            (.., 0, _) => Err(Reason::Terminating),
            (.., 1, Some(pod)) if !existed_at(pod, at) => Err(Reason::BeforeCreation),
            (.., 1, Some(pod)) => Ok(pod),
            _ => Err(Reason::Ambiguous),
        }
    }

    fn service_server(&self, service: &'a ServiceRecord, host: Option<&str>, at: UnixMicros) -> Target<'a> {
        if !service.external_name {
            let usable =
                |pod: &&PodRecord| !pod.host_network && !pod.terminating && !pod.finished && existed_at(pod, at);
            let backing = |host: Option<&str>| {
                self.index
                    .backing_pods(&service.namespace, &service.name)
                    .filter(|(hostname, _)| host.is_none() || *hostname == host)
                    .map(|(_, pod)| pod)
                    .find(usable)
            };
            if let Some(pod) = host.and_then(|h| backing(Some(h))).or_else(|| backing(None)) {
                return Target::Pod(pod);
            }
        }
        Target::Service(service)
    }

    fn owner_pending(&self, pod: &PodRecord) -> bool {
        let Some(first) = &pod.owner else { return false };
        let root = self.index.owner_root(&pod.namespace, first);
        self.index.tracked_owner_kinds.contains(&&*root.kind)
            && pod.workload_override.is_none()
            && self.index.owner(&pod.namespace, &root.kind, &root.name).is_none()
    }

    fn workload(&self, pod: &PodRecord) -> Workload {
        let (kind, name) = match &pod.owner {
            Some(first) => {
                let root = self.index.owner_root(&pod.namespace, first);
                (root.kind.clone(), root.name.clone())
            }
            None => (Arc::from("Pod"), pod.name.clone()),
        };
        let name = pod.workload_override.clone().unwrap_or(name);
        named(name, pod.namespace.clone(), kind)
    }

    fn complete(&self, client: &PodRecord, server: Result<Target<'_>, Reason>) -> Resolution {
        if self.owner_pending(client) {
            return Resolution::Unresolved(Side::Client, Reason::OwnerPending);
        }
        if let Ok(Target::Pod(pod)) = &server
            && self.owner_pending(pod)
        {
            return Resolution::Unresolved(Side::Server, Reason::OwnerPending);
        }
        let server = match server {
            Ok(Target::Pod(pod)) => self.workload(pod),
            Ok(Target::Service(s)) => named(s.name.clone(), s.namespace.clone(), Arc::from("Service")),
            Ok(Target::ApiServer) => named(Arc::from("kubernetes"), Arc::from("default"), Arc::from("Service")),
            Err(reason) => return Resolution::Unresolved(Side::Server, reason),
        };
        Resolution::Edge(Edge { client: self.workload(client), server: Server::Workload(server) })
    }
}

/// `.` separates name and namespace in intents, so it cannot appear in an identity name.
fn named(name: Arc<str>, namespace: Arc<str>, kind: Arc<str>) -> Workload {
    let name = if name.contains('.') { Arc::from(name.replace('.', "_")) } else { name };
    Workload { name, namespace, kind }
}

fn existed_at(pod: &PodRecord, at: UnixMicros) -> bool {
    pod.created_unix.is_none_or(|created| at.div_euclid(1_000_000) >= created)
}
