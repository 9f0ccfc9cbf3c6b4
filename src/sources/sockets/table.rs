//! Parser for the kernel's `net/tcp` and `net/tcp6` tables. It takes bytes and never touches a file.
//!
//! Hand-written rather than `procfs::net::TcpNetEntries` for two reasons:
//! - speed: it allocates nothing per row; `benches/sockets.rs` compares the two.
//! - robustness: procfs rejects the whole table when one row has a state byte it does not know. Here an unknown
//!   state is kept as a raw byte, and a malformed row is reported on its own while the other rows survive.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP states as the kernel prints them in the `st` column (`include/net/tcp_states.h`).
pub mod state {
    pub const ESTABLISHED: u8 = 0x01;
    pub const SYN_SENT: u8 = 0x02;
    pub const TIME_WAIT: u8 = 0x06;
    pub const LISTEN: u8 = 0x0A;
}

/// Which table the bytes come from: `net/tcp` holds IPv4 sockets, `net/tcp6` IPv6 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One socket row. Addresses are canonical: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack
/// socket shows an IPv4 peer in `tcp6`) is already turned into IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Raw `st` byte; see [`state`].
    pub state: u8,
    /// Socket inode; 0 for sockets no longer owned by a file (e.g. orphaned while closing).
    pub inode: u64,
    /// The socket's owner (the `uid` column): tells a mesh proxy's sockets from its pod's application's.
    pub uid: u32,
}

/// A row the parser could not read. Only that row is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct MalformedRow {
    /// 1-based line number in the table, the header being line 1.
    pub line: usize,
    pub what: &'static str,
}

/// Iterates over the rows of a table. The first line (the column header) is skipped, as are blank lines.
pub fn rows(table: &[u8], family: Family) -> Rows<'_> {
    let (_header, rest) = split_line(table);
    Rows { rest, line: 1, family }
}

/// Iterator returned by [`rows`].
pub struct Rows<'a> {
    rest: &'a [u8],
    line: usize,
    family: Family,
}

impl Iterator for Rows<'_> {
    type Item = Result<SocketRow, MalformedRow>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (text, rest) = split_line(self.rest);
            self.rest = rest;
            self.line += 1;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line;
            return Some(parse_row(text, self.family).map_err(|what| MalformedRow { line, what }));
        }
        None
    }
}

fn split_line(text: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', text) {
        Some(end) => (&text[..end], &text[end + 1..]),
        None => (text, &[]),
    }
}

/// Parses one row: `sl local remote st tx:rx tr:when retrnsmt uid timeout inode ...`. Columns after the
/// inode are never looked at.
pub fn parse_row(mut text: &[u8], family: Family) -> Result<SocketRow, &'static str> {
    let mut next = |what| next_field(&mut text).ok_or(what);
    next("missing slot number")?;
    let local = parse_endpoint(next("missing local address")?, family).ok_or("bad local address")?;
    let remote = parse_endpoint(next("missing remote address")?, family).ok_or("bad remote address")?;
    let state = next("missing state")?;
    let state = match hex(state) {
        Some(s) if state.len() == 2 => s as u8,
        _ => return Err("bad state"),
    };
    for what in ["missing queues", "missing timer", "missing retransmits"] {
        next(what)?;
    }
    let uid = decimal(next("missing uid")?).and_then(|uid| u32::try_from(uid).ok()).ok_or("bad uid")?;
    next("missing timeout")?;
    let inode = decimal(next("missing inode")?).ok_or("bad inode")?;
    Ok(SocketRow { local, remote, state, inode, uid })
}

/// Splits the next whitespace-separated field off the front of `text`.
fn next_field<'a>(text: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &text[start..];
    let end = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
    let (field, rest) = rest.split_at(end);
    *text = rest;
    Some(field)
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + `:port` (IPv6).
///
/// The kernel prints each 32-bit word of the address with `%08X` of the in-memory (network order) value read
/// as a native integer, so the native byte order of the parsed word gives back the address bytes. The tables are
/// always read on the machine that wrote them, hence `to_ne_bytes`.
fn parse_endpoint(field: &[u8], family: Family) -> Option<SocketAddr> {
    let colon = field.iter().position(|&b| b == b':')?;
    let (addr, port) = (&field[..colon], &field[colon + 1..]);
    if port.len() != 4 {
        return None;
    }
    let port = hex(port)? as u16;
    let ip = match family {
        Family::V4 if addr.len() == 8 => IpAddr::V4(Ipv4Addr::from(hex(addr)?.to_ne_bytes())),
        Family::V6 if addr.len() == 32 => {
            let mut bytes = [0u8; 16];
            for (word, chunk) in bytes.chunks_exact_mut(4).zip(addr.chunks_exact(8)) {
                word.copy_from_slice(&hex(chunk)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Up to 8 hex digits (either case) as a `u32`.
fn hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'F' => b - b'A' + 10,
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u32::from(digit))
    })
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn v4(table_rows: &str) -> Vec<Result<SocketRow, MalformedRow>> {
        rows(format!("{HEADER}{table_rows}").as_bytes(), Family::V4).collect()
    }

    #[test]
    fn parses_a_listen_and_an_established_ipv4_row() {
        let parsed = v4(concat!(
            "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1163 1 0000 100 0 0 10 0\n",
            "   1: 0A00000A:A5F2 0B00000A:1F90 01 00000000:00000000 02:000001E2 00000000  1000        0 4242 2 0000 20 4 30 10 -1\n",
        ));
        assert_eq!(
            parsed,
            vec![
                Ok(SocketRow {
                    local: "0.0.0.0:8080".parse().unwrap(),
                    remote: "0.0.0.0:0".parse().unwrap(),
                    state: state::LISTEN,
                    inode: 1163,
                    uid: 0,
                }),
                Ok(SocketRow {
                    local: "10.0.0.10:42482".parse().unwrap(),
                    remote: "10.0.0.11:8080".parse().unwrap(),
                    state: state::ESTABLISHED,
                    inode: 4242,
                    uid: 1000,
                }),
            ]
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_becomes_ipv4_and_plain_ipv6_stays() {
        let table = concat!(
            "  sl  local_address                         remote_address                        st\n",
            "   0: 0000000000000000FFFF00000A00000A:A5F2 0000000000000000FFFF00000B00000A:1F90 01 00000000:00000000 00:00000000 00000000 0 0 77 1\n",
            "   1: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:C000 01 00000000:00000000 00:00000000 00000000 0 0 78 1\n",
        );
        let parsed: Vec<_> = rows(table.as_bytes(), Family::V6).map(Result::unwrap).collect();
        assert_eq!(parsed[0].local, "10.0.0.10:42482".parse().unwrap());
        assert_eq!(parsed[0].remote, "10.0.0.11:8080".parse().unwrap());
        assert_eq!(parsed[1].local, "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(parsed[1].remote, "[2001:db8::2]:49152".parse().unwrap());
    }

    #[test]
    fn an_unknown_state_is_kept_and_a_broken_row_does_not_drop_the_table() {
        let parsed = v4(concat!(
            "   0: 0A00000A:A5F2 0B00000A:1F90 0D 00000000:00000000 00:00000000 00000000 0 0 11 1\n",
            "   1: 0A00000A:ZZZZ 0B00000A:1F90 01 00000000:00000000 00:00000000 00000000 0 0 12 1\n",
            "   2: 0A00000A:A5F3 0B00000A:1F90 01 00000000:00000000\n",
            "\n",
            "   3: 0A00000A:A5F4 0B00000A:1F90 01 00000000:00000000 00:00000000 00000000 0 0 14 1\n",
        ));
        assert_eq!(parsed[0].unwrap().state, 0x0D);
        assert_eq!(parsed[1], Err(MalformedRow { line: 3, what: "bad local address" }));
        assert_eq!(parsed[2], Err(MalformedRow { line: 4, what: "missing timer" }));
        assert_eq!(parsed[3].unwrap().inode, 14);
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn an_empty_table_and_a_header_only_table_have_no_rows() {
        assert_eq!(rows(b"", Family::V4).count(), 0);
        assert_eq!(rows(HEADER.as_bytes(), Family::V4).count(), 0);
    }

    #[test]
    fn hex_rejects_overlong_and_non_hex_input() {
        assert_eq!(hex(b"FFFFFFFF"), Some(u32::MAX));
        assert_eq!(hex(b"1FFFFFFFF"), None);
        assert_eq!(hex(b"0x10"), None);
        assert_eq!(decimal(b"99999999999999999999999"), None);
    }
}
