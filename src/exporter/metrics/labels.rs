//! The label vocabulary of the self-metrics (help texts are sentences; prometheus-client adds the full stop): every label whose values are fixed is an enum with
//! `metric_label()` and `ALL`, so a family cannot be given a value outside its set and its zero series can be
//! created from the type. The sources define their own outcome enums; this module only says how each is shown.

use std::fmt::{self, Debug};
use std::hash::Hash;

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};

use super::families::{DescribeLabels, LabelSpec};
use crate::resolve::{Reason as UnresolvedReason, Side};
use crate::sources::capture::ErrorKind as CaptureErrorKind;
use crate::sources::capture::frame::FrameOutcome;
use crate::sources::inventory::{FetchKind, FetchResult, Kind};

/// A label value from a fixed set.
pub trait LabelValue: Copy + Debug + Hash + Eq + Send + Sync + 'static {
    /// Every value, in the order its zero series are created.
    const ALL: &'static [Self];
    /// The short stable string shown on `/metrics`.
    fn metric_label(self) -> &'static str;

    /// The value shown as `label`, if any (for tests and benchmarks that name outcomes as they read them).
    fn from_metric_label(label: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.metric_label() == label)
    }
}

/// The label `name` with every value of `T`.
fn fixed<T: LabelValue>(name: &'static str) -> LabelSpec {
    LabelSpec { name, values: Some(T::ALL.iter().map(|v| v.metric_label()).collect()) }
}

/// Implements [`LabelValue`] for enums that already carry `ALL` and `metric_label()` of their own (the sources'
/// and the core's outcome types, which know nothing about metrics).
macro_rules! delegate_label_value {
    ($($ty:ty => $all:expr),* $(,)?) => {$(
        impl LabelValue for $ty {
            const ALL: &'static [Self] = &$all;
            fn metric_label(self) -> &'static str {
                <$ty>::metric_label(self)
            }
        }
    )*};
}

delegate_label_value! {
    FrameOutcome => FrameOutcome::ALL,
    CaptureErrorKind => CaptureErrorKind::ALL,
    Side => Side::ALL,
    UnresolvedReason => UnresolvedReason::ALL,
    FetchKind => FetchKind::ALL,
    FetchResult => FetchResult::ALL,
}

/// Declares an exporter-side label enum with its strings, `ALL` and [`LabelValue`].
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl LabelValue for $name {
            const ALL: &'static [Self] = &[$($name::$variant),*];
            fn metric_label(self) -> &'static str {
                match self { $($name::$variant => $label),* }
            }
        }
    };
}

label_enum! {
    /// What became of one DNS response (`network_mapper_dns_responses_total{outcome}`), in the order decided.
    DnsOutcome {
        /// An edge was counted.
        Counted => "counted",
        /// Another copy of an answer already seen.
        Duplicate => "duplicate",
        /// The client is on another node, which counts it.
        OtherNode => "other_node",
        /// Not an answer that can make an edge (NXDOMAIN, no A/AAAA, a query).
        NotAnswer => "not_answer",
        /// An answer to a DNS server pod: a lookup it forwarded upstream, not an edge of its own.
        Forwarded => "forwarded",
        /// The client or the server did not resolve to a workload.
        Unresolved => "unresolved",
        /// The message could not be parsed.
        Malformed => "malformed",
        /// A cardinality cap refused a new edge.
        Refused => "refused",
    }
}

label_enum! {
    /// What became of one socket seen by a scan (`network_mapper_socket_connections_total{outcome}`).
    SocketOutcome {
        /// A new client-side connection, counted as an edge.
        Counted => "counted",
        /// A new client-side connection whose client is on another node.
        OtherNode => "other_node",
        /// A new client-side connection that did not resolve.
        Unresolved => "unresolved",
        /// A new client-side connection refused by a cardinality cap.
        Refused => "refused",
        /// A connection the SYN capture reported already.
        Duplicate => "duplicate",
        /// A DNS-over-TCP lookup: a connection to port 53 of a DNS server, whose answers count as DNS answers.
        DnsLookup => "dns_lookup",
        /// A client-side connection reported by an earlier scan.
        AlreadySeen => "already_seen",
        /// The server side of a connection (its client's node counts it).
        ServerSide => "server_side",
        /// A connection over loopback.
        Loopback => "loopback",
        /// A mesh proxy's connection (a relay's upstream, a tunnel, the proxy's socket re-originating inbound
        /// traffic): its application's intercepted connection counts instead (docs/counting.md).
        MeshProxy => "mesh_proxy",
        /// LISTEN, TIME_WAIT and every other state that is not ESTABLISHED.
        NotEstablished => "not_established",
        /// A table row that could not be parsed.
        Malformed => "malformed",
    }
}

label_enum! {
    /// What became of one client SYN (`network_mapper_syns_total{outcome}`).
    SynOutcome {
        /// A new connection, counted on its edge.
        Counted => "counted",
        /// Another copy, a retransmission, or a connection the socket scan reported already.
        Duplicate => "duplicate",
        /// A connection to port 53 of a DNS server (a DNS-over-TCP lookup).
        DnsLookup => "dns_lookup",
        /// A connection inside a pod or the node.
        Loopback => "loopback",
        /// A meshed pod's proxy connecting on its application's behalf, or anything to a mesh proxy's port: the
        /// application's intercepted connection counts instead (docs/counting.md).
        MeshProxy => "mesh_proxy",
        /// The client is on another node, which counts it.
        OtherNode => "other_node",
        /// The client or the server did not resolve (after the retries).
        Unresolved => "unresolved",
        /// A cardinality cap refused a new edge.
        Refused => "refused",
    }
}

label_enum! {
    /// How a full socket scan ended (`network_mapper_socket_scans_total{outcome}`).
    ScanOutcome {
        /// Every namespace was read (vanished processes aside).
        Ok => "ok",
        /// The scan failed as a whole (the proc root became unreadable).
        Error => "error",
    }
}

label_enum! {
    /// How a replacement of the capture's kernel filter went (`network_mapper_capture_filter_updates_total`).
    FilterOutcome {
        /// The kernel runs the new filter.
        Ok => "ok",
        /// It could not be compiled or attached; the previous filter stays.
        Error => "error",
    }
}

label_enum! {
    /// Why a scan skipped a process (`network_mapper_socket_processes_skipped_total{reason}`).
    SkipReason {
        /// It exited while being read.
        Vanished => "vanished",
        /// Its files could not be read (permissions).
        Unreadable => "unreadable",
    }
}

label_enum! {
    /// Why a new edge was refused (`network_mapper_edges_refused_total{reason}`).
    RefusedReason {
        /// `--max-edges` distinct edges exist already.
        MaxEdges => "max_edges",
        /// The client has `--max-external-names` names outside the cluster already.
        MaxExternalNames => "max_external_names",
        /// `--max-edges` distinct per-port connection series exist already (the edge itself still counts).
        MaxEdgeConnections => "max_edge_connections",
    }
}

label_enum! {
    /// The kinds of the inventory metrics (`network_mapper_inventory_*{kind}`): the watched kinds, the owners an
    /// inventory file holds, and the file itself.
    InventoryKind {
        /// Pods.
        Pod => "Pod",
        /// Services.
        Service => "Service",
        /// EndpointSlices.
        EndpointSlice => "EndpointSlice",
        /// ReplicaSets (watched, metadata only).
        ReplicaSet => "ReplicaSet",
        /// Jobs (watched, metadata only).
        Job => "Job",
        /// This node's Node object.
        Node => "Node",
        /// Owners read from an inventory file (any kind).
        Owner => "Owner",
        /// An inventory file as a whole.
        File => "File",
    }
}

impl From<Kind> for InventoryKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Pod => InventoryKind::Pod,
            Kind::Service => InventoryKind::Service,
            Kind::EndpointSlice => InventoryKind::EndpointSlice,
            Kind::ReplicaSet => InventoryKind::ReplicaSet,
            Kind::Job => InventoryKind::Job,
            Kind::Node => InventoryKind::Node,
        }
    }
}

label_enum! {
    /// Where an observation came from (`network_mapper_unresolved_total{source}`).
    ObservationSource {
        /// A DNS answer.
        Dns => "dns",
        /// A client SYN.
        Syn => "syn",
        /// A connection found by the socket scan.
        Socket => "socket",
    }
}

label_enum! {
    /// The exporter's sources, each with an up flag and the time of its last success
    /// (`network_mapper_source_up{source}`, `network_mapper_source_last_success_timestamp_seconds{source}`).
    SourceName {
        /// The packet capture (device or file).
        Capture => "capture",
        /// The socket scanner.
        Sockets => "sockets",
        /// The inventory (API watches or file).
        Inventory => "inventory",
    }
}

/// Declares a one-label label set over a [`LabelValue`] type.
macro_rules! one_label {
    ($(#[$meta:meta])* $name:ident, $label:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name<T>(pub T);

        impl<T: LabelValue> EncodeLabelSet for $name<T> {
            fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
                ($label, self.0.metric_label()).encode(encoder.encode_label())
            }
        }

        impl<T: LabelValue> DescribeLabels for $name<T> {
            fn labels() -> Vec<LabelSpec> {
                vec![fixed::<T>($label)]
            }
            fn every() -> Vec<Self> {
                T::ALL.iter().map(|&v| $name(v)).collect()
            }
        }
    };
}

one_label!(
    /// Labels `{outcome}`.
    Outcome,
    "outcome"
);
one_label!(
    /// Labels `{reason}`.
    ReasonLabel,
    "reason"
);
one_label!(
    /// Labels `{error}`.
    ErrorLabel,
    "error"
);
one_label!(
    /// Labels `{kind}`.
    KindLabel,
    "kind"
);
one_label!(
    /// Labels `{source}`.
    SourceLabel,
    "source"
);

/// Labels `{kind,result}` of fetches made on request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FetchLabels {
    /// What was fetched.
    pub kind: FetchKind,
    /// How it ended.
    pub result: FetchResult,
}

impl DescribeLabels for FetchLabels {
    fn labels() -> Vec<LabelSpec> {
        vec![fixed::<FetchKind>("kind"), fixed::<FetchResult>("result")]
    }
    fn every() -> Vec<Self> {
        let pairs = FetchKind::ALL.into_iter().flat_map(|kind| FetchResult::ALL.map(|result| (kind, result)));
        pairs.map(|(kind, result)| FetchLabels { kind, result }).collect()
    }
}

impl EncodeLabelSet for FetchLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        ("kind", self.kind.metric_label()).encode(encoder.encode_label())?;
        ("result", self.result.metric_label()).encode(encoder.encode_label())
    }
}

/// Labels `{source,side,reason}` of unresolved observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnresolvedLabels {
    /// Where the observation came from.
    pub source: ObservationSource,
    /// Which end did not resolve.
    pub side: Side,
    /// Why.
    pub reason: UnresolvedReason,
}

/// Fixed, but not zeroed: source × side × reason is 54 mostly-empty series.
impl DescribeLabels for UnresolvedLabels {
    fn labels() -> Vec<LabelSpec> {
        vec![fixed::<ObservationSource>("source"), fixed::<Side>("side"), fixed::<UnresolvedReason>("reason")]
    }
}

impl EncodeLabelSet for UnresolvedLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), fmt::Error> {
        ("source", self.source.metric_label()).encode(encoder.encode_label())?;
        ("side", self.side.metric_label()).encode(encoder.encode_label())?;
        ("reason", self.reason.metric_label()).encode(encoder.encode_label())
    }
}
