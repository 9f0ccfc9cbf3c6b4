//! The live inventory: one kube-rs watch per kind (Pods, Services, EndpointSlices, and ReplicaSets and Jobs as
//! metadata only) keeping the same [`Inventory`] as `--inventory-file` current, so the resolver never knows
//! where its data came from. The only module that touches the Kubernetes API.
//!
//! Each object is projected into its compact record as soon as it is decoded; whole objects live only for
//! one list page. A (re)list is applied as it arrives and swept when it completes: whatever the index held of
//! that kind but the list did not name was deleted while the watch was away, and is removed. Meanwhile the last
//! good index keeps serving lookups.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ::kube::api::{Api, PartialObjectMeta};
use ::kube::client::{Body, ClientBuilder};
use ::kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event};
use ::kube::{Client, Config, Resource};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::Inventory;
use super::index::Collection;
use super::objects::{OwnerRecord, PodRecord, ServiceRecord, SliceRecord};

/// Events applied under one write lock: large enough that a 100k-pod list takes few locks, small enough that
/// a lookup never waits more than about a millisecond.
const BATCH: usize = 512;

/// Why the API client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file is missing or invalid.
    #[error("cannot use kubeconfig {path}: {source} (fix the file, or point --kubeconfig / $KUBECONFIG elsewhere)")]
    Kubeconfig {
        /// The file, as given.
        path: PathBuf,
        /// Why.
        source: KubeconfigError,
    },
    /// Neither an in-cluster service account nor a kubeconfig was found.
    #[error(
        "no Kubernetes API access: not in a pod with a service account ({in_cluster}) and no usable kubeconfig \
         ({kubeconfig}); pass --kubeconfig, set $KUBECONFIG, or use --inventory-file for a static inventory"
    )]
    NoAccess {
        /// Why in-cluster config failed.
        in_cluster: String,
        /// Why `$KUBECONFIG` / `~/.kube/config` failed.
        kubeconfig: String,
    },
    /// The client could not be built from a valid configuration (e.g. unreadable certificates).
    #[error("cannot create the Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
}

impl Error {
    /// A short stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kubeconfig { .. } => "kubeconfig",
            Error::NoAccess { .. } => "no_access",
            Error::Client(_) => "client",
        }
    }

    /// Whether the user's input is at fault (exit code 2) rather than the environment.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Client(_))
    }
}

/// The watched kinds, one watch stream each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Pods, cluster-wide: the server side of an edge may be on any node.
    Pod,
    /// Services.
    Service,
    /// EndpointSlices (backing pods of Services).
    EndpointSlice,
    /// ReplicaSets, metadata only (owner chains).
    ReplicaSet,
    /// Jobs, metadata only (owner chains).
    Job,
}

/// Every watched kind.
pub const KINDS: [Kind; 5] = [Kind::Pod, Kind::Service, Kind::EndpointSlice, Kind::ReplicaSet, Kind::Job];

impl Kind {
    /// The Kubernetes kind, also the `kind` label of the inventory metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
        }
    }

    /// The kind whose collection a request path names (`/api/v1/pods`, `/apis/apps/v1/replicasets`, …).
    fn of_path(path: &str) -> Option<Kind> {
        match path.rsplit('/').next()? {
            "pods" => Some(Kind::Pod),
            "services" => Some(Kind::Service),
            "endpointslices" => Some(Kind::EndpointSlice),
            "replicasets" => Some(Kind::ReplicaSet),
            "jobs" => Some(Kind::Job),
            _ => None,
        }
    }

    /// The `kind` label of the inventory metrics.
    pub fn metric_label(self) -> &'static str {
        self.name()
    }

    /// Removes one object of this kind; returns whether the index held it.
    fn remove(self, inventory: &mut Inventory, (namespace, name): &Key) -> bool {
        match self {
            Kind::Pod => inventory.remove_pod(namespace, name),
            Kind::Service => inventory.remove_service(namespace, name),
            Kind::EndpointSlice => inventory.remove_slice(namespace, name),
            Kind::ReplicaSet | Kind::Job => inventory.remove_owner(namespace, self.name(), name),
        }
    }

    fn collection(self) -> Collection<'static> {
        match self {
            Kind::Pod => Collection::Pods,
            Kind::Service => Collection::Services,
            Kind::EndpointSlice => Collection::Slices,
            Kind::ReplicaSet | Kind::Job => Collection::Owners(self.name()),
        }
    }
}

/// Namespace and name.
type Key = (Arc<str>, Arc<str>);

/// A projected object.
#[derive(Debug)]
enum Record {
    Pod(PodRecord),
    Service(ServiceRecord),
    Slice(SliceRecord),
    Owner(OwnerRecord),
}

impl Record {
    /// Returns whether the object is new to the index.
    fn upsert(self, inventory: &mut Inventory) -> bool {
        match self {
            Record::Pod(r) => inventory.upsert_pod(r),
            Record::Service(r) => inventory.upsert_service(r),
            Record::Slice(r) => inventory.upsert_slice(r),
            Record::Owner(r) => inventory.upsert_owner(r),
        }
    }
}

/// A watch event, projected.
#[derive(Debug)]
enum Change {
    /// A (re)list starts.
    Relist,
    /// An object of the list.
    Listed(Record),
    /// The list is complete.
    RelistDone,
    /// Added or modified while watching.
    Upsert(Record),
    /// Deleted while watching.
    Delete(Key),
}

/// What a batch did to the sync state of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transition {
    Relisting { first: bool },
    Synced,
}

/// One kind's share of the index. The watch task is the only writer of its kind, so it can count its objects
/// without asking the index.
#[derive(Debug)]
struct KindIndex {
    kind: Kind,
    /// The index's upsert stamp when the list in progress started; `Some` between `Relist` and `RelistDone`.
    /// Whatever of this kind was last upserted before it and is not named by the list is gone.
    listing_since: Option<u64>,
    lists: u64,
    objects: usize,
}

impl KindIndex {
    fn new(kind: Kind) -> KindIndex {
        KindIndex { kind, listing_since: None, lists: 0, objects: 0 }
    }

    fn apply(&mut self, inventory: &mut Inventory, change: Change) -> Option<Transition> {
        match change {
            Change::Relist => {
                self.listing_since = Some(inventory.stamp());
                self.lists += 1;
                return Some(Transition::Relisting { first: self.lists == 1 });
            }
            Change::Listed(record) | Change::Upsert(record) => {
                self.objects += usize::from(record.upsert(inventory));
            }
            Change::RelistDone => {
                if let Some(since) = self.listing_since.take() {
                    for stale in inventory.upserted_before(self.kind.collection(), since) {
                        self.objects -= usize::from(self.kind.remove(inventory, &stale));
                    }
                }
                return Some(Transition::Synced);
            }
            Change::Delete(key) => self.objects -= usize::from(self.kind.remove(inventory, &key)),
        }
        None
    }
}

/// What the watches report, implemented by whoever shows it (the exporter's metrics and `/readyz`). The inventory
/// knows nothing about metrics: it says what happened, per kind.
pub trait WatchObserver: Send + Sync + 'static {
    /// The number of indexed objects of `kind` after a batch of events.
    fn objects(&self, kind: Kind, count: usize);
    /// Whether `kind` is synced: false when a (re)list starts, true when it completes.
    fn synced(&self, kind: Kind, synced: bool);
    /// A watch of `kind` failed; it retries with backoff.
    fn watch_error(&self, kind: Kind);
    /// A full relist of `kind` after its first list.
    fn relisted(&self, kind: Kind);
    /// A watch request of `kind` after the first (a resumed stream).
    fn watch_restarted(&self, kind: Kind);
    /// Every kind has synced for the first time. Called once.
    fn all_synced(&self);
}

/// Where the watches report, shared by the watch tasks and the client's request counter.
#[derive(Clone)]
pub struct WatchStatus {
    observer: Arc<dyn WatchObserver>,
    kinds_synced: Arc<[AtomicBool; KINDS.len()]>,
}

impl WatchStatus {
    /// Reports into `observer`.
    pub fn new(observer: Arc<dyn WatchObserver>) -> WatchStatus {
        WatchStatus { observer, kinds_synced: Arc::default() }
    }

    fn error(&self, kind: Kind, error: &watcher::Error) {
        self.observer.watch_error(kind);
        match error {
            watcher::Error::WatchError(status) if status.code == 410 => {
                tracing::info!(kind = kind.name(), "watch expired (410 Gone); relisting");
            }
            _ => tracing::warn!(kind = kind.name(), error = %error, "watch failed; retrying with backoff"),
        }
    }

    fn transition(&self, kind: Kind, transition: Transition) {
        match transition {
            Transition::Relisting { first } => {
                self.observer.synced(kind, false);
                if !first {
                    self.observer.relisted(kind);
                    tracing::info!(kind = kind.name(), "relisting");
                }
            }
            Transition::Synced => {
                self.observer.synced(kind, true);
                let was_synced = self.kinds_synced[kind as usize].swap(true, Ordering::AcqRel);
                if !was_synced && self.kinds_synced.iter().all(|s| s.load(Ordering::Acquire)) {
                    tracing::info!("inventory synced from the Kubernetes API");
                    // Readiness is latched: after the first sync the last good index beats no index.
                    self.observer.all_synced();
                }
            }
        }
    }
}

/// The client configuration: `--kubeconfig` when given, else in-cluster, else `$KUBECONFIG` / `~/.kube/config`.
pub fn client_config(kubeconfig: Option<&Path>) -> Result<Config, Error> {
    if let Some(path) = kubeconfig {
        let invalid = |source| Error::Kubeconfig { path: path.to_owned(), source };
        return from_kubeconfig(Kubeconfig::read_from(path).map_err(invalid)?).map_err(invalid);
    }
    let in_cluster = match Config::incluster() {
        Ok(config) => return Ok(config),
        Err(e) => e.to_string(),
    };
    Kubeconfig::read()
        .and_then(from_kubeconfig)
        .map_err(|e| Error::NoAccess { in_cluster, kubeconfig: format!("$KUBECONFIG or ~/.kube/config: {e}") })
}

fn from_kubeconfig(kubeconfig: Kubeconfig) -> Result<Config, KubeconfigError> {
    // The loader is async only in signature (exec credentials run later, per request), so this returns at
    // once without a runtime.
    futures::executor::block_on(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()))
}

/// A client that counts watch requests per kind into `status` (the watcher re-watches silently after a
/// dropped stream, so the request is the only place to see it). Needs a tokio runtime.
pub fn client(config: Config, status: &WatchStatus) -> Result<Client, Error> {
    let observer = status.observer.clone();
    let seen: Arc<[AtomicBool; KINDS.len()]> = Arc::default();
    let count = tower::util::MapRequestLayer::new(move |request: hyper::Request<Body>| {
        let uri = request.uri();
        if uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"))
            && let Some(kind) = Kind::of_path(uri.path())
            && seen[kind as usize].swap(true, Ordering::Relaxed)
        {
            observer.watch_restarted(kind);
        }
        request
    });
    let builder = ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(builder.with_layer(&count).build())
}

/// Starts one watch per kind on the current tokio runtime; they run until aborted, retrying failures.
pub fn spawn_watches(client: Client, inventory: Arc<RwLock<Inventory>>, status: WatchStatus) -> Vec<JoinHandle<()>> {
    inventory.write().unwrap_or_else(PoisonError::into_inner).track_owner_kinds(&["ReplicaSet", "Job"]);
    let inv = || inventory.clone();
    let st = || status.clone();
    vec![
        tokio::spawn(watch(Api::<Pod>::all(client.clone()), Kind::Pod, project_pod, inv(), st())),
        tokio::spawn(watch(Api::<Service>::all(client.clone()), Kind::Service, project_service, inv(), st())),
        tokio::spawn(watch(Api::<EndpointSlice>::all(client.clone()), Kind::EndpointSlice, project_slice, inv(), st())),
        tokio::spawn(watch(Api::all(client.clone()), Kind::ReplicaSet, project_owner::<ReplicaSet>, inv(), st())),
        tokio::spawn(watch(Api::all(client), Kind::Job, project_owner::<Job>, inv(), st())),
    ]
}

fn project_pod(pod: &Pod) -> Option<Record> {
    PodRecord::from_pod(pod).map(Record::Pod)
}

fn project_service(service: &Service) -> Option<Record> {
    ServiceRecord::from_service(service).map(Record::Service)
}

fn project_slice(slice: &EndpointSlice) -> Option<Record> {
    SliceRecord::from_slice(slice).map(Record::Slice)
}

fn project_owner<K: Resource<DynamicType = ()>>(meta: &PartialObjectMeta<K>) -> Option<Record> {
    OwnerRecord::from_meta(&K::kind(&()), &meta.metadata).map(Record::Owner)
}

/// Runs one kind's watch forever: events are projected, then applied in batches under the write lock.
async fn watch<K>(
    api: Api<K>,
    kind: Kind,
    project: fn(&K) -> Option<Record>,
    inventory: Arc<RwLock<Inventory>>,
    status: WatchStatus,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut index = KindIndex::new(kind);
    let events = watcher::watcher(api, watcher::Config::default()).default_backoff().ready_chunks(BATCH);
    let mut events = std::pin::pin!(events);
    while let Some(batch) = events.next().await {
        let mut changes = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(event) => changes.extend(to_change(event, project)),
                Err(e) => status.error(kind, &e),
            }
        }
        let transitions: Vec<Transition> = {
            let mut inventory = inventory.write().unwrap_or_else(PoisonError::into_inner);
            changes.into_iter().filter_map(|change| index.apply(&mut inventory, change)).collect()
        };
        for transition in transitions {
            status.transition(kind, transition);
        }
        status.observer.objects(kind, index.objects);
    }
}

fn to_change<K: Resource>(event: Event<K>, project: fn(&K) -> Option<Record>) -> Option<Change> {
    match event {
        Event::Init => Some(Change::Relist),
        Event::InitApply(object) => project(&object).map(Change::Listed),
        Event::InitDone => Some(Change::RelistDone),
        Event::Apply(object) => project(&object).map(Change::Upsert),
        Event::Delete(object) => key_of(object.meta()).map(Change::Delete),
    }
}

fn key_of(meta: &ObjectMeta) -> Option<Key> {
    Some((Arc::from(meta.namespace.as_deref()?), Arc::from(meta.name.as_deref()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str) -> Record {
        Record::Pod(PodRecord { ips: vec![ip.parse().unwrap()], ..PodRecord::bare(Arc::from("shop"), Arc::from(name)) })
    }

    fn key(name: &str) -> Key {
        (Arc::from("shop"), Arc::from(name))
    }

    #[test]
    fn a_relist_leaves_exactly_the_listed_objects() {
        let mut inventory = Inventory::new();
        let mut index = KindIndex::new(Kind::Pod);
        assert_eq!(index.apply(&mut inventory, Change::Relist), Some(Transition::Relisting { first: true }));
        index.apply(&mut inventory, Change::Listed(pod("a", "10.0.0.1")));
        index.apply(&mut inventory, Change::Listed(pod("b", "10.0.0.2")));
        assert_eq!(index.apply(&mut inventory, Change::RelistDone), Some(Transition::Synced));
        index.apply(&mut inventory, Change::Upsert(pod("c", "10.0.0.3")));
        assert_eq!(inventory.counts().pods, 3);

        // The watch was away: `a` was deleted and `b` moved meanwhile. Until the list completes, the last good
        // index keeps answering.
        assert_eq!(index.apply(&mut inventory, Change::Relist), Some(Transition::Relisting { first: false }));
        index.apply(&mut inventory, Change::Listed(pod("b", "10.0.0.9")));
        assert!(inventory.pod("shop", "a").is_some());
        index.apply(&mut inventory, Change::Listed(pod("c", "10.0.0.3")));
        index.apply(&mut inventory, Change::RelistDone);
        assert!(inventory.pod("shop", "a").is_none());
        assert_eq!(inventory.pods_with_ip(&"10.0.0.1".parse().unwrap()).count(), 0);
        assert_eq!(inventory.pods_with_ip(&"10.0.0.2".parse().unwrap()).count(), 0);
        assert_eq!(inventory.pods_with_ip(&"10.0.0.9".parse().unwrap()).count(), 1);
        assert!(inventory.pod("shop", "b").is_some() && inventory.pod("shop", "c").is_some());
        assert_eq!((index.objects, inventory.counts().pods), (2, 2));
    }

    #[test]
    fn deletes_remove_owners_of_their_own_kind_only() {
        let mut inventory = Inventory::new();
        let owner = |kind: &str| OwnerRecord {
            namespace: Arc::from("shop"),
            kind: Arc::from(kind),
            name: Arc::from("x"),
            owner: None,
        };
        let mut jobs = KindIndex::new(Kind::Job);
        let mut sets = KindIndex::new(Kind::ReplicaSet);
        jobs.apply(&mut inventory, Change::Upsert(Record::Owner(owner("Job"))));
        sets.apply(&mut inventory, Change::Upsert(Record::Owner(owner("ReplicaSet"))));
        jobs.apply(&mut inventory, Change::Delete(key("x")));
        assert!(inventory.owner("shop", "Job", "x").is_none());
        assert!(inventory.owner("shop", "ReplicaSet", "x").is_some());
    }

    #[test]
    fn request_paths_name_their_kind() {
        assert_eq!(Kind::of_path("/api/v1/pods"), Some(Kind::Pod));
        assert_eq!(Kind::of_path("/apis/discovery.k8s.io/v1/endpointslices"), Some(Kind::EndpointSlice));
        assert_eq!(Kind::of_path("/apis/batch/v1/jobs"), Some(Kind::Job));
        assert_eq!(Kind::of_path("/api/v1/namespaces"), None);
    }
}
