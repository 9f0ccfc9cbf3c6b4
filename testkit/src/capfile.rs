//! Capture files for tests, benchmarks and fixtures. Classic pcap is written by libpcap itself (the `pcap`
//! crate's savefile writer on a dead handle: microsecond timestamps, host byte order, snaplen 65,535), so the
//! files are what `tcpdump -w` writes. libpcap cannot write pcapng; [`Pcapng`] writes the minimal form by hand.

use std::io::{self, Write};
use std::path::Path;

/// Microseconds since the Unix epoch, as the product's `UnixMicros`.
pub type Micros = i64;

/// A classic pcap file of LINKTYPE `linktype`, written through libpcap.
pub struct Pcap {
    file: pcap::Savefile,
    // Kept alive for the savefile's lifetime (libpcap's dumper refers to the handle's settings).
    _dead: pcap::Capture<pcap::Dead>,
}

impl Pcap {
    pub fn create(path: &Path, linktype: u32) -> io::Result<Pcap> {
        // libpcap takes a DLT and writes its LINKTYPE; they differ only for RAW (LINKTYPE 101 is DLT_RAW, 12).
        let dlt = if linktype == 101 { 12 } else { linktype as i32 };
        let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(io::Error::other)?;
        let file = dead.savefile(path).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        Ok(Pcap { file, _dead: dead })
    }

    pub fn write(&mut self, at: Micros, frame: &[u8]) {
        self.write_record(at, frame.len() as u32, frame);
    }

    /// A record whose original length may exceed what was captured (a snap-length cut).
    pub fn write_record(&mut self, at: Micros, original_len: u32, captured: &[u8]) {
        let ts = libc::timeval { tv_sec: at.div_euclid(1_000_000), tv_usec: at.rem_euclid(1_000_000) };
        let header = pcap::PacketHeader { ts, caplen: captured.len() as u32, len: original_len };
        self.file.write(&pcap::Packet::new(&header, captured));
    }

    /// Flushes what was written; the file is complete once this returns (or the writer is dropped).
    pub fn finish(mut self) -> io::Result<()> {
        self.file.flush().map_err(io::Error::other)
    }
}

/// The bytes of a classic pcap file of LINKTYPE `linktype` whose records `write` adds (through a temporary file).
pub fn pcap_bytes(linktype: u32, write: impl FnOnce(&mut Pcap)) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("capture.pcap");
    let mut file = Pcap::create(&path, linktype).expect("libpcap opens a savefile");
    write(&mut file);
    file.finish().expect("libpcap flushes the savefile");
    std::fs::read(&path).expect("read the savefile back")
}

/// Writes a minimal pcapng file: one section, one interface of any LINKTYPE, enhanced packet blocks with
/// microsecond timestamps.
pub struct Pcapng<W: Write> {
    out: W,
}

impl<W: Write> Pcapng<W> {
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut section = Vec::new();
        section.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        section.extend_from_slice(&1u16.to_le_bytes());
        section.extend_from_slice(&0u16.to_le_bytes());
        section.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut out, 0x0A0D_0D0A, &section)?;
        let mut interface = Vec::new();
        interface.extend_from_slice(&(linktype as u16).to_le_bytes());
        interface.extend_from_slice(&0u16.to_le_bytes());
        interface.extend_from_slice(&65_535u32.to_le_bytes());
        write_block(&mut out, 1, &interface)?;
        Ok(Pcapng { out })
    }

    pub fn write(&mut self, at: Micros, frame: &[u8]) -> io::Result<()> {
        let ts = at as u64;
        let mut body = Vec::with_capacity(20 + frame.len() + 3);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(frame);
        body.resize(body.len().next_multiple_of(4), 0);
        write_block(&mut self.out, 6, &body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_block<W: Write>(out: &mut W, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}
