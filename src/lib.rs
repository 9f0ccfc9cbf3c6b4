//! network-mapper: a sidecar-free, node-level Prometheus exporter of "who calls whom" edges between Kubernetes
//! workloads, and the reducer that turns a PromQL snapshot of those edges into listings and access policy.
//!
//! # Layout
//!
//! Data flows one way: from the sources, through the pure core, to the exporter runtime. The reducer stands apart.
//! No module imports from a layer above its own (`tests/layering.rs` checks it).
//!
//! - [`sources`]: everything that reads the outside world, one folder each:
//!   [`sources::capture`] (DNS answers and SYNs from libpcap), [`sources::sockets`] (client-side TCP connections
//!   from `/proc`), [`sources::inventory`] (Kubernetes objects from a file or the API, in a compact index).
//! - [`resolve`]: the pure core. Observation + inventory → an [`resolve::Edge`] or an unresolved reason.
//!   No I/O, no clock, no globals.
//! - [`exporter`]: the `network-mapper` runtime: the per-observation pipeline, the metrics (the only layer that
//!   knows them), the HTTP server, the flags, and `run`, which wires them together.
//! - [`reduce`]: the `netmap-reduce` CLI core: snapshot → listing, ClientIntents, graphs, policies.
//! - [`mesh`]: shared vocabulary, like [`UnixMicros`]: service meshes as a node sees them (ports, annotations,
//!   the application-call rule); every layer may use it.

pub mod exporter;
mod ipnet;
pub mod mesh;
pub mod reduce;
pub mod resolve;
pub mod sources;

pub use ipnet::{IpNet, PRIVATE_NETWORKS, ParseIpNetError};

/// Wall-clock time of an observation, in microseconds since the Unix epoch. Sources stamp observations (pcap
/// gives each packet a timestamp); the pure core never reads a clock itself.
pub type UnixMicros = i64;
