//! Replacing a live capture's kernel filter without losing a packet (docs/capture.md, "The node filter").
//!
//! `pcap_setfilter` cannot do it: on Linux, libpcap first attaches a reject-everything filter, drains the socket,
//! and only then attaches the new program, so whatever arrives in between is lost; an agent that widens its
//! filter for a new pod would drop answers of every pod at each update. The kernel itself replaces a socket
//! filter atomically (`SO_ATTACH_FILTER` on a socket that has one), so the new program is attached directly.
//!
//! The program must be the one the kernel runs: on a cooked socket (device `any`: LINUX_SLL and SLL2) or a raw
//! IP device the kernel's filter sees the packet from its network header, which is what libpcap compiles for
//! `DLT_RAW`; on Ethernet it sees the whole frame (`DLT_EN10MB`). libpcap would rewrite a cooked program's
//! header offsets into the same thing. Other link types keep the filter they were opened with.
//!
//! libpcap's own idea of its filter stays the one it set at open, a superset of every node filter; it applies
//! that program in user space only to the ring blocks filled before its own `pcap_setfilter` returned.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::os::fd::RawFd;

use super::frame::LinkType;
use super::source::SNAPLEN;

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    len: c_uint,
    insns: *mut SockFilter,
}

/// One classic BPF instruction: libpcap's `struct bpf_insn` and the kernel's `struct sock_filter` alike.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

// libpcap is linked by the `pcap` crate; these are its stable C entry points.
unsafe extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut c_void;
    fn pcap_compile(p: *mut c_void, fp: *mut BpfProgram, s: *const c_char, optimize: c_int, netmask: u32) -> c_int;
    fn pcap_freecode(fp: *mut BpfProgram);
    fn pcap_geterr(p: *mut c_void) -> *const c_char;
    fn pcap_close(p: *mut c_void);
}

const DLT_EN10MB: c_int = 1;
/// `DLT_RAW` as Linux numbers it.
const DLT_RAW: c_int = 12;
/// The netmask libpcap takes when none is known (`PCAP_NETMASK_UNKNOWN`).
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// Why a filter could not replace the kernel's.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The link type's kernel view is not one libpcap compiles for.
    #[error("a filter for link type {0:?} cannot be replaced while capturing")]
    LinkType(LinkType),
    /// libpcap refused the expression.
    #[error("cannot compile {filter:?}: {detail}")]
    Compile { filter: String, detail: String },
    /// The kernel refused the program (too long, for one).
    #[error("the kernel refused the filter ({0})")]
    Attach(std::io::Error),
}

/// The DLT whose compiled programs the kernel runs as they are on a socket of `link`.
fn kernel_dlt(link: LinkType) -> Result<c_int, FilterError> {
    match link {
        LinkType::LinuxSll | LinkType::LinuxSll2 | LinkType::Raw => Ok(DLT_RAW),
        LinkType::Ethernet => Ok(DLT_EN10MB),
        other => Err(FilterError::LinkType(other)),
    }
}

/// Compiles `filter` for the kernel's view of `link`.
fn compile(link: LinkType, filter: &str) -> Result<Vec<SockFilter>, FilterError> {
    let dlt = kernel_dlt(link)?;
    let failed = |detail: String| FilterError::Compile { filter: filter.to_owned(), detail };
    let expression = CString::new(filter).map_err(|_| failed("the filter holds a NUL byte".into()))?;
    // SAFETY: pcap_open_dead has no preconditions; a null result is handled.
    let dead = unsafe { pcap_open_dead(dlt, SNAPLEN) };
    if dead.is_null() {
        return Err(failed("libpcap could not make a handle to compile with".into()));
    }
    let mut program = BpfProgram { len: 0, insns: std::ptr::null_mut() };
    // SAFETY: `dead` is a live handle, `program` a valid out-parameter, `expression` a NUL-terminated string.
    let compiled = unsafe { pcap_compile(dead, &mut program, expression.as_ptr(), 1, NETMASK_UNKNOWN) };
    let result = if compiled == 0 {
        // SAFETY: on success libpcap filled `program` with `len` instructions at `insns`.
        let instructions = unsafe { std::slice::from_raw_parts(program.insns, program.len as usize) }.to_vec();
        // SAFETY: `program` was filled by pcap_compile and is freed once.
        unsafe { pcap_freecode(&mut program) };
        Ok(instructions)
    } else {
        // SAFETY: `dead` is live; pcap_geterr returns its NUL-terminated error buffer.
        let detail = unsafe { CStr::from_ptr(pcap_geterr(dead)) }.to_string_lossy().into_owned();
        Err(failed(detail))
    };
    // SAFETY: `dead` is live and closed once.
    unsafe { pcap_close(dead) };
    result
}

/// Replaces the kernel filter of the capture socket `fd` (of link type `link`) with `filter`, atomically.
pub(super) fn replace(fd: RawFd, link: LinkType, filter: &str) -> Result<(), FilterError> {
    let program = compile(link, filter)?;
    let len = u16::try_from(program.len()).map_err(|_| FilterError::Attach(std::io::Error::other("too long")))?;
    let fprog = SockFprog { len, filter: program.as_ptr() };
    // SAFETY: `fprog` points at `len` instructions that outlive the call; the kernel copies them.
    let attached = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const SockFprog).cast(),
            size_of::<SockFprog>() as libc::socklen_t,
        )
    };
    if attached != 0 {
        return Err(FilterError::Attach(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooked_and_raw_links_compile_for_the_network_header_and_others_are_refused() {
        let program = compile(LinkType::LinuxSll2, "udp src port 53 and dst host 10.244.1.5").unwrap();
        // DLT_RAW code starts by reading the IP version nibble at offset 0, where Ethernet code reads the
        // ethertype at offset 12.
        assert_eq!((program[0].code, program[0].k), (0x30, 0), "ldb [0]");
        let ethernet = compile(LinkType::Ethernet, "udp src port 53").unwrap();
        assert_eq!((ethernet[0].code, ethernet[0].k), (0x28, 12), "ldh [12]");
        assert!(matches!(compile(LinkType::Ipv4, "udp"), Err(FilterError::LinkType(LinkType::Ipv4))));
        let error = compile(LinkType::Raw, "udp src port banana").unwrap_err().to_string();
        assert!(error.contains("cannot compile") && error.contains("banana"), "{error}");
    }
}
