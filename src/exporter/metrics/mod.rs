//! Metrics: the edge counter with its cardinality caps (`edges`), the exporter's self-metrics, and process
//! metrics (`process`), all in one registry served on `/metrics`. Every family is a row of the one table in
//! `families`, and is registered only from its row.
//!
//! Labels identify workloads, never pod IPs or ports: a workload-level map stays small however many pods churn,
//! and it is what access policy is written against. Self-metric labels are short fixed strings.

mod edges;
pub mod families;
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
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

pub use edges::{ConnectionLabels, EdgeCounter, EdgeLabels, EdgeOutcome, Limits, WorkloadLabels};
pub use families::{FAMILIES, FamilyInfo, FamilySpec, LabelSpec, MetricType, Shown};
pub use inventory::InventoryReport;
pub use labels::{
    DnsOutcome, ErrorLabel, FetchLabels, FilterOutcome, InventoryKind, KindLabel, LabelValue, ObservationSource,
    Outcome, ReasonLabel, RefusedReason, ScanOutcome, SkipReason, SocketOutcome, SourceLabel, SourceName, SynOutcome,
    UnresolvedLabels,
};

use self::families::{self as f, DescribeLabels, Registrar};
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

impl DescribeLabels for BuildLabels {
    fn labels() -> Vec<LabelSpec> {
        vec![LabelSpec::open("version")]
    }
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
        let (metrics, registry, _) = Metrics::build(limits, enabled);
        (metrics, registry)
    }

    /// Every family the exporter serves, with its labels: the table of [`FAMILIES`] as registered.
    pub fn families() -> Vec<FamilyInfo> {
        let every = Enabled { capture: true, sockets: true, api_inventory: true };
        Metrics::build(Limits::default(), every).2
    }

    /// [`Metrics::families`] as JSON, for `network-mapper --print-metric-families`.
    pub fn families_json() -> String {
        serde_json::to_string_pretty(&Metrics::families()).unwrap_or_else(|e| unreachable!("plain data: {e}"))
    }

    /// Each handle is made by registering its row of [`FAMILIES`]: a family cannot exist unregistered.
    fn build(limits: Limits, enabled: Enabled) -> (Metrics, Registry, Vec<FamilyInfo>) {
        let mut root = Registry::default();
        let mut r = Registrar::new(root.sub_registry_with_prefix(PREFIX), enabled);
        r.register(&f::BUILD, Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }));
        let edges = EdgeCounter::new(limits, &mut r);
        let metrics = Metrics {
            capture_packets: r.add(&f::CAPTURE_PACKETS, Counter::default()),
            capture_kernel_drops: r.add(&f::CAPTURE_KERNEL_DROPS, Counter::default()),
            capture_frames: r.add(&f::CAPTURE_FRAMES, Family::default()),
            capture_errors: r.add(&f::CAPTURE_ERRORS, Family::default()),
            capture_filter_updates: r.add(&f::CAPTURE_FILTER_UPDATES, Family::default()),
            capture_filter_addresses: r.add(&f::CAPTURE_FILTER_ADDRESSES, Gauge::default()),
            dns_responses: r.add(&f::DNS_RESPONSES, Family::default()),
            syns: r.add(&f::SYNS, Family::default()),
            observations_pending: r.add(&f::OBSERVATIONS_PENDING, Gauge::default()),
            unresolved: r.add(&f::UNRESOLVED, Family::default()),
            socket_scans: r.add(&f::SOCKET_SCANS, Family::default()),
            socket_scan_duration: r
                .add(&f::SOCKET_SCAN_DURATION, Histogram::new(exponential_buckets(0.000_5, 2.0, 14))),
            socket_namespaces: r.add(&f::SOCKET_NAMESPACES, Gauge::default()),
            socket_namespaces_unchanged: r.add(&f::SOCKET_NAMESPACES_UNCHANGED, Gauge::default()),
            socket_scan_sockets: r.add(&f::SOCKET_SCAN_SOCKETS, Gauge::default()),
            socket_connections: r.add(&f::SOCKET_CONNECTIONS, Family::default()),
            socket_processes_skipped: r.add(&f::SOCKET_PROCESSES_SKIPPED, Family::default()),
            inventory_objects: r.add(&f::INVENTORY_OBJECTS, Family::default()),
            inventory_synced: r.add(&f::INVENTORY_SYNCED, Family::default()),
            inventory_watch_errors: r.add(&f::INVENTORY_WATCH_ERRORS, Family::default()),
            inventory_relists: r.add(&f::INVENTORY_RELISTS, Family::default()),
            inventory_watch_restarts: r.add(&f::INVENTORY_WATCH_RESTARTS, Family::default()),
            inventory_fetches: r.add(&f::INVENTORY_FETCHES, Family::default()),
            source_up: r.add(&f::SOURCE_UP, Family::default()),
            source_last_success: r.add(&f::SOURCE_LAST_SUCCESS, Family::default()),
            edges,
        };
        r.collected(process::FAMILIES);
        let families = r.finish();
        root.register_collector(Box::new(process::ProcessCollector));
        metrics.source_zero_series(enabled);
        (metrics, root, families)
    }

    /// The zero series of `source_up` and `source_last_success_timestamp_seconds`: of the running sources only, so
    /// a disabled scanner shows no misleading `source_up{source="sockets"} 0`. (The other fixed label values get
    /// theirs from their rows of [`FAMILIES`].)
    fn source_zero_series(&self, enabled: Enabled) {
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
