//! The Kubernetes inventory: the objects identity resolution needs (Pods, Services, EndpointSlices, and the
//! owners that make up owner chains), projected into compact records and indexed for lookups.
//!
//! `objects` projects API objects, `index` holds them (with `owners` keeping owner-chain roots current, on the
//! slots and shared strings of `table`), `file` loads `--inventory-file`. A live API source feeds
//! the same index, so the resolver never knows where its data came from.

mod fetch_queue;
mod file;
mod index;
mod kube;
pub mod naming;
mod objects;
mod owners;
mod table;

use std::path::PathBuf;

pub use self::kube::{
    Error as KubeError, KINDS, Kind, Plan, Started, WatchObserver, WatchStatus, client, client_config, spawn,
};
pub use fetch_queue::{FetchKind, FetchQueue, FetchRequests, FetchResult, Requested};
pub use file::{load_file, parse_inventory};
pub use index::{Counts, Endpoint, Fetching, Inventory, PodEntry, ServiceEntry, Unfetched, Wanted};
pub use objects::{
    DNS_PORT, EndpointRecord, NodeRecord, OwnerRecord, OwnerRef, PodRecord, ServicePort, ServiceRecord, SlicePort,
    SliceRecord, TargetPort,
};

/// Inventory errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory file could not be read.
    #[error("cannot read inventory file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The inventory file is not a valid Kubernetes List.
    #[error("invalid inventory file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

impl Error {
    /// A short stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Invalid { .. } => "invalid",
        }
    }

    /// Whether the error is the user's input (exit code 2) rather than the environment.
    pub fn is_bad_input(&self) -> bool {
        true
    }
}
