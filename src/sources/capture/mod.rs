//! DNS answers and client SYNs from libpcap (a live device or a savefile). Owns everything between the packet source and a parsed,
//! de-duplicated DNS answer:
//!
//! - [`source`]: the only code that touches pcap: opens a device or a file, yields timestamped frames and kernel
//!   drop counters.
//! - [`frame`]: link layer → IP → UDP/TCP → whole DNS messages, including DNS-over-TCP reassembly. Pure.
//! - [`dns`]: DNS message → [`dns::Answer`] or the reason it is not one; a cheap duplicate hash. Pure.
//! - [`dedup`]: drops the copies of one answer seen on several interfaces. Pure, timestamps passed in.
//! - [`prefilter`]: decides non-answers, forwarded lookups, other nodes' answers and then duplicates from the
//!   header, the destination and the question, before the full parse.
//! - [`syn`]: a client SYN (the frame walk hands TCP headers without port 53 to it) → [`syn::Syn`]. Pure.
//! - [`node_filter`]: the kernel filter of a node's agent: answers to and SYNs from its own pods. Pure.
//! - `bpf`: replaces a live capture's kernel filter atomically (what `pcap_setfilter` cannot).
//!
//! The expected per-packet flow is: `source.next()` → `FrameDecoder::decode` → the pre-filter's checks (header,
//! destination, duplicate key; `Prefilter::check` runs them in order) → `dns::parse_response` (the expensive step,
//! done once per answer that can count).

mod bpf;
pub mod dedup;
pub mod dns;
pub mod frame;
mod message;
pub mod node_filter;
pub mod prefilter;
pub mod source;
pub mod syn;
mod tcp;

pub use bpf::FilterError;
pub use tcp::{DEFAULT_MAX_BYTES_PER_FLOW, DEFAULT_MAX_FLOWS};

use std::path::PathBuf;

/// Errors opening or reading a packet source. Frame and DNS problems are not errors: they are outcome values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot capture on interface {interface:?}: permission denied ({detail}). Capturing needs CAP_NET_RAW: \
         run as root, or add NET_RAW to securityContext.capabilities.add of the DaemonSet container"
    )]
    PermissionDenied { interface: String, detail: String },
    #[error("cannot open capture interface {interface:?}: {detail}")]
    OpenDevice { interface: String, detail: String },
    #[error("cannot read capture file {}: {detail}", path.display())]
    OpenFile { path: PathBuf, detail: String },
    #[error("capture file {} is truncated or corrupt: {detail}", path.display())]
    CorruptFile { path: PathBuf, detail: String },
    #[error(
        "{source_name}: unsupported link type {dlt} ({name}); supported: EN10MB (Ethernet), LINUX_SLL, LINUX_SLL2, \
         RAW, IPV4, IPV6"
    )]
    UnsupportedLinkType { source_name: String, dlt: i32, name: String },
    #[error("invalid BPF filter {filter:?}: {detail}")]
    BadFilter { filter: String, detail: String },
    #[error("reading packets from {source_name} failed: {detail}")]
    Read { source_name: String, detail: String },
}

/// The kinds of [`Error`], without their details: what the error metric counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    PermissionDenied,
    OpenDevice,
    OpenFile,
    CorruptFile,
    UnsupportedLinkType,
    BadFilter,
    Read,
}

impl ErrorKind {
    /// Every kind, for pre-creating metric series.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::PermissionDenied,
        ErrorKind::OpenDevice,
        ErrorKind::OpenFile,
        ErrorKind::CorruptFile,
        ErrorKind::UnsupportedLinkType,
        ErrorKind::BadFilter,
        ErrorKind::Read,
    ];

    /// Short stable label for an `error` metric label.
    pub fn metric_label(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::OpenDevice => "open_device",
            ErrorKind::OpenFile => "open_file",
            ErrorKind::CorruptFile => "corrupt_file",
            ErrorKind::UnsupportedLinkType => "unsupported_link_type",
            ErrorKind::BadFilter => "bad_filter",
            ErrorKind::Read => "read",
        }
    }
}

impl Error {
    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::OpenDevice { .. } => ErrorKind::OpenDevice,
            Error::OpenFile { .. } => ErrorKind::OpenFile,
            Error::CorruptFile { .. } => ErrorKind::CorruptFile,
            Error::UnsupportedLinkType { .. } => ErrorKind::UnsupportedLinkType,
            Error::BadFilter { .. } => ErrorKind::BadFilter,
            Error::Read { .. } => ErrorKind::Read,
        }
    }

    /// Short stable label for an `error` metric label.
    pub fn metric_label(&self) -> &'static str {
        self.kind().metric_label()
    }

    /// True when the user's input is at fault (a file, its link type, a filter): the binary exits 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::OpenFile { .. }
                | Error::CorruptFile { .. }
                | Error::UnsupportedLinkType { .. }
                | Error::BadFilter { .. }
        )
    }
}
