//! The signal sources: everything that reads the outside world. Each source owns its folder, reads one kind of
//! input, and reports through its own small types (observations, outcomes with `metric_label()`, stats); none of
//! them knows about metrics, HTTP or the other sources.
//!
//! - [`capture`]: DNS answers (and client SYNs) from libpcap, live or from a savefile.
//! - [`sockets`]: client-side TCP connections from `/proc/<pid>/net/tcp{,6}`.
//! - [`inventory`]: Kubernetes objects (from a file, or watched from the API) in a compact index.

pub mod capture;
pub mod inventory;
pub mod sockets;
