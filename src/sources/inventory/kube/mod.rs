//! The live inventory: kube-rs watches keep the same [`Inventory`] as `--inventory-file` current, and a fetch
//! worker brings what they do not deliver on request, so the resolver never knows where its data came from. The
//! only module that touches the Kubernetes API.
//!
//! What an agent watches is its [`Plan`] (docs/design.md §7). A node's agent (the DaemonSet) watches its own
//! node's Pods in full (`fieldSelector=spec.nodeName`), Services and EndpointSlices (what kube-proxy already
//! watches on every node) and its own Node object (`spec.podCIDRs`, for the capture filter); remote pods and the
//! owners that name workloads are fetched when an observation needs them (`fetch`). An agent that counts every
//! client (no node name), or one told to (`--remote-pods=watch`), watches every Pod, and ReplicaSets and Jobs as
//! metadata, as earlier releases did. No request is a quorum read: lists are streaming lists or come from the
//! API server's watch cache (`resourceVersion=0`), and fetches are `resourceVersion=0` reads too. Requests are
//! paced (`pacing`): a start-up delay by node name, and jittered backoff.
//!
//! Each object is projected into its compact record as soon as it is decoded (`watch`); whole objects live only
//! for one list page. A (re)list is applied as it arrives and swept when it completes: whatever the index held
//! of that kind but the list did not name was deleted while the watch was away, and is removed. Meanwhile the
//! last good index keeps serving lookups.

mod fetch;
mod pacing;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ::kube::api::{Api, PartialObjectMeta};
use ::kube::client::{Body, ClientBuilder};
use ::kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use ::kube::{Client, Config};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::task::JoinHandle;

use super::index::Collection;
use super::{FetchKind, FetchQueue, FetchResult, Fetching, Inventory};
use crate::IpNet;
use watch::{Transition, WatchSpec, project_node, project_owner, project_pod, project_service, project_slice};

pub(crate) use pacing::start_delay;

/// How many fetch requests wait at most; past it, an observation that needs one is counted unresolved.
const FETCH_QUEUE: usize = 1024;

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

/// The kinds an agent may watch, one watch stream each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Pods: this node's, or the cluster's.
    Pod,
    /// Services.
    Service,
    /// EndpointSlices (backing pods of Services, and where they run).
    EndpointSlice,
    /// ReplicaSets, metadata only (owner chains), when watched rather than fetched.
    ReplicaSet,
    /// Jobs, metadata only (owner chains), when watched rather than fetched.
    Job,
    /// This node's Node object (`spec.podCIDRs`); not needed to be ready.
    Node,
}

/// Every kind an agent may watch.
pub const KINDS: [Kind; 6] = [Kind::Pod, Kind::Service, Kind::EndpointSlice, Kind::ReplicaSet, Kind::Job, Kind::Node];

/// The owner kinds whose objects a chain may need, watched or fetched.
const TRACKED_OWNERS: [&str; 2] = ["ReplicaSet", "Job"];

impl Kind {
    /// The Kubernetes kind, also the `kind` label of the inventory metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::Node => "Node",
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
            "nodes" => Some(Kind::Node),
            _ => None,
        }
    }

    /// The `kind` label of the inventory metrics.
    pub fn metric_label(self) -> &'static str {
        self.name()
    }

    /// Removes one object of this kind; returns whether the index held it.
    fn remove(self, inventory: &mut Inventory, (namespace, name): &(Arc<str>, Arc<str>)) -> bool {
        match self {
            Kind::Pod => inventory.remove_pod(namespace, name),
            Kind::Service => inventory.remove_service(namespace, name),
            Kind::EndpointSlice => inventory.remove_slice(namespace, name),
            Kind::ReplicaSet | Kind::Job => inventory.remove_owner(namespace, self.name(), name),
            Kind::Node => inventory.remove_node(name),
        }
    }

    /// The objects a relist of this kind sweeps; `None` for the agent's Node, which a relist replaces.
    fn collection(self) -> Option<Collection<'static>> {
        match self {
            Kind::Pod => Some(Collection::Pods),
            Kind::Service => Some(Collection::Services),
            Kind::EndpointSlice => Some(Collection::Slices),
            Kind::ReplicaSet | Kind::Job => Some(Collection::Owners(self.name())),
            Kind::Node => None,
        }
    }
}

/// What an agent watches and fetches (docs/design.md §7).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The node whose clients count: its pods are watched in full, and its Node object for `spec.podCIDRs`.
    /// `None` (an agent counting every client) watches every pod.
    pub node: Option<String>,
    /// With a node: remote pods and owners are fetched on request (the default) rather than watched.
    pub fetch_remote: bool,
    /// Addresses worth a fetch by address (`--cluster-cidr`).
    pub pod_networks: Vec<IpNet>,
    /// The window the first request is delayed within, spread by node name (no delay without a node).
    pub start_window: Duration,
}

impl Plan {
    /// Whether remote pods and owners are fetched on request.
    pub fn fetches(&self) -> bool {
        self.node.is_some() && self.fetch_remote
    }

    /// The watched kinds, each with whether readiness waits for it.
    pub fn kinds(&self) -> Vec<(Kind, bool)> {
        let mut kinds = vec![(Kind::Pod, true), (Kind::Service, true), (Kind::EndpointSlice, true)];
        if !self.fetches() {
            kinds.extend([(Kind::ReplicaSet, true), (Kind::Job, true)]);
        }
        if self.node.is_some() {
            kinds.push((Kind::Node, false));
        }
        kinds
    }

    fn start_delay(&self) -> Duration {
        self.node.as_deref().map_or(Duration::ZERO, |node| start_delay(node, self.start_window))
    }
}

/// What [`spawn`] started.
pub struct Started {
    /// The watch tasks and the fetch worker; they run until aborted.
    pub tasks: Vec<JoinHandle<()>>,
    /// Where observations ask for fetches; `None` when nothing is fetched.
    pub fetches: Option<FetchQueue>,
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
    /// Every kind readiness waits for has synced for the first time. Called once.
    fn all_synced(&self);
    /// These kinds are watched, and objects are fetched on request if `fetching`. Called once, before the rest.
    fn watching(&self, kinds: &[Kind], fetching: bool);
    /// A fetch of `kind` ended with `result`.
    fn fetched(&self, kind: FetchKind, result: FetchResult);
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

    /// Readiness waits for these kinds only: the others count as synced from the start.
    fn require(&self, kinds: &[(Kind, bool)]) {
        for kind in KINDS {
            let required = kinds.iter().any(|(k, required)| *k == kind && *required);
            self.kinds_synced[kind as usize].store(!required, Ordering::Release);
        }
    }

    fn fetched(&self, kind: FetchKind, result: FetchResult) {
        self.observer.fetched(kind, result);
    }

    fn error(&self, kind: Kind, error: &::kube::runtime::watcher::Error) {
        self.observer.watch_error(kind);
        match error {
            ::kube::runtime::watcher::Error::WatchError(status) if status.code == 410 => {
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
    futures_executor::block_on(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()))
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
    // kube's default retry layer retries 429s exactly at the server's Retry-After, which keeps a DaemonSet's
    // agents in step; the watches and fetches retry with their own jittered backoff instead (`pacing`).
    let mut config = config;
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(builder.with_layer(&count).build())
}

/// Starts the watches of `plan` and, if it fetches, the fetch worker, on the current tokio runtime; they run
/// until aborted, retrying failures.
pub fn spawn(client: Client, inventory: Arc<RwLock<Inventory>>, status: WatchStatus, plan: &Plan) -> Started {
    let kinds = plan.kinds();
    status.require(&kinds);
    status.observer.watching(&kinds.iter().map(|(k, _)| *k).collect::<Vec<_>>(), plan.fetches());
    {
        let mut inventory = inventory.write().unwrap_or_else(PoisonError::into_inner);
        inventory.track_owner_kinds(&TRACKED_OWNERS);
        let fetching = plan.fetches();
        let pod_networks = plan.pod_networks.clone();
        inventory.set_fetching(Fetching { pods: fetching, pod_networks, owners: fetching });
    }
    let delay = plan.start_delay();
    if !delay.is_zero() {
        tracing::info!(delay = ?delay, "first API request delayed by this node's slot in the start-up window");
    }
    let spec = |kind| WatchSpec::new(kind, plan.node.as_deref(), delay);
    let (inv, st, c) = (|| inventory.clone(), || status.clone(), || client.clone());
    let mut tasks = Vec::new();
    for (kind, _) in &kinds {
        let task = match kind {
            Kind::Pod => tokio::spawn(watch::run(Api::<Pod>::all(c()), spec(*kind), project_pod, inv(), st())),
            Kind::Service => {
                tokio::spawn(watch::run(Api::<Service>::all(c()), spec(*kind), project_service, inv(), st()))
            }
            Kind::EndpointSlice => {
                tokio::spawn(watch::run(Api::<EndpointSlice>::all(c()), spec(*kind), project_slice, inv(), st()))
            }
            Kind::ReplicaSet => {
                let source = Api::<PartialObjectMeta<ReplicaSet>>::all(c());
                tokio::spawn(watch::run(source, spec(*kind), project_owner::<ReplicaSet>, inv(), st()))
            }
            Kind::Job => {
                let source = Api::<PartialObjectMeta<Job>>::all(c());
                tokio::spawn(watch::run(source, spec(*kind), project_owner::<Job>, inv(), st()))
            }
            Kind::Node => tokio::spawn(watch::run(Api::<Node>::all(c()), spec(*kind), project_node, inv(), st())),
        };
        tasks.push(task);
    }
    let fetches = plan.fetches().then(|| {
        let (queue, requests) = FetchQueue::new(FETCH_QUEUE);
        tasks.push(tokio::spawn(fetch::run(client.clone(), inventory.clone(), requests, status.clone(), delay)));
        queue
    });
    Started { tasks, fetches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_name_their_kind() {
        assert_eq!(Kind::of_path("/api/v1/pods"), Some(Kind::Pod));
        assert_eq!(Kind::of_path("/apis/discovery.k8s.io/v1/endpointslices"), Some(Kind::EndpointSlice));
        assert_eq!(Kind::of_path("/apis/batch/v1/jobs"), Some(Kind::Job));
        assert_eq!(Kind::of_path("/api/v1/nodes"), Some(Kind::Node));
        assert_eq!(Kind::of_path("/api/v1/namespaces"), None);
    }

    #[test]
    fn a_node_agent_watches_its_pods_and_what_kube_proxy_watches_and_fetches_the_rest() {
        let plan = |node: Option<&str>, fetch_remote| Plan {
            node: node.map(str::to_owned),
            fetch_remote,
            pod_networks: Vec::new(),
            start_window: Duration::from_secs(5),
        };
        let node = plan(Some("node-a"), true);
        let kinds: Vec<Kind> = node.kinds().iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [Kind::Pod, Kind::Service, Kind::EndpointSlice, Kind::Node]);
        assert!(node.fetches() && !node.kinds().contains(&(Kind::Node, true)), "the Node is not needed to be ready");
        let watching = plan(Some("node-a"), false);
        assert_eq!(watching.kinds().len(), 6);
        assert!(!watching.fetches());
        let everyone = plan(None, true);
        assert!(!everyone.fetches() && everyone.start_delay().is_zero());
        assert_eq!(everyone.kinds().len(), 5);
    }
}
