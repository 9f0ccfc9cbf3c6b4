//! network-mapper: a sidecar-free, node-level Prometheus exporter of "who calls whom" edges between Kubernetes
//! workloads, and the reducer that turns a PromQL snapshot of those edges into listings and access policy.
//!
//! # Layout
//!
//! Data flows from the sources on the left, through the pure core, to the metrics on the right:
//!
//! - [`capture`]: DNS answers from libpcap (live or a savefile) → DNS observations. Only `capture::source`
//!   touches pcap; frame and DNS decoding are pure functions of bytes.
//! - [`sockets`]: client-side TCP connections from `/proc/<pid>/net/tcp{,6}` → connection observations.
//! - [`inventory`]: Kubernetes objects (from a file, or the API) → a compact [`inventory::Inventory`] index.
//! - [`resolve`]: the pure core. Observation + inventory → an [`resolve::Edge`] or an unresolved reason.
//!   No I/O, no clock, no globals.
//! - [`pipeline`]: the per-observation path from bytes to counters (decode → de-duplicate → parse → resolve →
//!   count), shared by the capture and the socket scanner.
//! - [`metrics`]: the edge counter with its cardinality caps, and the self-metrics.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz` and `/` over hyper; [`web_config`] adds TLS and basic auth.
//! - [`exporter`]: wires the sources, the core and the server together for the `network-mapper` binary;
//!   [`config`] holds its flags.
//! - [`reduce`]: the `netmap-reduce` CLI core: snapshot → listing, ClientIntents, graphs.

pub mod capture;
pub mod config;
pub mod exporter;
pub mod inventory;
pub mod metrics;
pub mod pipeline;
pub mod reduce;
pub mod resolve;
pub mod server;
pub mod sockets;
pub mod web_config;

/// Wall-clock time of an observation, in microseconds since the Unix epoch. Sources stamp observations (pcap
/// gives each packet a timestamp); the pure core never reads a clock itself.
pub type UnixMicros = i64;
