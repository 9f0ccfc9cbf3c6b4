//! The pure resolution core: an observation (a DNS answer, or a TCP connection) plus the inventory → an edge
//! between workloads, or the reason it could not be resolved.
//!
//! No I/O, no clock, no globals: the caller passes the observation's timestamp and the inventory. Identity rules
//! follow docs/design.md §4 (compatible with Otterize): annotation override, root of the controller owner chain, `.` → `_`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use crate::UnixMicros;
use crate::mesh::Mesh;
use crate::sources::inventory::{
    Inventory, OwnerRef, PodEntry, PodRecord, ServiceEntry, ServiceRecord, Unfetched, Wanted, naming,
};

static KIND_POD: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("Pod"));
static KIND_SERVICE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("Service"));
static KUBERNETES: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("kubernetes"));
static DEFAULT_NS: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("default"));

/// What the resolver needs to know besides the inventory.
#[derive(Clone, Debug)]
pub struct ResolveConfig {
    /// The cluster DNS domain, lower case, without leading or trailing dot (e.g. `cluster.local`).
    pub cluster_domain: String,
    /// Count only clients on this node; `None` counts every resolvable client.
    pub node_name: Option<String>,
}

/// A workload identity: what `client`/`server` labels name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// The identity name (`.` already replaced by `_`).
    pub name: Arc<str>,
    /// The namespace.
    pub namespace: Arc<str>,
    /// The root owner's kind: `Deployment`, `StatefulSet`, …, `Pod`, `Service`, or a custom owner's kind.
    pub kind: Arc<str>,
}

/// The called side of an edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Server {
    /// A workload in the cluster.
    Workload(Workload),
    /// A DNS name outside the cluster (lower case, no trailing dot).
    External(Arc<str>),
}

/// One "client calls server" observation, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    /// The calling workload.
    pub client: Workload,
    /// The called workload or name.
    pub server: Server,
}

/// Which end of an observation failed to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller.
    Client,
    /// The callee.
    Server,
}

/// Why an address or name did not resolve to a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No pod (or Service) has this IP: a node process, or something outside the cluster.
    UnknownIp,
    /// Only finished (Succeeded/Failed) pods had this IP.
    Finished,
    /// The IP belongs to hostNetwork pods, i.e. it is a node's IP.
    HostNetwork,
    /// The only pods with this IP are terminating.
    Terminating,
    /// Several running pods have this IP.
    Ambiguous,
    /// The observation is older than the pod that now has this IP (IP reuse).
    BeforeCreation,
    /// An in-cluster service name whose Service is not in the inventory.
    UnknownService,
    /// The pod's owner chain stops at a ReplicaSet or Job that the live inventory watches or fetches but has not
    /// received yet; it resolves once that owner arrives.
    OwnerPending,
    /// The pod behind this address or Service is fetched on request (docs/design.md §7), and that fetch failed
    /// or was held back by the fetch rate limit. Never a guessed name.
    FetchFailed,
}

impl Reason {
    /// Every reason, for pre-creating metric series.
    pub const ALL: [Reason; 9] = [
        Reason::UnknownIp,
        Reason::Finished,
        Reason::HostNetwork,
        Reason::Terminating,
        Reason::Ambiguous,
        Reason::BeforeCreation,
        Reason::UnknownService,
        Reason::OwnerPending,
        Reason::FetchFailed,
    ];

    /// A short stable label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Reason::UnknownIp => "unknown_ip",
            Reason::Finished => "finished",
            Reason::HostNetwork => "host_network",
            Reason::Terminating => "terminating",
            Reason::Ambiguous => "ambiguous",
            Reason::BeforeCreation => "before_creation",
            Reason::UnknownService => "unknown_service",
            Reason::OwnerPending => "owner_pending",
            Reason::FetchFailed => "fetch_failed",
        }
    }
}

impl Side {
    /// Both sides.
    pub const ALL: [Side; 2] = [Side::Client, Side::Server];

    /// A short stable label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// The outcome of resolving one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// An edge to count.
    Edge(Edge),
    /// The client is a pod on another node: that node counts it.
    OtherNode,
    /// One side did not resolve.
    Unresolved(Side, Reason),
    /// One side needs an object that the inventory's source fetches on request: resolve the observation again
    /// once it has arrived. A failed fetch is asked again once its failure stops holding, so an API outage
    /// shorter than the observation's wait loses nothing; what is never fetched is counted unresolved.
    Fetch(Side, Wanted),
}

/// Why a side has no workload yet: a reason, an object to fetch first, or one whose last fetch failed (asked
/// again once the failure stops holding).
#[derive(Debug)]
enum Miss {
    Reason(Reason),
    Fetch(Wanted),
    Held(Wanted),
}

impl From<Reason> for Miss {
    fn from(reason: Reason) -> Miss {
        Miss::Reason(reason)
    }
}

impl Miss {
    fn resolution(self, side: Side) -> Resolution {
        match self {
            Miss::Reason(reason) => Resolution::Unresolved(side, reason),
            Miss::Fetch(wanted) | Miss::Held(wanted) => Resolution::Fetch(side, wanted),
        }
    }
}

/// How an in-cluster DNS name is read (docs/design.md §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterName<'q> {
    /// `<svc>.<ns>.svc.<domain>`, or the headless per-pod `<host>.<svc>.<ns>.svc.<domain>`.
    Service {
        /// The namespace.
        namespace: &'q str,
        /// The service.
        service: &'q str,
        /// The per-pod host label, for headless names.
        host: Option<&'q str>,
    },
    /// `<a-b-c-d>.<ns>.pod.<domain>`.
    Pod {
        /// The namespace.
        namespace: &'q str,
        /// The pod IP spelled in the first label.
        ip: IpAddr,
    },
    /// Not an in-cluster name.
    Outside,
}

/// Reads a (lower-case, dot-less-at-the-end) DNS name against the cluster domain.
pub fn parse_cluster_name<'q>(name: &'q str, cluster_domain: &str) -> ClusterName<'q> {
    let Some(rest) = name.strip_suffix(cluster_domain).and_then(|r| r.strip_suffix('.')) else {
        return ClusterName::Outside;
    };
    let mut labels = rest.rsplit('.');
    match (labels.next(), labels.next(), labels.next()) {
        (Some("svc"), Some(namespace), Some(service)) if !namespace.is_empty() && !service.is_empty() => {
            ClusterName::Service { namespace, service, host: labels.next().filter(|h| !h.is_empty()) }
        }
        (Some("pod"), Some(namespace), Some(dashed)) if labels.next().is_none() => match parse_dashed_ip(dashed) {
            Some(ip) => ClusterName::Pod { namespace, ip },
            None => ClusterName::Outside,
        },
        _ => ClusterName::Outside,
    }
}

/// `10-1-2-3` → 10.1.2.3; `fd00--1` → fd00::1 (CoreDNS spells IPv6 pod names with `-` for `:`).
fn parse_dashed_ip(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Resolves observations against one inventory snapshot.
pub struct Resolver<'a> {
    inventory: &'a Inventory,
    config: &'a ResolveConfig,
}

impl<'a> Resolver<'a> {
    /// A resolver over this inventory.
    pub fn new(inventory: &'a Inventory, config: &'a ResolveConfig) -> Self {
        Resolver { inventory, config }
    }

    /// A DNS answer to `client` for the question `name` (answers `addresses`), seen at `at`.
    pub fn dns_answer(&self, client: IpAddr, name: &str, addresses: &[IpAddr], at: UnixMicros) -> Resolution {
        let parsed = parse_cluster_name(name, &self.config.cluster_domain);
        // Each index lookup is a few cache misses; a named service is looked up before the client so that the
        // two lookups' misses overlap instead of following one another.
        let service = match parsed {
            ClusterName::Service { namespace, service, .. } => self.inventory.service(namespace, service),
            _ => None,
        };
        let client = match self.local_client(client, at) {
            Ok(client) => client,
            Err(resolution) => return resolution,
        };
        let server = match parsed {
            ClusterName::Service { namespace, service: name, host } => {
                self.service_server(namespace, name, service, host, at)
            }
            ClusterName::Pod { ip, .. } => self.server_pod_for_ip(&ip, at).map(Target::Pod),
            ClusterName::Outside => self.outside_server(name, addresses, at),
        };
        self.complete(client, server, at)
    }

    /// A client-side TCP connection from `local` to `remote`, seen at `at`.
    pub fn connection(&self, local: IpAddr, remote: IpAddr, at: UnixMicros) -> Resolution {
        // As in `dns_answer`: the server's first lookup goes first, to overlap with the client's.
        let service = self.inventory.service_with_ip(&remote);
        let client = match self.local_client(local, at) {
            Ok(client) => client,
            Err(resolution) => return resolution,
        };
        self.complete(client, self.address_server(&remote, service, at), at)
    }

    /// The port a connection to `remote` reaches on the server pod (docs/design.md §2): for a Service ClusterIP,
    /// the Service port's target port on the backing pods (named target ports resolved through the
    /// EndpointSlices); for a pod IP, or a ClusterIP port the Service does not declare, the port as dialled.
    pub fn server_port(&self, remote: SocketAddr) -> u16 {
        self.inventory
            .service_with_ip(&remote.ip())
            .and_then(|service| service.target_port(remote.port()))
            .unwrap_or(remote.port())
    }

    /// The mesh whose proxy runs in the pod that has `ip` at `at`, if any: a meshed pod's connections on the wire
    /// are its proxy's (docs/counting.md, "Service meshes").
    pub fn mesh_of(&self, ip: IpAddr, at: UnixMicros) -> Option<Mesh> {
        self.pod_for_ip(&ip, at).ok()?.record().mesh
    }

    /// The edge, unless a pod's owner chain is still waiting for a watched or fetched owner (see
    /// [`Reason::OwnerPending`]), or a side is unresolved.
    fn complete(&self, client: &'a PodEntry, server: Result<Target<'a>, Miss>, at: UnixMicros) -> Resolution {
        if let Some(miss) = self.owner_wait(client, at) {
            return miss.resolution(Side::Client);
        }
        let server = match server {
            Ok(server) => server,
            Err(miss) => return miss.resolution(Side::Server),
        };
        if let Target::Pod(pod) = &server
            && let Some(miss) = self.owner_wait(pod, at)
        {
            return miss.resolution(Side::Server);
        }
        finish(client, server)
    }

    /// Whether the pod's chain stops at an owner of a tracked kind that the inventory does not hold yet: the
    /// watches of different kinds catch up independently (or the owner is fetched on request), and naming the
    /// workload after that ReplicaSet or Job would leave a wrong edge behind for good. Only roots of a tracked
    /// kind pay for the extra lookup. An annotated pod's name is final whatever its chain, so it never waits. The
    /// root (in the pod's entry) is checked first, so the common root, an untracked kind such as a Deployment,
    /// costs no further read.
    fn owner_wait(&self, pod: &PodEntry, at: UnixMicros) -> Option<Miss> {
        let root = pod.owner_root().filter(|root| self.inventory.tracks_owner_kind(&root.kind))?;
        let record = pod.record();
        if record.workload_override.is_some()
            || self.inventory.owner(&record.namespace, &root.kind, &root.name).is_some()
        {
            return None;
        }
        if !self.inventory.fetches_owners() {
            return Some(Reason::OwnerPending.into());
        }
        let (namespace, kind, name) = (record.namespace.clone(), root.kind.clone(), root.name.clone());
        Some(self.fetch_or(Wanted::Owner { namespace, kind, name }, at, Reason::OwnerPending))
    }

    /// `wanted` to fetch, unless an earlier fetch of it still answers: then the reason for a missing object, or
    /// [`Miss::Held`] for a failed fetch.
    fn fetch_or(&self, wanted: Wanted, at: UnixMicros, missing: Reason) -> Miss {
        match self.inventory.unfetched(&wanted, at) {
            None => Miss::Fetch(wanted),
            Some(Unfetched::Missing) => missing.into(),
            Some(Unfetched::Failed) => Miss::Held(wanted),
        }
    }

    /// Whether `client` is a pod on another node at `at` (always false without `--node-name`): the test the
    /// resolver applies first to a DNS answer, available before the answer is parsed.
    pub fn client_on_other_node(&self, client: IpAddr, at: UnixMicros) -> bool {
        self.config.node_name.is_some() && matches!(self.local_client(client, at), Err(Resolution::OtherNode))
    }

    /// The client pod, or why this observation is not counted here.
    fn local_client(&self, ip: IpAddr, at: UnixMicros) -> Result<&'a PodEntry, Resolution> {
        let pod = match self.pod_for_ip(&ip, at) {
            Ok(pod) => pod,
            Err(Reason::UnknownIp) if self.named_on_other_node(&ip) => return Err(Resolution::OtherNode),
            Err(reason) => return Err(Resolution::Unresolved(Side::Client, reason)),
        };
        if let Some(node) = &self.config.node_name
            && pod.record().node_name.as_deref() != Some(node.as_str())
        {
            return Err(Resolution::OtherNode);
        }
        Ok(pod)
    }

    /// Whether an EndpointSlice gives `ip` to a pod on another node: the agent of a node that lists only its own
    /// pods knows remote pods by their endpoints.
    fn named_on_other_node(&self, ip: &IpAddr) -> bool {
        let Some(node) = &self.config.node_name else { return false };
        self.inventory.endpoint_pods_at(ip).any(|pod| pod.record().node_name.as_deref().is_some_and(|n| n != node))
    }

    /// The server pod at `ip`: as [`Resolver::pod_for_ip`], or, where remote pods are fetched on request, the pod
    /// to fetch first.
    fn server_pod_for_ip(&self, ip: &IpAddr, at: UnixMicros) -> Result<&'a PodEntry, Miss> {
        match self.pod_for_ip(ip, at) {
            Err(Reason::UnknownIp) if self.inventory.fetches_pods() => Err(self.fetch_by_address(ip, at)),
            found => found.map_err(Miss::from),
        }
    }

    /// What to fetch for an address no known pod holds: the pod an endpoint names there, else whatever pod holds
    /// an address of the pod networks; nothing for other addresses.
    fn fetch_by_address(&self, ip: &IpAddr, at: UnixMicros) -> Miss {
        let unknown = Reason::UnknownIp;
        match self.inventory.endpoint_pods_at(ip).find(|pod| !pod.is_present()) {
            Some(pod) => self.fetch_or(wanted_pod(pod.record()), at, unknown),
            None if self.inventory.may_be_pod_address(ip) => self.fetch_or(Wanted::PodAt(*ip), at, unknown),
            None => unknown.into(),
        }
    }

    /// The one running, non-hostNetwork pod that has `ip` at time `at`.
    fn pod_for_ip(&self, ip: &IpAddr, at: UnixMicros) -> Result<&'a PodEntry, Reason> {
        let (mut known, mut live, mut pod_network, mut active) = (0, 0, 0, 0);
        let mut found: Option<&'a PodEntry> = None;
        for entry in self.inventory.pods_with_ip(ip) {
            known += 1;
            let pod = entry.record();
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
                found = Some(entry);
            }
        }
        match (live, pod_network, active, found) {
            _ if known == 0 => Err(Reason::UnknownIp),
            (0, ..) => Err(Reason::Finished),
            (_, 0, ..) => Err(Reason::HostNetwork),
            (.., 0, _) => Err(Reason::Terminating),
            (.., 1, Some(pod)) if !existed_at(pod.record(), at) => Err(Reason::BeforeCreation),
            (.., 1, Some(pod)) => Ok(pod),
            _ => Err(Reason::Ambiguous),
        }
    }

    /// The server behind a Service named in a query; `found` is the index's entry for that name.
    fn service_server(
        &self,
        namespace: &str,
        service: &str,
        found: Option<&'a ServiceEntry>,
        host: Option<&str>,
        at: UnixMicros,
    ) -> Result<Target<'a>, Miss> {
        if namespace == "default" && service == "kubernetes" {
            return Ok(Target::ApiServer);
        }
        let entry = found.ok_or(Reason::UnknownService)?;
        self.service_entry_server(entry, host, at)
    }

    /// The server behind a Service: its first usable backing pod's workload, else the Service itself. Where
    /// remote pods are fetched on request, a backing pod not fetched yet is fetched first: the Service itself is
    /// the server only when it has no backing pod at all.
    fn service_entry_server(
        &self,
        entry: &'a ServiceEntry,
        host: Option<&str>,
        at: UnixMicros,
    ) -> Result<Target<'a>, Miss> {
        let record = entry.record();
        if !record.external_name {
            // A headless per-pod name picks that pod; if it is not (yet) an endpoint, any backing pod will do,
            // since the pods behind one Service are assumed to be one workload.
            let backing = host.and_then(|h| self.backing_pod(entry, Some(h), at));
            if let Some(pod) = backing.or_else(|| self.backing_pod(entry, None, at)) {
                return Ok(Target::Pod(pod));
            }
            if let Some(miss) = self.fetch_backing_pod(entry, host, at) {
                return Err(miss);
            }
        }
        Ok(Target::Service(record))
    }

    /// The backing pod to fetch (the per-pod name's first), or the reason none can be had while a fetch failed;
    /// `None` when every backing pod is known or missing.
    fn fetch_backing_pod(&self, entry: &'a ServiceEntry, host: Option<&str>, at: UnixMicros) -> Option<Miss> {
        if !self.inventory.fetches_pods() {
            return None;
        }
        let absent = self.inventory.endpoints(entry).filter(|ep| !ep.pod.is_present() && !ep.terminating);
        let (named, others): (Vec<_>, Vec<_>) = absent.partition(|ep| host.is_some() && ep.hostname == host);
        // A pod to fetch first; one whose fetch failed only when no other can be asked for.
        let mut held = None;
        for endpoint in named.into_iter().chain(others) {
            match self.fetch_or(wanted_pod(endpoint.pod.record()), at, Reason::UnknownIp) {
                Miss::Fetch(wanted) => return Some(Miss::Fetch(wanted)),
                Miss::Held(wanted) => held = held.or(Some(Miss::Held(wanted))),
                Miss::Reason(_) => {}
            }
        }
        held
    }

    fn backing_pod(&self, service: &'a ServiceEntry, host: Option<&str>, at: UnixMicros) -> Option<&'a PodEntry> {
        self.inventory
            .backing_pods(service)
            .filter(|(hostname, _)| host.is_none() || *hostname == host)
            .map(|(_, pod)| pod)
            .find(|entry| {
                let pod = entry.record();
                !pod.host_network && !pod.terminating && !pod.finished && existed_at(pod, at)
            })
    }

    /// A remote address: a Service ClusterIP (→ its backing workload) or a pod IP (→ its workload).
    /// `service` is the index's service for `ip`, if any.
    fn address_server(
        &self,
        ip: &IpAddr,
        service: Option<&'a ServiceEntry>,
        at: UnixMicros,
    ) -> Result<Target<'a>, Miss> {
        if let Some(service) = service {
            let record = service.record();
            if &*record.namespace == "default" && &*record.name == "kubernetes" {
                return Ok(Target::ApiServer);
            }
            return self.service_entry_server(service, None, at);
        }
        self.server_pod_for_ip(ip, at).map(Target::Pod)
    }

    /// A name outside the cluster domain: the answer IPs are tried first (a private name for an in-cluster
    /// address), then the name itself is the server. An address whose pod is still to be fetched decides nothing
    /// until it has been.
    fn outside_server(&self, name: &str, addresses: &[IpAddr], at: UnixMicros) -> Result<Target<'a>, Miss> {
        for ip in addresses {
            match self.address_server(ip, self.inventory.service_with_ip(ip), at) {
                Ok(target) => return Ok(target),
                Err(miss @ (Miss::Fetch(_) | Miss::Held(_))) => return Err(miss),
                Err(Miss::Reason(_)) => {}
            }
        }
        Ok(Target::External(Arc::from(name)))
    }
}

/// The fetch of the pod an endpoint names.
fn wanted_pod(pod: &PodRecord) -> Wanted {
    Wanted::Pod { namespace: pod.namespace.clone(), name: pod.name.clone() }
}

/// A server found in the index, before it becomes labels.
enum Target<'a> {
    Pod(&'a PodEntry),
    /// A Service with no usable backing pod, or an ExternalName Service.
    Service(&'a ServiceRecord),
    /// `kubernetes.default`.
    ApiServer,
    External(Arc<str>),
}

/// The labels of an edge. Labels share the index's strings; each share is an atomic increment that waits for
/// its string's cache line, so both sides' strings are read before either is shared, letting the two misses
/// overlap instead of queueing behind each other.
fn finish(client: &PodEntry, server: Target<'_>) -> Resolution {
    let client = Identity::of(client.record(), client.owner_root());
    let server = match server {
        Target::Pod(pod) => Ok(Identity::of(pod.record(), pod.owner_root())),
        Target::Service(record) => Ok(Identity::new(&record.name, &record.namespace, &KIND_SERVICE)),
        Target::ApiServer => Ok(Identity::new(&KUBERNETES, &DEFAULT_NS, &KIND_SERVICE)),
        Target::External(name) => Err(name),
    };
    let server = match server {
        Ok(identity) => Server::Workload(identity.workload()),
        Err(name) => Server::External(name),
    };
    Resolution::Edge(Edge { client: client.workload(), server })
}

/// A workload identity as references into the index.
struct Identity<'a> {
    name: &'a Arc<str>,
    namespace: &'a Arc<str>,
    kind: &'a Arc<str>,
    dotted: bool,
}

impl<'a> Identity<'a> {
    fn new(name: &'a Arc<str>, namespace: &'a Arc<str>, kind: &'a Arc<str>) -> Identity<'a> {
        Identity { name, namespace, kind, dotted: name.contains('.') }
    }

    /// docs/design.md §4.1: the annotation override, else the root of the owner chain, else the pod itself.
    fn of(pod: &'a PodRecord, root: Option<&'a OwnerRef>) -> Identity<'a> {
        let (kind, name) = match root {
            Some(root) => (&root.kind, &root.name),
            None => (&*KIND_POD, &pod.name),
        };
        Identity::new(pod.workload_override.as_ref().unwrap_or(name), &pod.namespace, kind)
    }

    /// The name as `naming::identity_name` writes it; most names have no dot and share the index's string.
    fn workload(&self) -> Workload {
        let name = if self.dotted { Arc::from(naming::identity_name(self.name)) } else { self.name.clone() };
        Workload { name, namespace: self.namespace.clone(), kind: self.kind.clone() }
    }
}

/// Creation timestamps have second resolution, so compare in whole seconds.
fn existed_at(pod: &PodRecord, at: UnixMicros) -> bool {
    pod.created_unix.is_none_or(|created| at.div_euclid(1_000_000) >= created)
}
