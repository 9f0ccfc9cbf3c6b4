//! The `network-mapper` runtime: wires the sources to the pure core and serves the result.
//!
//! - [`config`]: the command line (every flag with its `NETMAP_*` fallback).
//! - [`pipeline`]: the per-observation path (decode → pre-filter and de-duplicate → parse → resolve → count).
//! - [`connections`]: one connection counted once across SYN copies, retransmissions and the socket scan.
//! - [`metrics`]: the edge counters with their cardinality caps, and the self-metrics. Only this layer knows them.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz` and `/` over hyper; [`web_config`] adds TLS and basic auth
//!   (`--web-config-file`).
//! - [`run`]: start-up, the capture thread, the scanner and inventory tasks, shutdown.

pub mod config;
pub mod connections;
pub mod metrics;
pub mod node_filter;
pub mod pipeline;
pub mod run;
pub mod server;
pub mod web_config;

pub use run::{
    Error, InventorySource, Packets, Reopen, Settings, SocketScan, Sources, now_micros, print_metrics, run,
    run_with_args,
};
