//! Packet sources: a live libpcap capture or a pcap/pcapng savefile behind one blocking trait. The only module that
//! imports `pcap`; it turns pcap's errors into [`Error`] values that say what to do, and its wrapping u32 statistics
//! into monotonic counters.
//!
//! The trait is blocking on purpose: the exporter reads it on a dedicated thread (one wakeup per packet would cost
//! more in async), and a live source returns [`Next::Idle`] every 100 ms without traffic so that thread can notice
//! shutdown.

use std::path::{Path, PathBuf};

use pcap::{Activated, Active, Capture, Linktype, Offline};

use super::Error;
use super::frame::LinkType;
use crate::UnixMicros;

/// Answers only: the BPF runs in the kernel, so queries and all other traffic never reach user space.
pub const DEFAULT_FILTER: &str = "udp src port 53 or tcp src port 53";

/// Whole frames: a DNS-over-TCP segment can be close to the MTU, and a cut one is useless.
const SNAPLEN: i32 = 65_535;
/// 8 MiB of kernel ring absorbs bursts of answers while the reading thread is busy.
const BUFFER_BYTES: i32 = 8 << 20;
/// How long a live read waits before reporting [`Next::Idle`].
const READ_TIMEOUT_MS: i32 = 100;

/// One captured frame, borrowed from libpcap's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub at: UnixMicros,
    pub data: &'a [u8],
}

#[derive(Debug)]
pub enum Next<'a> {
    Packet(Packet<'a>),
    /// A live capture saw no packet within the read timeout: a chance to check for shutdown.
    Idle,
    /// A file has no more packets.
    End,
}

/// Kernel counters since the source was opened, as monotonic u64 (pcap's own are u32 and wrap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub received: u64,
    /// Packets lost because the ring buffer was full.
    pub dropped: u64,
}

pub trait PacketSource: Send {
    fn link_type(&self) -> LinkType;
    fn next(&mut self) -> Result<Next<'_>, Error>;
    /// `None` for files, or when the kernel refuses to say.
    fn kernel_stats(&mut self) -> Option<KernelStats>;
    /// For logs: "interface any (LINUX_SLL)" or "file /path/x.pcap (EN10MB)".
    fn describe(&self) -> String;
}

/// Opens a live capture in immediate mode (without it packets arrive in bursts) with the given BPF filter.
pub fn open_live(interface: &str, bpf_filter: &str) -> Result<Box<dyn PacketSource>, Error> {
    let device_error = |e: pcap::Error| live_open_error(interface, e);
    let mut capture = Capture::from_device(interface)
        .map_err(device_error)?
        .immediate_mode(true)
        .snaplen(SNAPLEN)
        .buffer_size(BUFFER_BYTES)
        .promisc(false)
        .timeout(READ_TIMEOUT_MS)
        .open()
        .map_err(device_error)?;
    let describe = format!("interface {interface}");
    let link = supported_link_type(&capture, &describe)?;
    apply_filter(&mut capture, bpf_filter)?;
    Ok(Box::new(LiveSource { capture, link, describe, stats: StatsCounter::default() }))
}

/// Opens a pcap or pcapng file. A filter, if given, is applied as it would be on a live capture.
pub fn open_file(path: &Path, bpf_filter: Option<&str>) -> Result<Box<dyn PacketSource>, Error> {
    let mut capture =
        Capture::from_file(path).map_err(|e| Error::OpenFile { path: path.to_path_buf(), detail: pcap_detail(e) })?;
    let describe = format!("file {}", path.display());
    let link = supported_link_type(&capture, &describe)?;
    if let Some(filter) = bpf_filter {
        apply_filter(&mut capture, filter)?;
    }
    Ok(Box::new(FileSource { capture, link, path: path.to_path_buf() }))
}

struct LiveSource {
    capture: Capture<Active>,
    link: LinkType,
    describe: String,
    stats: StatsCounter,
}

impl PacketSource for LiveSource {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> Result<Next<'_>, Error> {
        match self.capture.next_packet() {
            Ok(packet) => Ok(Next::Packet(Packet {
                at: micros(packet.header.ts.tv_sec, packet.header.ts.tv_usec),
                data: packet.data,
            })),
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(e) => Err(Error::Read { source_name: self.describe.clone(), detail: pcap_detail(e) }),
        }
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        let stat = self.capture.stats().ok()?;
        Some(self.stats.update(stat.received, stat.dropped))
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.describe, self.link.name())
    }
}

struct FileSource {
    capture: Capture<Offline>,
    link: LinkType,
    path: PathBuf,
}

impl PacketSource for FileSource {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> Result<Next<'_>, Error> {
        match self.capture.next_packet() {
            Ok(packet) => Ok(Next::Packet(Packet {
                at: micros(packet.header.ts.tv_sec, packet.header.ts.tv_usec),
                data: packet.data,
            })),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => Err(Error::CorruptFile { path: self.path.clone(), detail: pcap_detail(e) }),
        }
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        None
    }

    fn describe(&self) -> String {
        format!("file {} ({})", self.path.display(), self.link.name())
    }
}

/// Accumulates pcap's wrapping u32 counters into u64 totals.
#[derive(Debug, Default)]
struct StatsCounter {
    last_received: u32,
    last_dropped: u32,
    total: KernelStats,
}

impl StatsCounter {
    fn update(&mut self, received: u32, dropped: u32) -> KernelStats {
        self.total.received += u64::from(received.wrapping_sub(self.last_received));
        self.total.dropped += u64::from(dropped.wrapping_sub(self.last_dropped));
        self.last_received = received;
        self.last_dropped = dropped;
        self.total
    }
}

fn supported_link_type<T: Activated + ?Sized>(capture: &Capture<T>, describe: &str) -> Result<LinkType, Error> {
    let dlt = capture.get_datalink();
    LinkType::from_dlt(dlt.0).ok_or_else(|| Error::UnsupportedLinkType {
        source_name: describe.to_string(),
        dlt: dlt.0,
        name: link_type_name(dlt),
    })
}

fn link_type_name(dlt: Linktype) -> String {
    dlt.get_name().unwrap_or_else(|_| "unknown".to_string())
}

fn apply_filter<T: Activated + ?Sized>(capture: &mut Capture<T>, filter: &str) -> Result<(), Error> {
    capture.filter(filter, true).map_err(|e| Error::BadFilter { filter: filter.to_string(), detail: pcap_detail(e) })
}

fn live_open_error(interface: &str, e: pcap::Error) -> Error {
    let detail = pcap_detail(e);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        Error::PermissionDenied { interface: interface.to_string(), detail }
    } else {
        Error::OpenDevice { interface: interface.to_string(), detail }
    }
}

fn pcap_detail(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(message) => message,
        other => other.to_string(),
    }
}

/// `timeval` field widths differ between platforms, hence the conversions.
fn micros(seconds: impl Into<i64>, microseconds: impl Into<i64>) -> UnixMicros {
    seconds.into() * 1_000_000 + microseconds.into()
}
