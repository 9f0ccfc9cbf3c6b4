//! Metrics: the edge counter with its cardinality caps (`edges`), the exporter's self-metrics, and process
//! metrics (`process`), all in one registry served on `/metrics`.
//!
//! Labels identify workloads, never pod IPs or ports: a workload-level map stays small however many pods churn,
//! and it is what access policy is written against. Self-metric labels are short fixed strings.

mod edges;
mod inventory;
mod process;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

pub use edges::{ConnectionLabels, EdgeCounter, EdgeLabels, EdgeOutcome, Limits, WorkloadLabels};
pub use inventory::InventoryReport;

use crate::resolve::{Reason, Side};

/// The prefix of every exporter metric.
pub const PREFIX: &str = "network_mapper";

/// Labels `{outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// A short fixed outcome name.
    pub outcome: &'static str,
}

/// Labels `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A short fixed reason name.
    pub reason: &'static str,
}

/// Labels `{error}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// A short fixed error name.
    pub error: &'static str,
}

/// Labels `{kind}` for inventory objects.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The Kubernetes kind.
    pub kind: &'static str,
}

/// Labels `{source,side,reason}` of unresolved observations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnresolvedLabels {
    /// `dns`, `syn` or `socket`.
    pub source: &'static str,
    /// `client` or `server`.
    pub side: &'static str,
    /// Why (see [`Reason::metric_label`]).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Outcomes of a DNS response, in the order they are decided.
pub const DNS_OUTCOMES: [&str; 8] =
    ["counted", "duplicate", "forwarded", "other_node", "not_answer", "unresolved", "malformed", "refused"];

/// Outcomes of a client SYN (and of a socket-scan connection): `duplicate` is a copy, a retransmission or a
/// connection the other source reported; `dns_lookup` a connection to port 53 of a DNS server; `loopback` one
/// inside a pod or the node.
pub const CONNECTION_OUTCOMES: [&str; 7] =
    ["counted", "duplicate", "dns_lookup", "loopback", "other_node", "unresolved", "refused"];

/// The exporter's self-metrics. Handles are cheap clones of the registered metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Frames read from the capture source.
    pub capture_packets: Counter,
    /// Frames the kernel dropped (pcap stats).
    pub capture_kernel_drops: Counter,
    /// Frames by what decoding found (`dns`, `not_dns`, `tcp_no_message`, `truncated`, `fragment`, `malformed`).
    pub capture_frames: Family<OutcomeLabels, Counter>,
    /// Capture read errors by kind.
    pub capture_errors: Family<ErrorLabels, Counter>,
    /// DNS responses by outcome.
    pub dns_responses: Family<OutcomeLabels, Counter>,
    /// Client SYNs by outcome.
    pub syns: Family<OutcomeLabels, Counter>,
    /// Connections waiting for their client pod to reach the inventory.
    pub connections_pending: Gauge,
    /// Observations that did not resolve, by source, side and reason.
    pub unresolved: Family<UnresolvedLabels, Counter>,
    /// Socket scans by outcome (`ok`, `error`).
    pub socket_scans: Family<OutcomeLabels, Counter>,
    /// Duration of one full socket scan.
    pub socket_scan_duration: Histogram,
    /// Network namespaces read by the last scan.
    pub socket_namespaces: Gauge,
    /// TCP sockets (table rows) read by the last scan.
    pub socket_scan_sockets: Gauge,
    /// Sockets seen by scans, by outcome.
    pub socket_connections: Family<OutcomeLabels, Counter>,
    /// Processes skipped by socket scans, by reason (`vanished`, `unreadable`).
    pub socket_processes_skipped: Family<ReasonLabels, Counter>,
    /// Indexed inventory objects by kind.
    pub inventory_objects: Family<KindLabels, Gauge>,
    /// Whether each inventory source has synced (1) or not (0).
    pub inventory_synced: Family<KindLabels, Gauge>,
    /// Inventory watch errors by kind.
    pub inventory_watch_errors: Family<KindLabels, Counter>,
    /// Full relists of an API watch after its first list, by kind.
    pub inventory_relists: Family<KindLabels, Counter>,
    /// Watch requests after the first (resumed streams), by kind.
    pub inventory_watch_restarts: Family<KindLabels, Counter>,
    /// The edge counter and its companions.
    pub edges: EdgeCounter,
}

impl Metrics {
    /// Creates the metrics and registers them (with the process collector) in a new registry.
    pub fn new(limits: Limits) -> (Metrics, Registry) {
        let metrics = Metrics {
            capture_packets: Counter::default(),
            capture_kernel_drops: Counter::default(),
            capture_frames: Family::default(),
            capture_errors: Family::default(),
            dns_responses: Family::default(),
            syns: Family::default(),
            connections_pending: Gauge::default(),
            unresolved: Family::default(),
            socket_scans: Family::default(),
            socket_scan_duration: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            socket_namespaces: Gauge::default(),
            socket_scan_sockets: Gauge::default(),
            socket_connections: Family::default(),
            socket_processes_skipped: Family::default(),
            inventory_objects: Family::default(),
            inventory_synced: Family::default(),
            inventory_watch_errors: Family::default(),
            inventory_relists: Family::default(),
            inventory_watch_restarts: Family::default(),
            edges: EdgeCounter::new(limits),
        };
        let mut root = Registry::default();
        metrics.register(root.sub_registry_with_prefix(PREFIX));
        root.register_collector(Box::new(process::ProcessCollector));
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
        reg.register("dns_responses", "DNS responses captured, by outcome", self.dns_responses.clone());
        reg.register("syns", "Client SYNs captured, by outcome", self.syns.clone());
        reg.register(
            "connections_pending",
            "Connections (SYN or socket) whose client IP is not in the inventory yet, retried for a few seconds",
            self.connections_pending.clone(),
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
        // Pre-create the outcome series so dashboards and alerts see zeros rather than absent series.
        for outcome in DNS_OUTCOMES {
            self.dns_responses.get_or_create(&OutcomeLabels { outcome }).inc_by(0);
        }
        for outcome in CONNECTION_OUTCOMES {
            self.syns.get_or_create(&OutcomeLabels { outcome }).inc_by(0);
            self.socket_connections.get_or_create(&OutcomeLabels { outcome }).inc_by(0);
        }
    }

    /// Counts a capture read or reopen error.
    pub fn capture_error(&self, error: &crate::sources::capture::Error) {
        self.capture_errors.get_or_create(&ErrorLabels { error: error.metric_label() }).inc();
    }

    /// Counts an unresolved observation.
    pub fn unresolved(&self, source: &'static str, side: Side, reason: Reason) {
        let labels = UnresolvedLabels { source, side: side.metric_label(), reason: reason.metric_label() };
        self.unresolved.get_or_create(&labels).inc();
    }

    /// Publishes inventory object counts.
    pub fn inventory_counts(&self, counts: crate::sources::inventory::Counts) {
        let set = |kind, n: usize| self.inventory_objects.get_or_create(&KindLabels { kind }).set(n as i64);
        set("Pod", counts.pods);
        set("Service", counts.services);
        set("EndpointSlice", counts.slices);
        set("Owner", counts.owners);
    }
}
