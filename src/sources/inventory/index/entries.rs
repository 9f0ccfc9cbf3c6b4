//! What the index keeps per object: pods and services with the data resolution reads first, and slices.

use std::sync::Arc;

use std::net::IpAddr;

use crate::UnixMicros;
use crate::sources::inventory::objects::{DNS_PORT, OwnerRef, PodRecord, ServiceRecord, SlicePort, TargetPort};
use crate::sources::inventory::table::{Id, Key, Keyed};

/// A pod as the index holds it: its record and the root of its owner chain.
///
/// Aligned to a pair of cache lines, with what resolution reads first: the pair is fetched as one on common
/// CPUs, so resolving a pod is one memory access.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct PodEntry {
    pub(super) present: bool,
    /// The root of the owner chain; `None` for a pod without owner.
    pub(super) root: Option<OwnerRef>,
    pub(super) record: PodRecord,
    pub(super) stamp: u64,
    /// The owner slot of `record.owner`.
    pub(super) owner: Option<Id>,
    /// How many endpoints name this pod.
    pub(super) endpoints: u32,
    /// Where the record came from.
    pub(super) origin: Origin,
    /// The node the last endpoint naming this pod gave, which stays known while the pod is absent.
    pub(super) endpoint_node: Option<Arc<str>>,
}

/// Where a pod's record came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// A watch or the inventory file: kept until they say it is gone.
    Listed,
    /// Fetched on request (docs/design.md §7). `uid` tells a pod recreated under the same name (a StatefulSet's)
    /// from the one fetched. Fetched by the name an endpoint gave, it is kept while an endpoint names it; by
    /// address (`by_address_at`), for a while only, since nothing will say when it is gone.
    Fetched { uid: Option<Arc<str>>, by_address_at: Option<UnixMicros> },
}

impl PodEntry {
    /// The pod.
    pub fn record(&self) -> &PodRecord {
        &self.record
    }

    /// The root of the pod's controller owner chain as the index knows it now: the last owner reached by
    /// following owner references through known owner objects (at most ten links, which only cuts reference
    /// cycles). `None` when the pod names no owner.
    pub fn owner_root(&self) -> Option<&OwnerRef> {
        self.root.as_ref()
    }

    pub(super) fn placeholder(namespace: &Arc<str>, name: &Arc<str>) -> PodEntry {
        let record = PodRecord::bare(namespace.clone(), name.clone());
        let origin = Origin::Listed;
        PodEntry {
            present: false,
            root: None,
            record,
            stamp: 0,
            owner: None,
            endpoints: 0,
            origin,
            endpoint_node: None,
        }
    }

    /// Whether the pod is known (rather than only named by an endpoint).
    pub fn is_present(&self) -> bool {
        self.present
    }
}

impl Keyed for PodEntry {
    fn key(&self) -> Key<'_> {
        Key { namespace: &self.record.namespace, kind: "", name: &self.record.name }
    }
}

/// A Service as the index holds it: its record and the endpoints of its EndpointSlices.
///
/// Laid out like [`PodEntry`]. Finding a service by name and its first backing pod reads only this pair of
/// cache lines: short names are compared with an inline copy, and the first backend is kept inline.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct ServiceEntry {
    pub(super) present: bool,
    /// `record.name` when it fits, for comparing without visiting the string.
    pub(super) short_name: [u8; SHORT_NAME],
    pub(super) record: ServiceRecord,
    /// `backends[0]`.
    pub(super) first: Option<Backend>,
    /// The endpoints that name a pod, slice by slice in slice-name order (which keeps the "first backing pod"
    /// choice deterministic), each slice's in its own order.
    pub(super) backends: Vec<Backend>,
    /// The slices of this service, ordered by name, with how many of `backends` each contributed.
    pub(super) slices: Vec<SliceShare>,
    pub(super) stamp: u64,
    /// Whether this Service exposes port 53 (its own ports, or its slices'): its backends are DNS servers.
    pub(super) dns: bool,
    /// The endpoint addresses this Service put into the index's DNS-server set (to take them out again).
    pub(super) dns_addresses: Vec<IpAddr>,
}

/// What one EndpointSlice contributes to its Service.
#[derive(Debug)]
pub(super) struct SliceShare {
    pub(super) name: Arc<str>,
    /// How many of the service's `backends` come from this slice.
    pub(super) backends: usize,
    pub(super) ports: Vec<SlicePort>,
    /// Every endpoint address, so the DNS-server set can be rebuilt whichever of Service and slice arrives
    /// (or changes its ports) last.
    pub(super) addresses: Vec<IpAddr>,
}

/// Service names up to this long are kept inline; most are (a DNS label may have 63 bytes).
pub(super) const SHORT_NAME: usize = 31;

#[derive(Clone, Debug)]
pub(super) struct Backend {
    pub(super) hostname: Option<Arc<str>>,
    pub(super) pod: Id,
    /// The endpoint's (first) address: endpoints have one in practice, and it is how a remote pod is found by
    /// address before it is fetched.
    pub(super) address: Option<IpAddr>,
    /// The endpoint's `terminating` condition.
    pub(super) terminating: bool,
}

impl ServiceEntry {
    /// The service.
    pub fn record(&self) -> &ServiceRecord {
        &self.record
    }

    pub(super) fn placeholder(namespace: &Arc<str>, name: &Arc<str>) -> ServiceEntry {
        let record = ServiceRecord {
            namespace: namespace.clone(),
            name: name.clone(),
            cluster_ips: Vec::new(),
            external_name: false,
            ports: Vec::new(),
        };
        let mut entry = ServiceEntry {
            present: false,
            short_name: [0; SHORT_NAME],
            record,
            first: None,
            backends: Vec::new(),
            slices: Vec::new(),
            stamp: 0,
            dns: false,
            dns_addresses: Vec::new(),
        };
        entry.set_record(entry.record.clone());
        entry
    }

    /// Whether the Service or one of its slices has a port 53.
    pub(super) fn exposes_dns(&self) -> bool {
        self.record.ports.iter().any(|p| p.port == DNS_PORT)
            || self.slices.iter().any(|s| s.ports.iter().any(|p| p.port == DNS_PORT))
    }

    /// The port on the backing pods that a TCP connection to `port` of the ClusterIP reaches: the slice port
    /// with the Service port's name (named target ports are resolved there), else a numeric `targetPort`.
    /// `None` when the Service has no such TCP port.
    pub fn target_port(&self, port: u16) -> Option<u16> {
        let service_port = self.record.ports.iter().find(|p| p.port == port && p.tcp)?;
        let resolved = self
            .slices
            .iter()
            .flat_map(|s| s.ports.iter())
            .find(|p| p.tcp && p.name == service_port.name)
            .map(|p| p.port);
        match (&service_port.target, resolved) {
            (_, Some(resolved)) => Some(resolved),
            (TargetPort::Number(n), None) => Some(*n),
            (TargetPort::Name(_), None) => None,
        }
    }

    pub(super) fn set_record(&mut self, record: ServiceRecord) {
        if let Some(inline) = self.short_name.get_mut(..record.name.len()) {
            inline.copy_from_slice(record.name.as_bytes());
        }
        self.record = record;
    }
}

impl Keyed for ServiceEntry {
    fn key(&self) -> Key<'_> {
        Key { namespace: &self.record.namespace, kind: "", name: &self.record.name }
    }

    fn has_key(&self, key: Key<'_>) -> bool {
        let name = &self.record.name;
        let same_name = match self.short_name.get(..name.len()) {
            Some(inline) => name.len() == key.name.len() && inline == key.name.as_bytes(),
            None => **name == *key.name,
        };
        // Namespaces are shared strings of a few hundred namespaces: their bytes are in cache.
        same_name && *self.record.namespace == *key.namespace && key.kind.is_empty()
    }
}

/// Where an EndpointSlice's endpoints went.
#[derive(Debug)]
pub(super) struct SliceSlot {
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) stamp: u64,
    pub(super) service: Option<Id>,
}

impl Keyed for SliceSlot {
    fn key(&self) -> Key<'_> {
        Key { namespace: &self.namespace, kind: "", name: &self.name }
    }
}
