//! What the index holds on request rather than by watch (docs/design.md §7): an agent watches only its own
//! node's pods, so a remote pod is fetched when an observation needs it (by the name an EndpointSlice gives it,
//! or by address when no endpoint names it), and so are the owners that name workloads. The index records what
//! was fetched, and for a while what could not be, so resolution asks once and then knows.
//!
//! The fetching itself is the API source's (`kube::fetch`); the index only keeps its results.

use std::net::IpAddr;
use std::sync::Arc;

use super::Inventory;
use super::entries::Origin;
use crate::sources::inventory::objects::{OwnerRecord, PodRecord};
use crate::sources::inventory::table::Key;
use crate::{IpNet, UnixMicros};

/// At most this many failed or empty fetches are remembered; more are forgotten (and asked again).
const MAX_UNFETCHED: usize = 16_384;

/// Something resolution needs that the watches do not deliver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Wanted {
    /// A pod an EndpointSlice names.
    Pod {
        /// Its namespace.
        namespace: Arc<str>,
        /// Its name.
        name: Arc<str>,
    },
    /// Whatever pod holds this address (no endpoint names one).
    PodAt(IpAddr),
    /// An owner of a tracked kind (a ReplicaSet, a Job) that a pod's chain reaches.
    Owner {
        /// Its namespace.
        namespace: Arc<str>,
        /// Its kind.
        kind: Arc<str>,
        /// Its name.
        name: Arc<str>,
    },
}

/// How a fetch ended when it brought nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfetched {
    /// The API has no such object (or no pod at that address).
    Missing,
    /// The request failed or was not made (rate limit): nothing is known.
    Failed,
}

/// What the inventory's source fetches on request; nothing for a file or a cluster-wide watch.
#[derive(Clone, Debug, Default)]
pub struct Fetching {
    /// Pods the watches do not deliver: by the name endpoints give them, and by address within `pod_networks`.
    pub pods: bool,
    /// Where pod addresses come from (`--cluster-cidr`): only these addresses are worth a fetch by address.
    pub pod_networks: Vec<IpNet>,
    /// Owners of the tracked kinds, which are then fetched rather than watched.
    pub owners: bool,
}

impl Inventory {
    /// Declares what the source fetches on request.
    pub fn set_fetching(&mut self, fetching: Fetching) {
        self.fetching = fetching;
    }

    /// Whether remote pods are fetched on request.
    pub fn fetches_pods(&self) -> bool {
        self.fetching.pods
    }

    /// Whether owners of the tracked kinds are fetched on request.
    pub fn fetches_owners(&self) -> bool {
        self.fetching.owners
    }

    /// Whether `ip` may be a pod's address worth a fetch by address.
    pub fn may_be_pod_address(&self, ip: &IpAddr) -> bool {
        self.fetching.pods && self.fetching.pod_networks.iter().any(|net| net.contains(ip))
    }

    /// How the last fetch of `wanted` ended, if it brought nothing and that answer still holds at `at`.
    pub fn unfetched(&self, wanted: &Wanted, at: UnixMicros) -> Option<Unfetched> {
        if self.unfetched.is_empty() {
            return None;
        }
        self.unfetched.get(wanted).filter(|(_, until)| at < *until).map(|(outcome, _)| *outcome)
    }

    /// Records that fetching `wanted` brought nothing; the answer holds until `until`.
    pub fn record_unfetched(&mut self, wanted: Wanted, outcome: Unfetched, until: UnixMicros) {
        if self.unfetched.len() >= MAX_UNFETCHED {
            self.unfetched.clear();
        }
        self.unfetched.insert(wanted, (outcome, until));
    }

    /// Adds a fetched pod: by the name an endpoint gave it (`by_address_at: None`), or by address. A pod the
    /// watches list, or one fetched by name that no endpoint names any more, is left as it is. Returns whether
    /// the pod was added.
    pub fn upsert_fetched_pod(
        &mut self,
        pod: PodRecord,
        uid: Option<Arc<str>>,
        by_address_at: Option<UnixMicros>,
    ) -> bool {
        let existing = self.pods.find(Key { namespace: &pod.namespace, kind: "", name: &pod.name });
        let entry = existing.map(|id| self.pods.get(id));
        let listed = entry.is_some_and(|e| e.present && e.origin == Origin::Listed);
        let named = entry.is_some_and(|e| e.endpoints > 0);
        if listed || (by_address_at.is_none() && !named) {
            return false;
        }
        self.unfetched.remove(&Wanted::Pod { namespace: pod.namespace.clone(), name: pod.name.clone() });
        for ip in &pod.ips {
            self.unfetched.remove(&Wanted::PodAt(*ip));
        }
        self.upsert_pod_from(pod, Origin::Fetched { uid, by_address_at });
        true
    }

    /// Adds a fetched owner.
    pub fn upsert_fetched_owner(&mut self, owner: OwnerRecord) {
        let wanted =
            Wanted::Owner { namespace: owner.namespace.clone(), kind: owner.kind.clone(), name: owner.name.clone() };
        self.unfetched.remove(&wanted);
        self.upsert_owner(owner);
    }

    /// Forgets pods fetched by address before `fetched_before` (nothing says when such a pod is gone, and its
    /// address may have gone to another pod since) and fetch failures that no longer hold at `now`.
    pub fn expire_fetched(&mut self, now: UnixMicros, fetched_before: UnixMicros) {
        let stale: Vec<_> = self
            .pods
            .iter()
            .filter(|(_, p)| p.present && p.endpoints == 0)
            .filter(|(_, p)| matches!(p.origin, Origin::Fetched { by_address_at: Some(at), .. } if at < fetched_before))
            .map(|(id, _)| id)
            .collect();
        for id in stale {
            self.remove_pod_at(id);
        }
        self.unfetched.retain(|_, (_, until)| now < *until);
    }
}
