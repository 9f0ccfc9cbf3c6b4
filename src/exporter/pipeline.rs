//! The per-observation path from bytes to counters: frame → DNS message → de-duplication → DNS answer →
//! resolution → edge counter, and the same tail for socket connections.
//!
//! It owns no thread and no clock: the capture adapter feeds it frames with their timestamps, the socket
//! scanner feeds it connections. The hot path takes the inventory's read lock once per DNS message.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::metrics::counter::Counter;

use crate::UnixMicros;
use crate::exporter::metrics::{DnsOutcome, EdgeOutcome, Metrics, ObservationSource, Outcome, SocketOutcome};
use crate::resolve::{Resolution, ResolveConfig, Resolver};
use crate::sources::capture::dedup::{DEFAULT_MAX_ENTRIES, DEFAULT_WINDOW_MICROS};
use crate::sources::capture::dns::{self, DnsResponse};
use crate::sources::capture::frame::{DnsMessage, FrameDecoder, FrameOutcome, LinkType};
use crate::sources::capture::prefilter::{Destinations, Early, Prefilter};
use crate::sources::inventory::Inventory;

/// The inventory as shared between its source (which writes) and the pipelines (which read).
pub type SharedInventory = Arc<RwLock<Inventory>>;

/// Where an observation ended up, for the per-source outcome counters.
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
}

impl From<Counted> for DnsOutcome {
    fn from(counted: Counted) -> Self {
        match counted {
            Counted::Counted => DnsOutcome::Counted,
            Counted::OtherNode => DnsOutcome::OtherNode,
            Counted::Unresolved => DnsOutcome::Unresolved,
            Counted::Refused => DnsOutcome::Refused,
        }
    }
}

impl From<Counted> for SocketOutcome {
    fn from(counted: Counted) -> Self {
        match counted {
            Counted::Counted => SocketOutcome::Counted,
            Counted::OtherNode => SocketOutcome::OtherNode,
            Counted::Unresolved => SocketOutcome::Unresolved,
            Counted::Refused => SocketOutcome::Refused,
        }
    }
}

/// Resolves and counts one observation; shared by the DNS and socket paths.
#[derive(Clone)]
pub struct Recorder {
    inventory: SharedInventory,
    config: Arc<ResolveConfig>,
    metrics: Metrics,
}

impl Recorder {
    /// A recorder over this inventory.
    pub fn new(inventory: SharedInventory, config: Arc<ResolveConfig>, metrics: Metrics) -> Self {
        Recorder { inventory, config, metrics }
    }

    /// A DNS answer to `client` for `question`.
    pub fn dns_answer(&self, client: IpAddr, question: &str, addresses: &[IpAddr], at: UnixMicros) -> Counted {
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        let resolution = Resolver::new(&inventory, &self.config).dns_answer(client, question, addresses, at);
        drop(inventory);
        self.count(ObservationSource::Dns, resolution)
    }

    /// Whether `client` is a pod on another node, which counts its answers itself.
    pub fn client_on_other_node(&self, client: IpAddr, at: UnixMicros) -> bool {
        if self.config.node_name.is_none() {
            return false;
        }
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        Resolver::new(&inventory, &self.config).client_on_other_node(client, at)
    }

    /// A new client-side TCP connection.
    pub fn connection(&self, local: IpAddr, remote: IpAddr, at: UnixMicros) -> Counted {
        let inventory = self.inventory.read().unwrap_or_else(PoisonError::into_inner);
        let resolution = Resolver::new(&inventory, &self.config).connection(local, remote, at);
        drop(inventory);
        self.count(ObservationSource::Socket, resolution)
    }

    /// The metrics this recorder counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn count(&self, source: ObservationSource, resolution: Resolution) -> Counted {
        match resolution {
            Resolution::Edge(edge) => match self.metrics.edges.observe(&edge) {
                EdgeOutcome::Counted => Counted::Counted,
                EdgeOutcome::RefusedMaxEdges | EdgeOutcome::RefusedExternal => Counted::Refused,
            },
            Resolution::OtherNode => Counted::OtherNode,
            Resolution::Unresolved(side, reason) => {
                self.metrics.unresolved(source, side, reason);
                Counted::Unresolved
            }
        }
    }
}

/// Per-outcome counter handles, created once so the hot path skips the family's label hashing.
struct DnsOutcomes {
    counted: Counter,
    duplicate: Counter,
    other_node: Counter,
    not_answer: Counter,
    unresolved: Counter,
    malformed: Counter,
    refused: Counter,
}

impl Destinations for Recorder {
    fn on_other_node(&self, ip: IpAddr, at: UnixMicros) -> bool {
        self.client_on_other_node(ip, at)
    }
}

impl DnsOutcomes {
    fn new(metrics: &Metrics) -> Self {
        let get = |outcome| metrics.dns_responses.get_or_create_owned(&Outcome(outcome));
        DnsOutcomes {
            counted: get(DnsOutcome::Counted),
            duplicate: get(DnsOutcome::Duplicate),
            other_node: get(DnsOutcome::OtherNode),
            not_answer: get(DnsOutcome::NotAnswer),
            unresolved: get(DnsOutcome::Unresolved),
            malformed: get(DnsOutcome::Malformed),
            refused: get(DnsOutcome::Refused),
        }
    }

    fn early(&self, early: Early, metrics: &Metrics) {
        match early {
            Early::Malformed => self.malformed.inc(),
            Early::Duplicate => self.duplicate.inc(),
            Early::NotAnswer(_) => self.not_answer.inc(),
            Early::OtherNode => self.other_node.inc(),
            Early::Forwarded => metrics.dns_responses.get_or_create(&Outcome(DnsOutcome::Forwarded)).inc(),
        };
    }

    fn of(&self, counted: Counted) -> &Counter {
        match counted {
            Counted::Counted => &self.counted,
            Counted::OtherNode => &self.other_node,
            Counted::Unresolved => &self.unresolved,
            Counted::Refused => &self.refused,
        }
    }
}

/// The DNS half of the pipeline: one per capture thread.
pub struct DnsPipeline {
    decoder: FrameDecoder,
    sink: MessageSink,
    packets: Counter,
    /// One counter handle per frame outcome; six entries, so a linear search beats hashing labels.
    frames: Vec<(FrameOutcome, Counter)>,
}

struct MessageSink {
    prefilter: Prefilter,
    recorder: Recorder,
    outcomes: DnsOutcomes,
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
            sink: MessageSink {
                prefilter: Prefilter::new(DEFAULT_WINDOW_MICROS, DEFAULT_MAX_ENTRIES),
                recorder,
                outcomes,
            },
            packets,
            frames,
        }
    }

    /// Processes one captured frame.
    pub fn process_frame(&mut self, link: LinkType, at: UnixMicros, frame: &[u8]) {
        self.packets.inc();
        let sink = &mut self.sink;
        let outcome = self.decoder.decode(link, frame, &mut |message| sink.on_message(&message, at));
        if let Some((_, counter)) = self.frames.iter().find(|(o, _)| *o == outcome) {
            counter.inc();
        }
    }
}

impl MessageSink {
    fn on_message(&mut self, message: &DnsMessage<'_>, at: UnixMicros) {
        // Duplicates, non-answers and other nodes' answers are decided before the full parse.
        if let Err(early) = self.prefilter.check(message, at, &self.recorder) {
            return self.outcomes.early(early, self.recorder.metrics());
        }
        match dns::parse_response(message.bytes) {
            DnsResponse::Malformed => self.outcomes.malformed.inc(),
            DnsResponse::NotAnswer(_) => self.outcomes.not_answer.inc(),
            DnsResponse::Answer(answer) => {
                let counted = self.recorder.dns_answer(message.dst.ip(), &answer.question, &answer.addresses, at);
                self.outcomes.of(counted).inc()
            }
        };
    }
}
