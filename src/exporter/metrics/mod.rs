//! Metrics: the edge counter with its cardinality caps (`edges`), the exporter's self-metrics, and process
//! metrics (`process`), all in one registry served on `/metrics`.
//!
//! Labels identify workloads, never pod IPs or ports: a workload-level map stays small however many pods churn,
//! and it is what access policy is written against. Self-metric labels are short fixed strings.

mod edges;
mod inventory;
mod labels;
mod process;

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

pub use edges::{ConnectionLabels, EdgeCounter, EdgeLabels, EdgeOutcome, Limits, WorkloadLabels};
pub use inventory::InventoryReport;
pub use labels::{
    DnsOutcome, ErrorLabel, FetchLabels, FilterOutcome, InventoryKind, KindLabel, LabelValue, ObservationSource,
    Outcome, ReasonLabel, RefusedReason, ScanOutcome, SkipReason, SocketOutcome, SourceLabel, SourceName, SynOutcome,
    UnresolvedLabels,
};

use crate::resolve::{Reason, Side};
use crate::sources::capture::ErrorKind as CaptureErrorKind;
use crate::sources::capture::frame::FrameOutcome;
use crate::sources::inventory::{Counts, FetchKind, FetchResult, Kind, Wanted};

/// The prefix of every exporter metric.
pub const PREFIX: &str = "network_mapper";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A gauge holding seconds since the Unix epoch.
type Timestamp = Gauge<f64, AtomicU64>;

/// Which sources this exporter runs, so that only their series exist (a disabled scanner shows no
/// `source_up{source="sockets"}` rather than a misleading 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Enabled {
    /// The packet capture runs.
    pub capture: bool,
    /// The socket scanner runs.
    pub sockets: bool,
    /// The inventory comes from the API watches (false: from a file).
    pub api_inventory: bool,
}

/// The exporter's self-metrics. Handles are cheap clones of the registered metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Frames read from the capture source.
    pub capture_packets: Counter,
    /// Frames the kernel dropped (pcap stats).
    pub capture_kernel_drops: Counter,
    /// Frames by what decoding found (`dns`, `not_dns`, `tcp_no_message`, `truncated`, `fragment`, `malformed`).
    pub capture_frames: Family<Outcome<FrameOutcome>, Counter>,
    /// Capture read errors by kind.
    pub capture_errors: Family<ErrorLabel<CaptureErrorKind>, Counter>,
    /// Replacements of the capture's kernel filter (the node filter), by outcome.
    pub capture_filter_updates: Family<Outcome<FilterOutcome>, Counter>,
    /// Networks and addresses the node filter passes (0: the capture is not restricted to the node).
    pub capture_filter_addresses: Gauge,
    /// DNS responses by outcome.
    pub dns_responses: Family<Outcome<DnsOutcome>, Counter>,
    /// Client SYNs by outcome.
    pub syns: Family<Outcome<SynOutcome>, Counter>,
    /// Observations waiting for their client pod or for a fetched object.
    pub observations_pending: Gauge,
    /// Observations that did not resolve, by source, side and reason.
    pub unresolved: Family<UnresolvedLabels, Counter>,
    /// Socket scans by outcome (`ok`, `error`).
    pub socket_scans: Family<Outcome<ScanOutcome>, Counter>,
    /// Duration of one full socket scan.
    pub socket_scan_duration: Histogram,
    /// Network namespaces read by the last scan.
    pub socket_namespaces: Gauge,
    /// Network namespaces the last scan left unread: no `connect()` since their last read.
    pub socket_namespaces_unchanged: Gauge,
    /// TCP sockets (table rows) read by the last scan.
    pub socket_scan_sockets: Gauge,
    /// Sockets seen by scans, by outcome.
    pub socket_connections: Family<Outcome<SocketOutcome>, Counter>,
    /// Processes skipped by socket scans, by reason (`vanished`, `unreadable`).
    pub socket_processes_skipped: Family<ReasonLabel<SkipReason>, Counter>,
    /// Indexed inventory objects by kind.
    pub inventory_objects: Family<KindLabel<InventoryKind>, Gauge>,
    /// Whether each inventory source has synced (1) or not (0).
    pub inventory_synced: Family<KindLabel<InventoryKind>, Gauge>,
    /// Inventory watch errors by kind.
    pub inventory_watch_errors: Family<KindLabel<InventoryKind>, Counter>,
    /// Full relists of an API watch after its first list, by kind.
    pub inventory_relists: Family<KindLabel<InventoryKind>, Counter>,
    /// Watch requests after the first (resumed streams), by kind.
    pub inventory_watch_restarts: Family<KindLabel<InventoryKind>, Counter>,
    /// Objects fetched on request, by kind and result.
    pub inventory_fetches: Family<FetchLabels, Counter>,
    /// Whether each source's last attempt succeeded (1) or failed (0).
    pub source_up: Family<SourceLabel<SourceName>, Gauge>,
    /// When each source last succeeded, in seconds since the Unix epoch.
    pub source_last_success: Family<SourceLabel<SourceName>, Timestamp>,
    /// The edge counter and its companions.
    pub edges: EdgeCounter,
}

impl Metrics {
    /// Creates the metrics, registers them (with the process collector) in a new registry, and creates the
    /// zero series of every fixed label value, for the sources that are `enabled`.
    pub fn new(limits: Limits, enabled: Enabled) -> (Metrics, Registry) {
        let metrics = Metrics {
            capture_packets: Counter::default(),
            capture_kernel_drops: Counter::default(),
            capture_frames: Family::default(),
            capture_errors: Family::default(),
            capture_filter_updates: Family::default(),
            capture_filter_addresses: Gauge::default(),
            dns_responses: Family::default(),
            syns: Family::default(),
            observations_pending: Gauge::default(),
            unresolved: Family::default(),
            socket_scans: Family::default(),
            socket_scan_duration: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            socket_namespaces: Gauge::default(),
            socket_namespaces_unchanged: Gauge::default(),
            socket_scan_sockets: Gauge::default(),
            socket_connections: Family::default(),
            socket_processes_skipped: Family::default(),
            inventory_objects: Family::default(),
            inventory_synced: Family::default(),
            inventory_watch_errors: Family::default(),
            inventory_relists: Family::default(),
            inventory_watch_restarts: Family::default(),
            inventory_fetches: Family::default(),
            source_up: Family::default(),
            source_last_success: Family::default(),
            edges: EdgeCounter::new(limits),
        };
        let mut root = Registry::default();
        metrics.register(root.sub_registry_with_prefix(PREFIX));
        root.register_collector(Box::new(process::ProcessCollector));
        metrics.zero_series(enabled);
        (metrics, root)
    }

    fn register(&self, reg: &mut Registry) {
        reg.register(
            "build",
            "Build information of the running exporter",
            Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }),
        );
        self.edges.register(reg);
        reg.register("capture_packets", "Frames read from the capture source", self.capture_packets.clone());
        reg.register(
            "capture_kernel_drops",
            "Frames the kernel dropped because the capture buffer was full (pcap stats)",
            self.capture_kernel_drops.clone(),
        );
        reg.register("capture_frames", "Captured frames by what decoding found", self.capture_frames.clone());
        reg.register("capture_errors", "Errors reading the capture source, by error", self.capture_errors.clone());
        reg.register(
            "capture_filter_updates",
            "Replacements of the capture's kernel filter as this node's pods come and go, by outcome",
            self.capture_filter_updates.clone(),
        );
        reg.register(
            "capture_filter_addresses",
            "Networks and addresses the capture's kernel filter passes answers to and SYNs from (0: not restricted to this node)",
            self.capture_filter_addresses.clone(),
        );
        reg.register("dns_responses", "DNS responses captured, by outcome", self.dns_responses.clone());
        reg.register("syns", "Client SYNs captured, by outcome", self.syns.clone());
        reg.register(
            "observations_pending",
            "Observations waiting, for a few seconds at most, for their client pod to reach the inventory or for a remote pod or owner being fetched",
            self.observations_pending.clone(),
        );
        reg.register(
            "unresolved",
            "Observations whose client or server did not resolve to a workload, by source, side and reason",
            self.unresolved.clone(),
        );
        reg.register("socket_scans", "Full socket scans, by outcome", self.socket_scans.clone());
        reg.register_with_unit(
            "socket_scan_duration",
            "Wall-clock duration of one full socket scan",
            Unit::Seconds,
            self.socket_scan_duration.clone(),
        );
        reg.register(
            "socket_namespaces",
            "Network namespaces read by the last socket scan",
            self.socket_namespaces.clone(),
        );
        reg.register(
            "socket_namespaces_unchanged",
            "Network namespaces the last socket scan did not read: their TCP ActiveOpens had not moved since their last read",
            self.socket_namespaces_unchanged.clone(),
        );
        reg.register(
            "socket_scan_sockets",
            "TCP sockets read by the last socket scan",
            self.socket_scan_sockets.clone(),
        );
        reg.register("socket_connections", "Sockets seen by socket scans, by outcome", self.socket_connections.clone());
        reg.register(
            "inventory_objects",
            "Kubernetes objects in the inventory, by kind",
            self.inventory_objects.clone(),
        );
        reg.register(
            "inventory_synced",
            "Whether the inventory of each kind has synced (1) or not (0)",
            self.inventory_synced.clone(),
        );
        reg.register(
            "inventory_watch_errors",
            "Errors of the Kubernetes API watches, by kind",
            self.inventory_watch_errors.clone(),
        );
        reg.register(
            "inventory_relists",
            "Full relists of a Kubernetes API watch after the first list (410 Gone, or a list that failed), by kind",
            self.inventory_relists.clone(),
        );
        reg.register(
            "inventory_watch_restarts",
            "Watch requests after the first, by kind: resumed after a dropped stream or the server's timeout",
            self.inventory_watch_restarts.clone(),
        );
        reg.register(
            "inventory_fetches",
            "Remote pods and owners fetched from the Kubernetes API on request, by kind and result",
            self.inventory_fetches.clone(),
        );
        reg.register(
            "source_up",
            "Whether the last attempt of each source (capture, sockets, inventory) succeeded (1) or failed (0)",
            self.source_up.clone(),
        );
        reg.register_with_unit(
            "source_last_success_timestamp",
            "When each source last succeeded, in seconds since the Unix epoch",
            Unit::Seconds,
            self.source_last_success.clone(),
        );
    }

    /// The one place where zero series are created: every fixed label value of the enabled sources' families,
    /// so dashboards and alerts see zeros rather than absent series. `unresolved` is left to fill itself
    /// (source × side × reason is 32 mostly-empty series).
    fn zero_series(&self, enabled: Enabled) {
        fn zeros<L: LabelValue, S: EncodeLabelSet + Clone + Eq + std::hash::Hash>(
            family: &Family<S, Counter>,
            label: impl Fn(L) -> S,
        ) {
            for &value in L::ALL {
                family.get_or_create(&label(value)).inc_by(0);
            }
        }
        zeros(&self.dns_responses, Outcome);
        zeros(&self.edges.refused, ReasonLabel::<RefusedReason>);
        if enabled.capture {
            zeros(&self.syns, Outcome::<SynOutcome>);
            zeros(&self.capture_frames, Outcome::<FrameOutcome>);
            zeros(&self.capture_errors, ErrorLabel::<CaptureErrorKind>);
            zeros(&self.capture_filter_updates, Outcome::<FilterOutcome>);
        }
        if enabled.sockets {
            zeros(&self.socket_scans, Outcome::<ScanOutcome>);
            zeros(&self.socket_connections, Outcome::<SocketOutcome>);
            zeros(&self.socket_processes_skipped, ReasonLabel::<SkipReason>);
        }
        let sources = [
            (SourceName::Capture, enabled.capture),
            (SourceName::Sockets, enabled.sockets),
            (SourceName::Inventory, true),
        ];
        for (source, _) in sources.into_iter().filter(|(_, on)| *on) {
            self.source_up.get_or_create(&SourceLabel(source)).set(0);
            self.source_last_success.get_or_create(&SourceLabel(source)).set(0.0);
        }
    }

    /// The zero series of the API inventory: of the watched `kinds`, and of the fetches if `fetching`.
    pub fn inventory_zero_series(&self, kinds: &[Kind], fetching: bool) {
        for kind in kinds.iter().map(|k| KindLabel(InventoryKind::from(*k))) {
            self.inventory_synced.get_or_create(&kind).set(0);
            self.inventory_watch_errors.get_or_create(&kind).inc_by(0);
            self.inventory_relists.get_or_create(&kind).inc_by(0);
            self.inventory_watch_restarts.get_or_create(&kind).inc_by(0);
        }
        let results = FetchKind::ALL.into_iter().flat_map(|k| FetchResult::ALL.map(|r| (k, r)));
        for (kind, result) in results.filter(|_| fetching) {
            self.inventory_fetches.get_or_create(&FetchLabels { kind, result }).inc_by(0);
        }
    }

    /// Records that `source` just succeeded (a read, a scan, a watch batch).
    pub fn source_succeeded(&self, source: SourceName) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        self.source_up.get_or_create(&SourceLabel(source)).set(1);
        self.source_last_success.get_or_create(&SourceLabel(source)).set(now);
    }

    /// Records that `source` failed; it shows as down until it next succeeds.
    pub fn source_failed(&self, source: SourceName) {
        self.source_up.get_or_create(&SourceLabel(source)).set(0);
    }

    /// Counts a capture read or reopen error.
    pub fn capture_error(&self, error: &crate::sources::capture::Error) {
        self.capture_errors.get_or_create(&ErrorLabel(error.kind())).inc();
        self.source_failed(SourceName::Capture);
    }

    /// Counts a fetch by its result.
    pub fn fetched(&self, kind: FetchKind, result: FetchResult) {
        self.inventory_fetches.get_or_create(&FetchLabels { kind, result }).inc();
    }

    /// Counts a fetch the full queue refused.
    pub fn fetch_refused(&self, wanted: &Wanted) {
        self.fetched(FetchKind::of(wanted), FetchResult::Refused);
    }

    /// Counts an unresolved observation.
    pub fn unresolved(&self, source: ObservationSource, side: Side, reason: Reason) {
        self.unresolved.get_or_create(&UnresolvedLabels { source, side, reason }).inc();
    }

    /// Publishes the object counts of an inventory file, and that it is loaded.
    pub fn inventory_file_loaded(&self, counts: Counts) {
        let set = |kind, n: usize| self.inventory_objects.get_or_create(&KindLabel(kind)).set(n as i64);
        set(InventoryKind::Pod, counts.pods);
        set(InventoryKind::Service, counts.services);
        set(InventoryKind::EndpointSlice, counts.slices);
        set(InventoryKind::Owner, counts.owners);
        self.inventory_synced.get_or_create(&KindLabel(InventoryKind::File)).set(1);
        self.source_succeeded(SourceName::Inventory);
    }
}
