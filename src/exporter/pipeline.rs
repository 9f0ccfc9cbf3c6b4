//! The per-observation path from bytes to counters: frame → DNS message → pre-filter (header, destination,
//! de-duplication) → DNS answer → resolution → edge counter; frame → client SYN → connection; and the same tail
//! for socket connections.
//!
//! It owns no thread and no clock: the capture adapter feeds it frames with their timestamps, the socket
//! scanner feeds it connections, and both pass the current time to [`Recorder::retry_pending`]. The hot path
//! takes the inventory's read lock once per DNS message or SYN.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use prometheus_client::metrics::counter::Counter;
use rustc_hash::FxHashSet;

use crate::UnixMicros;
use crate::exporter::connections::{self, ConnectionMemory};
use crate::exporter::metrics::{
    DnsOutcome, EdgeOutcome, Metrics, ObservationSource, Outcome, SocketOutcome, SynOutcome,
};
use crate::mesh::{self, Sighting};
use crate::resolve::{Reason, Resolution, ResolveConfig, Resolver, Side};
use crate::sources::capture::dedup::{DEFAULT_MAX_ENTRIES, DEFAULT_WINDOW_MICROS};
use crate::sources::capture::dns::{self, DnsResponse};
use crate::sources::capture::frame::{DnsMessage, FrameDecoder, FrameOutcome, LinkType};
use crate::sources::capture::prefilter::{self, Destinations, Early, Prefilter};
use crate::sources::capture::syn::Syn;
use crate::sources::inventory::Inventory;
use crate::sources::inventory::{FetchQueue, Requested, Wanted};

/// How long an observation waits, from its first retry: a connection whose client IP is not in the inventory yet
/// (a pod's first SYN can precede its Pod object, with its IP, in the watch by a second or two), or an
/// observation whose remote pod or owner is being fetched (docs/design.md §7).
pub const RETRY_MICROS: i64 = 10_000_000;
/// How long an observation waits for its fetches, from its first retry: a fetch is answered within its queue's
/// turn at the fetch rate (a start-up or a rollout may queue hundreds), so the bound only ends a wait that the
/// fetches keep renewing.
pub const FETCH_WAIT_MICROS: i64 = 60_000_000;
/// At most this many observations wait; beyond it they are counted unresolved at once (traffic from outside
/// the cluster to a NodePort would otherwise fill any queue).
const MAX_PENDING: usize = 4096;
/// Addresses learned as DNS servers from the answers they send; far more than any cluster runs.
const MAX_LEARNED_DNS_SERVERS: usize = 4096;
const DNS_PORT: u16 = 53;

/// The inventory as shared between its source (which writes) and the pipelines (which read).
pub type SharedInventory = Arc<RwLock<Inventory>>;

/// What resolving and counting one observation came to: all a DNS answer can end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// An edge was counted.
    Counted,
    /// The client is on another node.
    OtherNode,
    /// Client or server did not resolve.
    Unresolved,
    /// A cardinality cap refused a new edge.
    Refused,
    /// Waiting for an object being fetched; the outcome is counted when it is decided.
    Pending,
}

impl From<Resolved> for Counted {
    fn from(resolved: Resolved) -> Self {
        match resolved {
            Resolved::Counted => Counted::Counted,
            Resolved::OtherNode => Counted::OtherNode,
            Resolved::Unresolved => Counted::Unresolved,
            Resolved::Refused => Counted::Refused,
            Resolved::Pending => Counted::Pending,
        }
    }
}

impl From<Resolved> for DnsOutcome {
    /// `Pending` is never counted as such (the outcome is counted once decided); it maps to `Unresolved` only to
    /// keep the match total.
    fn from(resolved: Resolved) -> Self {
        match resolved {
            Resolved::Counted => DnsOutcome::Counted,
            Resolved::OtherNode => DnsOutcome::OtherNode,
            Resolved::Unresolved | Resolved::Pending => DnsOutcome::Unresolved,
            Resolved::Refused => DnsOutcome::Refused,
        }
    }
}

/// Where a connection ended up, for the SYN and socket outcome counters: a [`Resolved`] outcome or the
/// connection bookkeeping's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// An edge was counted.
    Counted,
    /// The client is on another node.
    OtherNode,
    /// Client or server did not resolve.
    Unresolved,
    /// A cardinality cap refused a new edge.
    Refused,
    /// A copy of a connection counted already (another SYN copy, a retransmission, the other source).
    Duplicate,
    /// A connection to port 53 of a DNS server: a DNS-over-TCP lookup, whose answers count instead.
    DnsLookup,
    /// Waiting for the client pod to reach the inventory, or for an object being fetched; the outcome is counted
    /// when it is decided.
    Pending,
    /// A connection over loopback: inside one pod (or the node), not an edge.
    Loopback,
    /// A mesh proxy's connection (a relay's upstream, a tunnel, a scrape of the proxy): the application's own
    /// connection is what counts ([`mesh::is_application_call`]).
    MeshProxy,
}

/// The SYN and socket outcome labels share `Counted`'s variants; `Pending` is never counted as such (the outcome
/// is counted once decided), and maps to `Unresolved` only to keep the match total.
macro_rules! outcome_from_counted {
    ($($outcome:ident),*) => {$(
        impl From<Counted> for $outcome {
            fn from(counted: Counted) -> Self {
                match counted {
                    Counted::Counted => $outcome::Counted,
                    Counted::OtherNode => $outcome::OtherNode,
                    Counted::Unresolved | Counted::Pending => $outcome::Unresolved,
                    Counted::Refused => $outcome::Refused,
                    Counted::Duplicate => $outcome::Duplicate,
                    Counted::DnsLookup => $outcome::DnsLookup,
                    Counted::Loopback => $outcome::Loopback,
                    Counted::MeshProxy => $outcome::MeshProxy,
                }
            }
        }
    )*};
}

outcome_from_counted!(SocketOutcome, SynOutcome);

/// Which source saw a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionSource {
    /// A client SYN from the capture.
    Syn,
    /// A client-side socket from the socket scan.
    Socket,
}

impl From<ConnectionSource> for ObservationSource {
    fn from(source: ConnectionSource) -> Self {
        match source {
            ConnectionSource::Syn => ObservationSource::Syn,
            ConnectionSource::Socket => ObservationSource::Socket,
        }
    }
}

/// An observation waiting for its client pod or for an object being fetched, with its own time and the time of
/// the first retry, from which its wait is counted (a replayed capture's packets are older than the wait).
#[derive(Clone, Debug)]
struct Pending {
    observation: Waiting,
    at: UnixMicros,
    since: Option<UnixMicros>,
    /// It waits for a fetch (rather than for its client pod).
    fetching: bool,
}

#[derive(Clone, Debug)]
enum Waiting {
    Connection { source: ConnectionSource, client: SocketAddr, server: SocketAddr, sighting: Sighting },
    Answer { client: IpAddr, question: Box<str>, addresses: Box<[IpAddr]> },
}

/// Resolves and counts one observation; shared by the DNS, SYN and socket paths. Clones share all state.
#[derive(Clone)]
pub struct Recorder {
    inventory: SharedInventory,
    config: Arc<ResolveConfig>,
    metrics: Metrics,
    /// One connection counts once, whichever source sees it first (see [`connections`]).
    connections: Arc<Mutex<ConnectionMemory>>,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    /// Addresses seen sending DNS answers: DNS servers by the capture's account.
    dns_senders: Arc<RwLock<FxHashSet<IpAddr>>>,
    /// Where objects to fetch are asked for; `None` when the inventory fetches nothing (a file, or watches only).
    fetches: Option<FetchQueue>,
}

impl Recorder {
    /// A recorder over this inventory, for a socket scan every 5 s.
    pub fn new(inventory: SharedInventory, config: Arc<ResolveConfig>, metrics: Metrics) -> Self {
        let window = connections::window_for(std::time::Duration::from_secs(5));
        Recorder {
            inventory,
            config,
            metrics,
            connections: Arc::new(Mutex::new(ConnectionMemory::new(window, connections::DEFAULT_MAX_ENTRIES))),
            pending: Arc::default(),
            dns_senders: Arc::default(),
            fetches: None,
        }
    }

    /// Asks `queue` for the remote pods and owners observations need (docs/design.md §7).
    pub fn with_fetches(mut self, queue: FetchQueue) -> Self {
        self.fetches = Some(queue);
        self
    }

    /// Sizes the one-connection window for a socket scan every `scan_interval`.
    pub fn with_scan_interval(mut self, scan_interval: std::time::Duration) -> Self {
        let memory = ConnectionMemory::new(connections::window_for(scan_interval), connections::DEFAULT_MAX_ENTRIES);
        self.connections = Arc::new(Mutex::new(memory));
        self
    }

    /// A DNS answer to `client` for `question`, against the inventory the caller has read for the message; `since`
    /// is when it started waiting, `None` for a new one.
    fn dns_answer(
        &self,
        inventory: &Inventory,
        client: IpAddr,
        question: &str,
        addresses: &[IpAddr],
        at: UnixMicros,
        since: Option<UnixMicros>,
    ) -> Resolved {
        let resolution = Resolver::new(inventory, &self.config).dns_answer(client, question, addresses, at);
        if let Resolution::Fetch(_, wanted) = &resolution {
            let answer = || Waiting::Answer { client, question: question.into(), addresses: addresses.into() };
            if self.wait_for(Some(wanted), answer, (at, since)) {
                return Resolved::Pending;
            }
        }
        self.count(ObservationSource::Dns, resolution, None)
    }

    /// Whether `ip` is a DNS server ([`is_dns_server`]). A few hash probes.
    pub fn is_dns_server(&self, ip: &IpAddr) -> bool {
        let learned = self.dns_senders.read().unwrap_or_else(PoisonError::into_inner);
        is_dns_server(&learned, &self.inventory.read().unwrap_or_else(PoisonError::into_inner), ip)
    }

    /// Remembers that `ip` sent a DNS answer. Bounded; the check under the read lock keeps the common case
    /// (a server already known) from taking the write lock.
    pub fn learn_dns_server(&self, ip: IpAddr) {
        if self.dns_senders.read().unwrap_or_else(PoisonError::into_inner).contains(&ip) {
            return;
        }
        let mut learned = self.dns_senders.write().unwrap_or_else(PoisonError::into_inner);
        if learned.len() < MAX_LEARNED_DNS_SERVERS {
            learned.insert(ip);
        }
    }

    /// A client SYN (any copy of it). Loopback connections are traffic inside a pod or the node, as the socket
    /// scan also holds.
    pub fn syn(&self, syn: &Syn, at: UnixMicros) -> Counted {
        if syn.client.ip().to_canonical().is_loopback() || syn.server.ip().to_canonical().is_loopback() {
            self.count_connection_outcome(ConnectionSource::Syn, Counted::Loopback);
            return Counted::Loopback;
        }
        let first = self.memory().syn(syn.client, syn.server, syn.isn, at);
        let connection = (syn.client, syn.server, Sighting::Plain);
        self.connection_outcome(ConnectionSource::Syn, first, connection, at)
    }

    /// A client-side socket the socket scan reports for the first time, as the scan saw it with respect to a mesh
    /// proxy in its namespace.
    pub fn socket(&self, local: SocketAddr, remote: SocketAddr, sighting: Sighting, at: UnixMicros) -> Counted {
        let first = self.memory().socket(local, remote, at);
        self.connection_outcome(ConnectionSource::Socket, first, (local, remote, sighting), at)
    }

    /// Retries the observations waiting for their client pod or a fetched object; those past [`RETRY_MICROS`] or
    /// [`FETCH_WAIT_MICROS`] (or all, with `give_up`) are counted as they resolve now.
    pub fn retry_pending(&self, now: UnixMicros, give_up: bool) {
        let waiting: Vec<Pending> = self.pending.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect();
        for Pending { observation, at, since, fetching } in waiting {
            let since = since.unwrap_or(now);
            let bound = if fetching { FETCH_WAIT_MICROS } else { RETRY_MICROS };
            let may_wait = !give_up && now.saturating_sub(since) < bound;
            match observation {
                Waiting::Connection { source, client, server, sighting } => {
                    let connection = (client, server, sighting);
                    let counted = self.resolve_connection(source, connection, (at, Some(since)), may_wait);
                    self.count_connection_outcome(source, counted);
                }
                Waiting::Answer { client, question, addresses } => {
                    let resolved = self.retry_answer(client, &question, &addresses, (at, since), may_wait);
                    if resolved != Resolved::Pending {
                        self.metrics.dns_responses.get_or_create(&Outcome(DnsOutcome::from(resolved))).inc();
                    }
                }
            }
        }
        self.set_pending_gauge();
    }

    fn retry_answer(
        &self,
        client: IpAddr,
        question: &str,
        addresses: &[IpAddr],
        (at, since): (UnixMicros, UnixMicros),
        may_wait: bool,
    ) -> Resolved {
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        if may_wait {
            return self.dns_answer(&inventory, client, question, addresses, at, Some(since));
        }
        let resolution = Resolver::new(&inventory, &self.config).dns_answer(client, question, addresses, at);
        drop(inventory);
        self.count(ObservationSource::Dns, resolution, None)
    }

    /// Parks an observation until the next retry; with `wanted`, asks for it to be fetched meanwhile. False when
    /// it cannot wait (nothing fetches, the fetch queue or the waiting room is full): it is counted now.
    fn wait_for(
        &self,
        wanted: Option<&Wanted>,
        observation: impl FnOnce() -> Waiting,
        (at, since): (UnixMicros, Option<UnixMicros>),
    ) -> bool {
        if let Some(wanted) = wanted {
            match self.fetches.as_ref().map(|queue| queue.request(wanted)) {
                Some(Requested::Queued | Requested::Already) => {}
                Some(Requested::Full) => {
                    self.metrics.fetch_refused(wanted);
                    return false;
                }
                None => return false,
            }
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING {
            return false;
        }
        pending.push_back(Pending { observation: observation(), at, since, fetching: wanted.is_some() });
        self.metrics.observations_pending.set(pending.len() as i64);
        true
    }

    fn set_pending_gauge(&self) {
        let waiting = self.pending.lock().unwrap_or_else(PoisonError::into_inner).len();
        self.metrics.observations_pending.set(waiting as i64);
    }

    /// Observations waiting for their client pod or a fetched object.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The inventory this recorder resolves against.
    pub fn inventory(&self) -> &SharedInventory {
        &self.inventory
    }

    /// The metrics this recorder counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, ConnectionMemory> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connection_outcome(
        &self,
        source: ConnectionSource,
        first: bool,
        connection: Sighted,
        at: UnixMicros,
    ) -> Counted {
        let server = connection.1;
        let counted = if !first {
            Counted::Duplicate
        } else if server.port() == DNS_PORT && self.is_dns_server(&server.ip()) {
            Counted::DnsLookup
        } else {
            self.resolve_connection(source, connection, (at, None), true)
        };
        self.count_connection_outcome(source, counted);
        counted
    }

    /// Resolves and counts a connection; with `may_wait`, one whose client IP is not known yet, or whose pod or
    /// owner is being fetched, waits instead.
    fn resolve_connection(
        &self,
        source: ConnectionSource,
        connection: Sighted,
        (at, since): (UnixMicros, Option<UnixMicros>),
        may_wait: bool,
    ) -> Counted {
        let (client, server, sighting) = connection;
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        let resolver = Resolver::new(&inventory, &self.config);
        let resolution = resolver.connection(client.ip(), server.ip(), at);
        let port = resolver.server_port(server);
        let relay = is_mesh_relay(&resolver, &resolution, connection, at);
        drop(inventory);
        if relay {
            return Counted::MeshProxy;
        }
        let wanted = match &resolution {
            Resolution::Unresolved(Side::Client, Reason::UnknownIp | Reason::OwnerPending) => Some(None),
            Resolution::Fetch(_, wanted) => Some(Some(wanted)),
            _ => None,
        };
        let waiting = || Waiting::Connection { source, client, server, sighting };
        if let Some(wanted) = wanted
            && may_wait
            && self.wait_for(wanted, waiting, (at, since))
        {
            return Counted::Pending;
        }
        if let Resolution::Unresolved(side, reason) = &resolution {
            tracing::debug!(%client, %server, ?source, ?side, ?reason, "connection unresolved");
        }
        self.count(source.into(), resolution, Some(port)).into()
    }

    fn count_connection_outcome(&self, source: ConnectionSource, counted: Counted) {
        if counted == Counted::Pending {
            return;
        }
        match source {
            ConnectionSource::Syn => self.metrics.syns.get_or_create(&Outcome(SynOutcome::from(counted))).inc(),
            ConnectionSource::Socket => {
                self.metrics.socket_connections.get_or_create(&Outcome(SocketOutcome::from(counted))).inc()
            }
        };
    }

    /// Counts a resolution: an edge (and, for a connection, its port series), or the reason it is none.
    fn count(&self, source: ObservationSource, resolution: Resolution, port: Option<u16>) -> Resolved {
        match resolution {
            Resolution::Edge(edge) => {
                let outcome = match port {
                    Some(port) => self.metrics.edges.observe_connection(&edge, port),
                    None => self.metrics.edges.observe(&edge),
                };
                match outcome {
                    EdgeOutcome::Counted | EdgeOutcome::RefusedConnectionSeries => Resolved::Counted,
                    EdgeOutcome::RefusedMaxEdges | EdgeOutcome::RefusedExternal => Resolved::Refused,
                }
            }
            Resolution::OtherNode => Resolved::OtherNode,
            Resolution::Unresolved(side, reason) => {
                self.metrics.unresolved(source, side, reason);
                Resolved::Unresolved
            }
            // No answer came in time (or the observation could not wait): what was never fetched is named by
            // nobody.
            Resolution::Fetch(side, wanted) => {
                let reason = match wanted {
                    Wanted::Owner { .. } => Reason::OwnerPending,
                    Wanted::Pod { .. } | Wanted::PodAt(_) => Reason::FetchFailed,
                };
                self.metrics.unresolved(source, side, reason);
                Resolved::Unresolved
            }
        }
    }
}

/// A connection as a source saw it: client end, server end as dialled, and how a mesh proxy was involved.
type Sighted = (SocketAddr, SocketAddr, Sighting);

/// Whether a connection whose client is this node's pod is a mesh proxy's rather than an application call
/// (docs/counting.md, "Service meshes"). A plain sighting (a SYN, a socket where the scan saw no proxy) asks the
/// client pod's mesh, which its annotation gives; the second lookup of the client's address finds it in cache.
fn is_mesh_relay(resolver: &Resolver<'_>, resolution: &Resolution, connection: Sighted, at: UnixMicros) -> bool {
    let (client, server, sighting) = connection;
    if matches!(
        resolution,
        Resolution::OtherNode | Resolution::Unresolved(Side::Client, _) | Resolution::Fetch(Side::Client, _)
    ) {
        return false;
    }
    let port = server.port();
    let needs_mesh = sighting == Sighting::Plain && !mesh::is_proxy_port(port) && !mesh::is_control_plane_port(port);
    let client_mesh = if needs_mesh { resolver.mesh_of(client.ip(), at) } else { None };
    !mesh::is_application_call(sighting, client_mesh, port)
}

/// Per-outcome counter handles, created once so the hot path skips the family's label hashing.
struct DnsOutcomes {
    counted: Counter,
    duplicate: Counter,
    other_node: Counter,
    not_answer: Counter,
    forwarded: Counter,
    unresolved: Counter,
    malformed: Counter,
    refused: Counter,
}

impl DnsOutcomes {
    fn new(metrics: &Metrics) -> Self {
        let get = |outcome| metrics.dns_responses.get_or_create_owned(&Outcome(outcome));
        DnsOutcomes {
            counted: get(DnsOutcome::Counted),
            duplicate: get(DnsOutcome::Duplicate),
            other_node: get(DnsOutcome::OtherNode),
            not_answer: get(DnsOutcome::NotAnswer),
            forwarded: get(DnsOutcome::Forwarded),
            unresolved: get(DnsOutcome::Unresolved),
            malformed: get(DnsOutcome::Malformed),
            refused: get(DnsOutcome::Refused),
        }
    }

    fn early(&self, early: Early) {
        match early {
            Early::Malformed => self.malformed.inc(),
            Early::Duplicate => self.duplicate.inc(),
            Early::NotAnswer(_) => self.not_answer.inc(),
            Early::Forwarded => self.forwarded.inc(),
            Early::OtherNode => self.other_node.inc(),
        };
    }

    /// The counter of a decided outcome; `None` for one still pending (counted when decided).
    fn of(&self, resolved: Resolved) -> Option<&Counter> {
        match resolved {
            Resolved::Counted => Some(&self.counted),
            Resolved::OtherNode => Some(&self.other_node),
            Resolved::Unresolved => Some(&self.unresolved),
            Resolved::Refused => Some(&self.refused),
            Resolved::Pending => None,
        }
    }
}

/// The DNS half of the pipeline: one per capture thread.
pub struct DnsPipeline {
    decoder: FrameDecoder,
    sink: MessageSink,
    syns: SynSink,
    packets: Counter,
    /// One counter handle per frame outcome; six entries, so a linear search beats hashing labels.
    frames: Vec<(FrameOutcome, Counter)>,
}

/// What the pre-filter asks about one message's destination, answered under the message's one read of the
/// inventory.
struct Destination<'a> {
    inventory: &'a Inventory,
    config: &'a ResolveConfig,
    /// The DNS servers this capture has seen answering (see [`MessageSink::learned`]).
    learned: &'a FxHashSet<IpAddr>,
}

impl Destinations for Destination<'_> {
    fn on_other_node(&self, ip: IpAddr, at: UnixMicros) -> bool {
        Resolver::new(self.inventory, self.config).client_on_other_node(ip, at)
    }

    fn is_dns_server(&self, ip: IpAddr) -> bool {
        is_dns_server(self.learned, self.inventory, &ip)
    }
}

/// The DNS-server rule (docs/design.md §3), for the connection paths and the capture alike: an address seen
/// sending DNS answers (`learned`), or a backend or ClusterIP of a Service exposing port 53.
fn is_dns_server(learned: &FxHashSet<IpAddr>, inventory: &Inventory, ip: &IpAddr) -> bool {
    learned.contains(ip) || inventory.is_dns_server(ip)
}

struct MessageSink {
    prefilter: Prefilter,
    recorder: Recorder,
    outcomes: DnsOutcomes,
    /// The addresses this capture has seen sending DNS answers: its own copy of what it taught the recorder (for
    /// the connection paths), so that a message costs no lock for it.
    learned: FxHashSet<IpAddr>,
    /// The sender of the last response: a node's responses come from a few DNS pods, so most need no set lookup.
    last_sender: Option<IpAddr>,
}

/// Where client SYNs go; `None` with `--no-syn-capture` (a custom filter may still pass SYNs).
struct SynSink {
    recorder: Option<Recorder>,
}

impl DnsPipeline {
    /// A pipeline counting into `recorder`'s metrics.
    pub fn new(recorder: Recorder) -> Self {
        let outcomes = DnsOutcomes::new(recorder.metrics());
        let packets = recorder.metrics().capture_packets.clone();
        let frames = FrameOutcome::ALL
            .iter()
            .map(|&o| (o, recorder.metrics().capture_frames.get_or_create_owned(&Outcome(o))))
            .collect();
        DnsPipeline {
            decoder: FrameDecoder::new(),
            syns: SynSink { recorder: Some(recorder.clone()) },
            sink: MessageSink {
                prefilter: Prefilter::new(DEFAULT_WINDOW_MICROS, DEFAULT_MAX_ENTRIES),
                recorder,
                outcomes,
                learned: FxHashSet::default(),
                last_sender: None,
            },
            packets,
            frames,
        }
    }

    /// The recorder this pipeline counts into.
    pub fn recorder(&self) -> &Recorder {
        &self.sink.recorder
    }

    /// Ignores client SYNs (`--no-syn-capture`).
    pub fn without_syns(mut self) -> Self {
        self.syns.recorder = None;
        self
    }

    /// Processes one captured frame.
    pub fn process_frame(&mut self, link: LinkType, at: UnixMicros, frame: &[u8]) {
        self.packets.inc();
        let (sink, syns) = (&mut self.sink, &self.syns);
        let outcome =
            self.decoder.decode_with_syns(link, frame, &mut |message| sink.on_message(&message, at), &mut |syn| {
                syns.on_syn(&syn, at);
            });
        if let Some((_, counter)) = self.frames.iter().find(|(o, _)| *o == outcome) {
            counter.inc();
        }
    }
}

impl SynSink {
    fn on_syn(&self, syn: &Syn, at: UnixMicros) {
        if let Some(recorder) = &self.recorder {
            recorder.syn(syn, at);
        }
    }
}

impl MessageSink {
    fn on_message(&mut self, message: &DnsMessage<'_>, at: UnixMicros) {
        // The QR bit: whoever sends a response from port 53 is a DNS server.
        let sender = message.src.ip();
        if message.bytes.get(2).is_some_and(|flags| flags & 0x80 != 0)
            && self.last_sender.replace(sender) != Some(sender)
            && !self.learned.contains(&sender)
        {
            if self.learned.len() < MAX_LEARNED_DNS_SERVERS {
                self.learned.insert(sender);
            }
            self.recorder.learn_dns_server(sender);
        }
        // Non-answers, lookups forwarded by a DNS server (CoreDNS, a node-local cache: not calls of their own),
        // other nodes' answers and duplicates are decided from the header, the destination and the question, in
        // that order, before the full parse (src/sources/capture/prefilter.rs); the inventory is read (once) only
        // for messages whose header can be an answer.
        if let Err(early) = prefilter::check_header(message) {
            return self.outcomes.early(early);
        }
        let inventory = self.recorder.inventory.read().unwrap_or_else(PoisonError::into_inner);
        let destination = Destination { inventory: &inventory, config: &self.recorder.config, learned: &self.learned };
        if let Err(early) = prefilter::check_destination(message, at, &destination) {
            return self.outcomes.early(early);
        }
        if let Err(early) = self.prefilter.check_duplicate(message, at) {
            return self.outcomes.early(early);
        }
        let counter = match dns::parse_response(message.bytes) {
            DnsResponse::Malformed => Some(&self.outcomes.malformed),
            DnsResponse::NotAnswer(_) => Some(&self.outcomes.not_answer),
            DnsResponse::Answer(answer) => {
                let client = message.dst.ip();
                let resolved =
                    self.recorder.dns_answer(&inventory, client, &answer.question, &answer.addresses, at, None);
                self.outcomes.of(resolved)
            }
        };
        if let Some(counter) = counter {
            counter.inc();
        }
    }
}
