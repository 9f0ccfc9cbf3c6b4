//! DNS-over-TCP reassembly: turns the server→client segments of each flow into whole, length-prefix-stripped DNS
//! messages. Owns the per-flow state and its bounds.
//!
//! Only the answer direction is captured (the BPF selects source port 53), so a flow is one direction of one
//! connection. Sequence numbers decide what is new: a segment at or below the expected sequence number (a
//! retransmission, or the second copy of the same segment captured on device `any`) contributes only bytes not seen
//! yet; a gap (a lost segment, or capture started mid-message) throws the partial message away and restarts the flow
//! at this segment, assuming it starts a message. Memory is bounded by `max_flows` (least recently used evicted) and
//! `max_bytes_per_flow` (a message that would not fit drops the flow).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::message::DnsMessage;

/// Enough flows for the DNS-over-TCP fallbacks of a busy node (TCP is used only after a truncated UDP answer);
/// with the per-flow cap this bounds the worst case to 16 MiB.
pub const DEFAULT_MAX_FLOWS: usize = 256;
/// One DNS message of the largest size (65535) plus its 2-byte prefix: a flow never needs more than that buffered,
/// because complete messages are handed out as soon as they arrive.
pub const DEFAULT_MAX_BYTES_PER_FLOW: usize = 65_537;

/// Idle flows keep a small buffer; a buffer grown for a big message is given back once it is no longer needed.
const SHRINK_ABOVE: usize = 4096;

/// How far behind the flow a SYN may be and still count as a copy of the one that opened it.
const REPEATED_SYN_WINDOW: u32 = 1 << 20;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

pub(crate) struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: u8,
    pub payload: &'a [u8],
}

#[derive(Debug)]
struct Flow {
    next_seq: u32,
    /// Bytes of an unfinished message (prefix included); complete messages are never kept.
    pending: Vec<u8>,
    /// Bytes still to discard of a message that was too long to buffer.
    skip: usize,
    last_used: u64,
}

#[derive(Debug)]
pub(crate) struct TcpReassembler {
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    clock: u64,
    max_flows: usize,
    max_bytes_per_flow: usize,
}

impl Default for TcpReassembler {
    fn default() -> Self {
        TcpReassembler::new(DEFAULT_MAX_FLOWS, DEFAULT_MAX_BYTES_PER_FLOW)
    }
}

impl TcpReassembler {
    pub fn new(max_flows: usize, max_bytes_per_flow: usize) -> Self {
        TcpReassembler { flows: HashMap::new(), clock: 0, max_flows: max_flows.max(1), max_bytes_per_flow }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Feeds one segment; returns how many messages it completed.
    pub fn segment(&mut self, s: Segment<'_>, on_message: &mut dyn FnMut(DnsMessage<'_>)) -> usize {
        let key = (s.src, s.dst);
        if s.flags & RST != 0 {
            self.flows.remove(&key);
            return 0;
        }
        self.clock += 1;
        let data_seq = if s.flags & SYN != 0 { s.seq.wrapping_add(1) } else { s.seq };
        let mut emit = |bytes: &[u8]| on_message(DnsMessage { src: s.src, dst: s.dst, tcp: true, bytes });
        let emitted = match self.flows.get_mut(&key) {
            Some(flow) if s.flags & SYN == 0 || is_repeated_syn(flow, data_seq) => {
                flow.last_used = self.clock;
                let fresh = new_bytes(flow, data_seq, s.payload);
                append(flow, fresh, self.max_bytes_per_flow, &mut emit)
            }
            _ if s.payload.is_empty() && s.flags & (SYN | FIN) != SYN => 0,
            _ => self.start_flow(key, data_seq, s.payload, &mut emit),
        };
        if s.flags & FIN != 0 {
            self.flows.remove(&key);
        }
        emitted
    }

    /// A SYN, or data for a flow we hold no state for: assume the payload starts a message.
    fn start_flow(
        &mut self,
        key: (SocketAddr, SocketAddr),
        data_seq: u32,
        payload: &[u8],
        emit: &mut dyn FnMut(&[u8]),
    ) -> usize {
        if !self.flows.contains_key(&key) && self.flows.len() >= self.max_flows {
            self.evict_least_recently_used();
        }
        let flow =
            self.flows.entry(key).or_insert(Flow { next_seq: data_seq, pending: Vec::new(), skip: 0, last_used: 0 });
        flow.next_seq = data_seq;
        flow.pending.clear();
        flow.skip = 0;
        flow.last_used = self.clock;
        append(flow, payload, self.max_bytes_per_flow, emit)
    }

    /// O(flows), but only when a new flow arrives while the table is full; the table is small.
    fn evict_least_recently_used(&mut self) {
        let oldest = self.flows.iter().min_by_key(|(_, f)| f.last_used).map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.flows.remove(&key);
        }
    }
}

/// A second copy of the SYN-ACK (device `any`) must not reset a flow that already has data; a SYN far from the
/// flow's position is a new connection on a reused port pair.
fn is_repeated_syn(flow: &Flow, data_seq: u32) -> bool {
    flow.next_seq.wrapping_sub(data_seq) <= REPEATED_SYN_WINDOW
}

/// The part of `payload` (starting at `seq`) that the flow has not seen yet. A gap resets the flow to `seq`.
fn new_bytes<'p>(flow: &mut Flow, seq: u32, payload: &'p [u8]) -> &'p [u8] {
    // Serial-number arithmetic: sequence numbers wrap at 2^32.
    let behind = flow.next_seq.wrapping_sub(seq) as i32;
    if behind < 0 {
        flow.pending.clear();
        flow.skip = 0;
        flow.next_seq = seq;
        return payload;
    }
    let seen = behind as usize;
    payload.get(seen..).unwrap_or(&[])
}

/// Appends fresh in-order bytes, hands out every complete message and keeps the unfinished tail.
fn append(flow: &mut Flow, fresh: &[u8], max_bytes: usize, emit: &mut dyn FnMut(&[u8])) -> usize {
    flow.next_seq = flow.next_seq.wrapping_add(fresh.len() as u32);
    let skipped = fresh.len().min(flow.skip);
    flow.skip -= skipped;
    let fresh = &fresh[skipped..];
    if fresh.is_empty() {
        return 0;
    }
    let emitted = if flow.pending.is_empty() {
        // Fast path: messages are read straight out of the segment, only an unfinished tail is copied.
        let (emitted, rest) = split_messages(fresh, emit);
        flow.pending.extend_from_slice(rest);
        emitted
    } else {
        flow.pending.extend_from_slice(fresh);
        let (emitted, rest) = split_messages(&flow.pending, emit);
        let consumed = flow.pending.len() - rest.len();
        flow.pending.drain(..consumed);
        emitted
    };
    enforce_cap(flow, max_bytes);
    emitted
}

/// A message longer than the per-flow cap can never be buffered: skip exactly its bytes, so the flow stays in step
/// with the message boundaries, and give the buffer back.
fn enforce_cap(flow: &mut Flow, max_bytes: usize) {
    if let [hi, lo, ..] = flow.pending.as_slice() {
        let declared = 2 + usize::from(u16::from_be_bytes([*hi, *lo]));
        if declared > max_bytes {
            flow.skip = declared - flow.pending.len();
            flow.pending.clear();
        }
    }
    if flow.pending.capacity() > SHRINK_ABOVE.max(2 * flow.pending.len()) {
        flow.pending.shrink_to(flow.pending.len());
    }
}

/// Splits length-prefixed messages off the front of `bytes`; returns the count and the unfinished remainder.
fn split_messages<'b>(mut bytes: &'b [u8], emit: &mut dyn FnMut(&[u8])) -> (usize, &'b [u8]) {
    let mut emitted = 0;
    while let [hi, lo, rest @ ..] = bytes {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            // A zero-length DNS message does not exist: the stream is out of step, skip the prefix.
            bytes = rest;
            continue;
        }
        let Some(message) = rest.get(..len) else {
            break;
        };
        emit(message);
        emitted += 1;
        bytes = &rest[len..];
    }
    (emitted, bytes)
}
