//! The one table of the exporter's metric families ([`FAMILIES`]): name, type, help, and when their series
//! exist. Families are registered only through [`Registrar::add`], which takes a row of this table, creates the
//! zero series it asks for, and records the family's labels from its typed label set; [`Registrar::finish`]
//! fails on a row that was not registered, so a family cannot be declared, counted and never served.
//!
//! What reads the table: `Metrics::new` (registration, zero series), `network-mapper --print-metric-families`
//! (the dashboard checker, `scripts/check-grafana.py`), and the tests that hold `/metrics` and
//! docs/operating.md to it (`tests/metric_families.rs`, `tests/docs_consistency.rs`).

use std::fmt::Debug;
use std::hash::Hash;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType as ClientType;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};
use serde::Serialize;

use super::{Enabled, PREFIX};

/// A family's type as `/metrics` declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// A counter (exposed with `_total`).
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// An info metric (exposed with `_info`, value 1).
    Info,
}

/// When a family's series exist: which exporter shows it on `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// From the start, on every exporter.
    Always,
    /// From the start when the capture runs.
    Capture,
    /// From the start when the socket scanner runs.
    Sockets,
    /// Once an inventory (a file or the API) has loaded.
    Inventory,
    /// With the API inventory: a zero series per watched kind once the watches start.
    ApiInventory,
    /// With the API inventory of a node's agent (`--node-name`, `--remote-pods=fetch`): zero series per kind
    /// and result once the watches start.
    ApiFetching,
    /// At the first observation that makes one (an edge, an unresolved observation).
    Observed,
    /// Read from the process at every scrape.
    Scrape,
}

impl Shown {
    fn runs(self, enabled: Enabled) -> bool {
        match self {
            Shown::Always => true,
            Shown::Capture => enabled.capture,
            Shown::Sockets => enabled.sockets,
            _ => false,
        }
    }
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct FamilySpec {
    /// The family's name as registered, without the `_total`/`_info`/unit suffixes.
    pub name: &'static str,
    /// Its type.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// `Some("seconds")` for families in seconds (the unit is appended to the name).
    pub unit: Option<&'static str>,
    /// The help text, a sentence without its full stop (prometheus-client adds it).
    pub help: &'static str,
    /// When its series exist.
    pub shown: Shown,
    /// Whether every combination of its fixed label values is created at start (a zero series), when `shown`
    /// holds; the other families with fixed labels fill themselves or are zeroed by the code that knows which
    /// values apply (the running sources, the watched kinds).
    pub zeros: bool,
}

impl FamilySpec {
    /// The name of its samples on `/metrics` (counters end in `_total`, info metrics in `_info`; histograms
    /// add `_bucket`, `_sum` and `_count` to it).
    pub fn exposed_name(&self) -> String {
        let unit = self.unit.map(|u| format!("_{u}")).unwrap_or_default();
        match self.metric_type {
            MetricType::Counter => format!("{}{unit}_total", self.name),
            MetricType::Info => format!("{}{unit}_info", self.name),
            MetricType::Gauge | MetricType::Histogram => format!("{}{unit}", self.name),
        }
    }
}

/// A label of a family: its name, and its values where they are a fixed set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabelSpec {
    /// The label's name.
    pub name: &'static str,
    /// Every value it can take, when fixed.
    pub values: Option<Vec<&'static str>>,
}

impl LabelSpec {
    /// A label whose values are open (workload names, ports).
    pub fn open(name: &'static str) -> LabelSpec {
        LabelSpec { name, values: None }
    }
}

/// A registered family: its row and its labels, as `--print-metric-families` prints it.
#[derive(Debug, Serialize)]
pub struct FamilyInfo {
    /// The row.
    #[serde(flatten)]
    pub spec: &'static FamilySpec,
    /// The name of its samples on `/metrics`.
    pub exposed_name: String,
    /// Its labels, from its typed label set.
    pub labels: Vec<LabelSpec>,
}

/// What a label set type says about itself.
pub trait DescribeLabels: Sized {
    /// Its labels, in the order they are encoded.
    fn labels() -> Vec<LabelSpec>;
    /// Every label set, when every label is fixed (the zero series); empty otherwise.
    fn every() -> Vec<Self> {
        Vec::new()
    }
}

/// A metric that can be registered from a row: its labels, and how its zero series are made.
pub trait Described: Metric {
    /// The labels of its series.
    fn labels() -> Vec<LabelSpec> {
        Vec::new()
    }
    /// Creates a series for every label set of its type (none for a metric without labels).
    fn create_every_series(&self) {}
}

impl Described for Counter {}
impl Described for Histogram {}
impl<N, A> Described for Gauge<N, A> where Gauge<N, A>: Metric {}

impl<S> Described for Info<S>
where
    S: DescribeLabels + Clone + Hash + Eq + EncodeLabelSet + Debug + Send + Sync + 'static,
{
    fn labels() -> Vec<LabelSpec> {
        S::labels()
    }
}

impl<S, M, C> Described for Family<S, M, C>
where
    S: DescribeLabels + Clone + Hash + Eq + EncodeLabelSet + Debug + Send + Sync + 'static,
    M: EncodeMetric + TypedMetric + Debug + Send + Sync + 'static,
    C: MetricConstructor<M> + Debug + Send + Sync + 'static,
{
    fn labels() -> Vec<LabelSpec> {
        S::labels()
    }

    fn create_every_series(&self) {
        for labels in S::every() {
            let _ = self.get_or_create(&labels);
        }
    }
}

/// Registers families from their rows into the `network_mapper` registry, and remembers what it registered.
pub struct Registrar<'a> {
    registry: &'a mut Registry,
    enabled: Enabled,
    added: Vec<FamilyInfo>,
}

impl<'a> Registrar<'a> {
    /// Registers into `registry` (already prefixed with [`PREFIX`]), with the zero series of `enabled`.
    pub fn new(registry: &'a mut Registry, enabled: Enabled) -> Self {
        Registrar { registry, enabled, added: Vec::new() }
    }

    /// Registers `metric` as `spec` says and returns the handle to count with.
    pub fn add<M: Described + Clone>(&mut self, spec: &'static FamilySpec, metric: M) -> M {
        self.register(spec, metric.clone());
        metric
    }

    /// Registers `metric` as `spec` says, for metrics nobody counts with afterwards (the build info).
    pub fn register<M: Described>(&mut self, spec: &'static FamilySpec, metric: M) {
        assert_eq!(client_type(spec.metric_type), metric.metric_type(), "{}: the table's type", spec.name);
        let name = spec.name.strip_prefix(PREFIX).and_then(|n| n.strip_prefix('_'));
        let name = name.unwrap_or_else(|| panic!("{}: an exporter family starts with {PREFIX}_", spec.name));
        if spec.zeros && spec.shown.runs(self.enabled) {
            metric.create_every_series();
        }
        match spec.unit {
            Some("seconds") => self.registry.register_with_unit(name, spec.help, Unit::Seconds, metric),
            Some(other) => panic!("{}: unit {other} is not one the table knows", spec.name),
            None => self.registry.register(name, spec.help, metric),
        }
        self.added.push(FamilyInfo { spec, exposed_name: spec.exposed_name(), labels: M::labels() });
    }

    /// Records families a collector writes at scrape time (they are registered with it, outside the prefix).
    pub fn collected(&mut self, specs: &[&'static FamilySpec]) {
        for &spec in specs {
            self.added.push(FamilyInfo { spec, exposed_name: spec.exposed_name(), labels: Vec::new() });
        }
    }

    /// What was registered, in table order. Panics when a row of [`FAMILIES`] was registered never or twice: the
    /// exporter would declare a family it does not serve.
    pub fn finish(self) -> Vec<FamilyInfo> {
        let mut added = self.added;
        for spec in FAMILIES {
            let times = added.iter().filter(|f| f.spec.name == spec.name).count();
            assert_eq!(times, 1, "{}: a row of FAMILIES must be registered exactly once", spec.name);
        }
        assert_eq!(added.len(), FAMILIES.len(), "every registered family is a row of FAMILIES");
        added.sort_by_key(|f| FAMILIES.iter().position(|s| s.name == f.spec.name));
        added
    }
}

fn client_type(t: MetricType) -> ClientType {
    match t {
        MetricType::Counter => ClientType::Counter,
        MetricType::Gauge => ClientType::Gauge,
        MetricType::Histogram => ClientType::Histogram,
        MetricType::Info => ClientType::Info,
    }
}

/// Declares rows as constants and lists them, in registration order, in [`FAMILIES`].
macro_rules! families {
    ($($const:ident: $name:literal, $type:ident $(in $unit:literal)?, $help:literal, $shown:ident $(, $zeros:ident)?;)*) => {
        $(
            #[doc = concat!("`", $name, "`: ", $help, ".")]
            pub static $const: FamilySpec = FamilySpec {
                name: $name,
                metric_type: MetricType::$type,
                unit: families!(@unit $($unit)?),
                help: $help,
                shown: Shown::$shown,
                zeros: families!(@zeros $($zeros)?),
            };
        )*
        /// Every family the exporter serves, in the order `/metrics` shows them.
        pub static FAMILIES: &[&FamilySpec] = &[$(&$const),*];
    };
    (@zeros zeros) => { true };
    (@zeros) => { false };
    (@unit $unit:literal) => { Some($unit) };
    (@unit) => { None };
}

families! {
    BUILD: "network_mapper_build", Info, "Build information of the running exporter", Always;
    EDGE: "network_mapper_edge", Counter,
        "Observations of a client workload calling a server (DNS answers and new client-side TCP connections)",
        Observed;
    EDGE_CONNECTIONS: "network_mapper_edge_connections", Counter,
        "TCP connections of an edge (SYN capture and socket scan) by the server pod's port", Observed;
    WORKLOAD_INFO: "network_mapper_workload_info", Gauge, "Kind of every workload that appears in an edge", Observed;
    EDGES: "network_mapper_edges", Gauge, "Distinct edge series exported", Always;
    EDGES_MAX: "network_mapper_edges_max", Gauge, "The configured cap on distinct edge series (--max-edges)", Always;
    EDGES_REFUSED: "network_mapper_edges_refused", Counter,
        "Observations of new edges refused by a cardinality cap, by reason", Always, zeros;
    CAPTURE_PACKETS: "network_mapper_capture_packets", Counter, "Frames read from the capture source", Always;
    CAPTURE_KERNEL_DROPS: "network_mapper_capture_kernel_drops", Counter,
        "Frames the kernel dropped because the capture buffer was full (pcap stats)", Always;
    CAPTURE_FRAMES: "network_mapper_capture_frames", Counter, "Captured frames by what decoding found", Capture, zeros;
    CAPTURE_ERRORS: "network_mapper_capture_errors", Counter, "Errors reading the capture source, by error",
        Capture, zeros;
    CAPTURE_FILTER_UPDATES: "network_mapper_capture_filter_updates", Counter,
        "Replacements of the capture's kernel filter as this node's pods come and go, by outcome", Capture, zeros;
    CAPTURE_FILTER_ADDRESSES: "network_mapper_capture_filter_addresses", Gauge,
        "Networks and addresses the capture's kernel filter passes answers to and SYNs from (0: not restricted to this node)",
        Always;
    DNS_RESPONSES: "network_mapper_dns_responses", Counter, "DNS responses captured, by outcome", Always, zeros;
    SYNS: "network_mapper_syns", Counter, "Client SYNs captured, by outcome", Capture, zeros;
    OBSERVATIONS_PENDING: "network_mapper_observations_pending", Gauge,
        "Observations waiting, for a few seconds at most, for their client pod to reach the inventory or for a remote pod or owner being fetched",
        Always;
    UNRESOLVED: "network_mapper_unresolved", Counter,
        "Observations whose client or server did not resolve to a workload, by source, side and reason", Observed;
    SOCKET_SCANS: "network_mapper_socket_scans", Counter, "Full socket scans, by outcome", Sockets, zeros;
    SOCKET_SCAN_DURATION: "network_mapper_socket_scan_duration", Histogram in "seconds",
        "Wall-clock duration of one full socket scan", Always;
    SOCKET_NAMESPACES: "network_mapper_socket_namespaces", Gauge, "Network namespaces read by the last socket scan",
        Always;
    SOCKET_NAMESPACES_UNCHANGED: "network_mapper_socket_namespaces_unchanged", Gauge,
        "Network namespaces the last socket scan did not read: their TCP ActiveOpens had not moved since their last read",
        Always;
    SOCKET_SCAN_SOCKETS: "network_mapper_socket_scan_sockets", Gauge, "TCP sockets read by the last socket scan",
        Always;
    SOCKET_CONNECTIONS: "network_mapper_socket_connections", Counter, "Sockets seen by socket scans, by outcome",
        Sockets, zeros;
    SOCKET_PROCESSES_SKIPPED: "network_mapper_socket_processes_skipped", Counter,
        "Processes a socket scan skipped, by reason", Sockets, zeros;
    INVENTORY_OBJECTS: "network_mapper_inventory_objects", Gauge, "Kubernetes objects in the inventory, by kind",
        Inventory;
    INVENTORY_SYNCED: "network_mapper_inventory_synced", Gauge,
        "Whether the inventory of each kind has synced (1) or not (0)", Inventory;
    INVENTORY_WATCH_ERRORS: "network_mapper_inventory_watch_errors", Counter,
        "Errors of the Kubernetes API watches, by kind", ApiInventory;
    INVENTORY_RELISTS: "network_mapper_inventory_relists", Counter,
        "Full relists of a Kubernetes API watch after the first list (410 Gone, or a list that failed), by kind",
        ApiInventory;
    INVENTORY_WATCH_RESTARTS: "network_mapper_inventory_watch_restarts", Counter,
        "Watch requests after the first, by kind: resumed after a dropped stream or the server's timeout",
        ApiInventory;
    INVENTORY_FETCHES: "network_mapper_inventory_fetches", Counter,
        "Remote pods and owners fetched from the Kubernetes API on request, by kind and result", ApiFetching;
    SOURCE_UP: "network_mapper_source_up", Gauge,
        "Whether the last attempt of each source (capture, sockets, inventory) succeeded (1) or failed (0)", Always;
    SOURCE_LAST_SUCCESS: "network_mapper_source_last_success_timestamp", Gauge in "seconds",
        "When each source last succeeded, in seconds since the Unix epoch", Always;
    PROCESS_RESIDENT_MEMORY: "process_resident_memory_bytes", Gauge, "Resident memory size in bytes", Scrape;
    PROCESS_CPU: "process_cpu_seconds", Counter, "Total user and system CPU time spent in seconds", Scrape;
    PROCESS_START_TIME: "process_start_time_seconds", Gauge,
        "Start time of the process since the Unix epoch in seconds", Scrape;
}
