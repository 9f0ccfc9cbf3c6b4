//! What the index keeps per object: pods and services with the data resolution reads first, and slices.

use std::sync::Arc;

use crate::sources::inventory::objects::{OwnerRef, PodRecord, ServiceRecord};
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
        PodEntry { present: false, root: None, record, stamp: 0, owner: None, endpoints: 0 }
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
    /// Names of the slices of this service, ordered, with how many of `backends` each contributed.
    pub(super) slices: Vec<(Arc<str>, usize)>,
    pub(super) stamp: u64,
}

/// Service names up to this long are kept inline; most are (a DNS label may have 63 bytes).
pub(super) const SHORT_NAME: usize = 31;

#[derive(Clone, Debug)]
pub(super) struct Backend {
    pub(super) hostname: Option<Arc<str>>,
    pub(super) pod: Id,
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
        };
        let mut entry = ServiceEntry {
            present: false,
            short_name: [0; SHORT_NAME],
            record,
            first: None,
            backends: Vec::new(),
            slices: Vec::new(),
            stamp: 0,
        };
        entry.set_record(entry.record.clone());
        entry
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
