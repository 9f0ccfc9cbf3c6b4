//! Packet sources: a live libpcap capture or a pcap/pcapng savefile behind one blocking trait. The only module that
//! imports `pcap`; it turns pcap's errors into [`Error`] values that say what to do, and its wrapping u32 statistics
//! into monotonic counters.
//!
//! The trait is blocking on purpose: the exporter reads it on a dedicated thread. A live source returns
//! [`Next::Idle`] at once when its [`Waker`] is woken (shutdown, readiness, a change to the node's pods), and
//! otherwise after at most [`IDLE_WAIT_MS`] without traffic, so the thread wakes up only when there is something to
//! do.
//!
//! A live capture takes packets from the kernel in batches ([`Delivery::Batched`], see `docs/capture.md`): with
//! immediate mode off, libpcap 1.10 sets up a TPACKET_V3 ring of 256 KiB blocks, and the kernel hands a block over
//! when it is full or [`BLOCK_TIMEOUT_MS`] after its first packet, so the reader wakes once per block instead of
//! once per packet. Within a block, `next_packet` makes no system call. libpcap's own wait cannot tell the reader
//! about an idle interface: with TPACKET_V3 it blocks in `poll(2)` with no timeout, because the kernel retires only
//! blocks that hold packets. So the capture is non-blocking and waits in our own `poll(2)`, on the ring and on its
//! waker, with a timeout, once the ring is drained.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pcap::{Activated, Active, Capture, Linktype, Offline};

use super::frame::LinkType;
use super::{Error, FilterError, bpf};
use crate::UnixMicros;

/// Answers only: the BPF runs in the kernel, so queries and all other traffic never reach user space.
pub const DEFAULT_FILTER: &str = "udp src port 53 or tcp src port 53";

/// Keeps every DNS answer up to ~3,900 bytes whole (a cluster's answers are far smaller; EDNS buffers are 1,232
/// bytes by default); a longer one is cut and counted as `truncated`. In immediate mode (TPACKET_V2) each ring slot
/// is as large as the snaplen, so it also fits a slot in one 4 KiB page; with 65,535 an 8 MiB ring held 128 frames
/// and a burst of 1,500 answers lost 1,372 of them (`tests/capture_live.rs`).
pub const SNAPLEN: i32 = 4_000;
/// The burst budget: this many frames, each as long as the snaplen (the worst case), fit in the ring while the
/// reader is busy. Real answers are ~100–500 bytes, so the same ring holds 10–40 times as many.
pub const BURST_BUDGET_FRAMES: usize = 4_000;
/// libpcap 1.10's TPACKET_V3 block: it asks for "frames" of its maximum snaplen (262,144 bytes), one per block, and
/// rounds the buffer size up to whole blocks.
pub const RING_BLOCK_BYTES: usize = 256 << 10;
/// The kernel's per-frame cost in a TPACKET_V3 block, bounded from above: the 48-byte `tpacket3_hdr` and the
/// 20-byte `sockaddr_ll`, aligned to 16, with libpcap's 4-byte VLAN reserve and the frame's 8-byte alignment.
const FRAME_OVERHEAD_BYTES: usize = 128;
/// The block descriptor at the head of every block.
const BLOCK_HEADER_BYTES: usize = 48;
/// Worst-case frames per block, and the ring that holds [`BURST_BUDGET_FRAMES`] of them: 63 per block, 64 blocks,
/// 16 MiB.
pub const RING_BLOCKS: usize =
    BURST_BUDGET_FRAMES.div_ceil((RING_BLOCK_BYTES - BLOCK_HEADER_BYTES) / (SNAPLEN as usize + FRAME_OVERHEAD_BYTES));
/// The ring's size in bytes, as passed to `pcap_set_buffer_size`.
pub const RING_BYTES: usize = RING_BLOCKS * RING_BLOCK_BYTES;
/// How long the kernel keeps a block that holds packets before handing it over although it is not full: the
/// latency of a quiet node's counters (a scrape interval is seconds), the reader's wakeups while answers trickle in
/// (two a second), and (times [`RING_BLOCKS`]) the shortest stall the ring survives then (64 × 0.5 s = 32 s; a
/// busier node fills blocks and gets the byte budget instead).
pub const BLOCK_TIMEOUT_MS: i32 = 500;
/// How long a live read waits in `poll(2)` for a block or its [`Waker`] before reporting [`Next::Idle`]: how often
/// an idle reader wakes up to report its kernel counters and retry waiting observations.
pub const IDLE_WAIT_MS: i32 = 1_000;

/// How the kernel hands packets to the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// TPACKET_V3: a block of packets at a time, when full or after [`BLOCK_TIMEOUT_MS`]. The exporter's mode.
    #[default]
    Batched,
    /// libpcap's immediate mode (TPACKET_V2): every packet wakes the reader. Kept to compare in benchmarks.
    Immediate,
}

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
    /// Replaces the kernel filter of a live capture without losing a packet (`bpf`). A file keeps its filter.
    fn replace_filter(&mut self, _filter: &str) -> Result<(), FilterError> {
        Ok(())
    }
    /// Whether [`PacketSource::replace_filter`] changes what is captured (a live device does).
    fn filters_live(&self) -> bool {
        false
    }
    /// Makes `waker` end a live source's wait for packets. A file never waits.
    fn wake_with(&mut self, _waker: Waker) {}
}

/// Ends a live source's wait for packets from another thread ([`PacketSource::wake_with`]): its next read returns
/// [`Next::Idle`] at once, so the reader acts on what changed (shutdown, the node's pods) without waking up
/// periodically to look. An eventfd; waking an awake source costs a write.
#[derive(Clone, Debug)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd has no memory preconditions; a negative result is the error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Waker(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Ends the source's current or next wait. A counter already at its maximum fails the write: it is awake.
    pub fn wake(&self) {
        // SAFETY: writes 8 bytes from a live u64 to the eventfd.
        let _ = unsafe { libc::eventfd_write(self.fd(), 1) };
    }

    /// Takes the wake-up, so the next wait waits again.
    fn clear(&self) {
        let mut value: libc::eventfd_t = 0;
        // SAFETY: reads 8 bytes into a live u64; a counter at zero fails with EAGAIN (non-blocking), harmlessly.
        let _ = unsafe { libc::eventfd_read(self.fd(), &mut value) };
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Opens a live capture on `interface` with the given BPF filter, in [`Delivery::Batched`] mode.
pub fn open_live(interface: &str, bpf_filter: &str) -> Result<Box<dyn PacketSource>, Error> {
    open_live_with(interface, bpf_filter, Delivery::Batched)
}

/// Opens a live capture with an explicit [`Delivery`] mode.
pub fn open_live_with(interface: &str, bpf_filter: &str, delivery: Delivery) -> Result<Box<dyn PacketSource>, Error> {
    let device_error = |e: pcap::Error| live_open_error(interface, e);
    let inactive = Capture::from_device(interface).map_err(device_error)?.snaplen(SNAPLEN).promisc(false);
    let inactive = match delivery {
        // The timeout is the block retire timeout of the TPACKET_V3 ring (`tp_retire_blk_tov`).
        Delivery::Batched => inactive.immediate_mode(false).buffer_size(RING_BYTES as i32).timeout(BLOCK_TIMEOUT_MS),
        // The same bytes as before batching: 4,096 slots of one page each.
        Delivery::Immediate => inactive.immediate_mode(true).buffer_size(16 << 20).timeout(IDLE_WAIT_MS),
    };
    let mut capture = inactive.open().map_err(device_error)?;
    let describe = format!("interface {interface}");
    let link = supported_link_type(&capture, &describe)?;
    apply_filter(&mut capture, bpf_filter)?;
    let capture = capture.setnonblock().map_err(device_error)?;
    let stats = StatsCounter::default();
    Ok(Box::new(LiveSource { capture, link, describe, drained: false, stats, waker: None }))
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
    /// The last read found the ring empty: wait in poll(2) before reading again.
    drained: bool,
    stats: StatsCounter,
    waker: Option<Waker>,
}

impl PacketSource for LiveSource {
    fn link_type(&self) -> LinkType {
        self.link
    }

    fn next(&mut self) -> Result<Next<'_>, Error> {
        if self.drained {
            match wait(self.capture.as_raw_fd(), self.waker.as_ref(), IDLE_WAIT_MS).map_err(|e| self.read_error(e))? {
                Wait::Readable => self.drained = false,
                Wait::Woken | Wait::TimedOut => return Ok(Next::Idle),
            }
        }
        match self.capture.next_packet() {
            Ok(packet) => Ok(Next::Packet(Packet {
                at: micros(packet.header.ts.tv_sec, packet.header.ts.tv_usec),
                data: packet.data,
            })),
            // Non-blocking mode reports an empty ring (no block handed over yet) as a timeout.
            Err(pcap::Error::TimeoutExpired) => {
                self.drained = true;
                Ok(Next::Idle)
            }
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

    fn replace_filter(&mut self, filter: &str) -> Result<(), FilterError> {
        bpf::replace(self.capture.as_raw_fd(), self.link, filter)
    }

    fn filters_live(&self) -> bool {
        true
    }

    fn wake_with(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }
}

impl LiveSource {
    fn read_error(&self, e: io::Error) -> Error {
        Error::Read { source_name: self.describe.clone(), detail: e.to_string() }
    }
}

/// How a wait for packets ended.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    Readable,
    /// The waker was woken (and is cleared).
    Woken,
    /// The timeout passed, or a signal interrupted the wait.
    TimedOut,
}

/// Waits until `fd` is readable, `waker` is woken or `timeout_ms` passes.
fn wait(fd: RawFd, waker: Option<&Waker>, timeout_ms: i32) -> Result<Wait, io::Error> {
    let poll_fd = |fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let mut fds = [poll_fd(fd), poll_fd(waker.map_or(-1, Waker::fd))];
    // SAFETY: two valid pollfds, owned by this frame, and their count (poll ignores a negative fd).
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match ready {
        n if n > 0 => {
            if fds[1].revents != 0 {
                waker.inspect(|w| w.clear());
                return Ok(Wait::Woken);
            }
            Ok(Wait::Readable)
        }
        0 => Ok(Wait::TimedOut),
        _ => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(Wait::TimedOut),
            e => Err(e),
        },
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

/// libpcap 1.10 has no names for the private-use DLTs 147–162, which are what odd captures usually carry.
fn link_type_name(dlt: Linktype) -> String {
    match (dlt.get_name(), dlt.0) {
        (Ok(name), _) => name,
        (Err(_), user @ 147..=162) => format!("USER{}", user - 147),
        (Err(_), _) => "unknown".to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_holds_the_burst_budget_of_snaplen_long_frames() {
        let per_block = (RING_BLOCK_BYTES - BLOCK_HEADER_BYTES) / (SNAPLEN as usize + FRAME_OVERHEAD_BYTES);
        assert_eq!((per_block, RING_BLOCKS, RING_BYTES), (63, 64, 16 << 20));
        assert!(RING_BLOCKS * per_block >= BURST_BUDGET_FRAMES);
    }

    #[test]
    fn kernel_counters_stay_monotonic_across_the_u32_wrap() {
        let mut stats = StatsCounter::default();
        assert_eq!(stats.update(10, 1), KernelStats { received: 10, dropped: 1 });
        assert_eq!(stats.update(u32::MAX - 5, 2).received, u64::from(u32::MAX - 5));
        let wrapped = stats.update(4, 3);
        assert_eq!(wrapped.received, u64::from(u32::MAX) + 5);
        assert_eq!(wrapped.dropped, 3);
    }

    #[test]
    fn permission_errors_from_libpcap_name_the_capability() {
        let eperm = pcap::Error::PcapError("socket: Operation not permitted".into());
        let err = live_open_error("any", eperm);
        assert!(matches!(err, Error::PermissionDenied { .. }));
        assert!(!err.is_bad_input());
        let other = live_open_error("eth9", pcap::Error::PcapError("No such device exists".into()));
        assert!(matches!(other, Error::OpenDevice { .. }));
        assert!(other.to_string().contains("eth9"));
    }

    #[test]
    fn private_use_link_types_get_a_name() {
        assert_eq!(link_type_name(Linktype(147)), "USER0");
        assert_eq!(link_type_name(Linktype(1)), "EN10MB");
    }
}
