//! Parser for a network namespace's connection tracking table (`/proc/<pid>/net/nf_conntrack`), for the one thing
//! the socket scan needs from it: the connections a mesh proxy in the namespace intercepted, with the address the
//! application dialled. Takes bytes, never touches a file.
//!
//! Why: a mesh proxy may carry many application connections over one pooled or multiplexed upstream (Envoy's
//! pools, ztunnel's HBONE), so a short application connection can open and close between two scans without a SYN
//! on the wire or a socket left in the table. Its REDIRECT made the kernel track it, though, and the entry
//! outlives the connection (10 s after a reset, 120 s in TIME_WAIT by default), so the next scan still finds it.
//!
//! A line (`nf_conntrack_standalone.c`): `ipv4 2 tcp 6 <timeout> <STATE> src= dst= sport= dport= [UNREPLIED]
//! src= dst= sport= dport= [ASSURED] mark= zone= use=`. The first four `key=value` fields are the original
//! direction, the next four the reply direction; IPv6 addresses are printed in full.

use std::net::{IpAddr, SocketAddr};

/// An application connection a proxy in the namespace intercepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterceptedEntry {
    /// The application's end.
    pub client: SocketAddr,
    /// The address the application dialled (a ClusterIP or a pod address, before the proxy).
    pub dialled: SocketAddr,
}

/// The TCP entries of `table` that a REDIRECT in the namespace's OUTPUT chain sent to a proxy on loopback and
/// that are no longer ESTABLISHED: the reply comes from `127.0.0.1` (`::1`) while the application dialled an
/// address that is not loopback. An inbound REDIRECT (PREROUTING) answers from the pod's own address instead, and
/// a proxy's own connections are not translated, so neither is taken. An ESTABLISHED entry is left out: its
/// application socket is in the TCP table, which the scan reads first (a connection established between the two
/// reads moved `ActiveOpens`, so the next scan reads the namespace again). Lines that do not parse are skipped.
pub fn intercepted(table: &[u8]) -> impl Iterator<Item = InterceptedEntry> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', table).chain(std::iter::once(table.len())).filter_map(move |end| {
        let line = &table[start.min(end)..end];
        start = end + 1;
        parse_line(line)
    })
}

/// Most lines are decided by the protocol, the state and the reply's source, compared as bytes; only the rest are
/// parsed (a pod's table is read whenever it connects, so its open connections must cost little).
fn parse_line(line: &[u8]) -> Option<InterceptedEntry> {
    let mut fields = line.split(|&b| b == b' ').filter(|field| !field.is_empty());
    if fields.nth(2)? != b"tcp" || fields.nth(2)? == b"ESTABLISHED" {
        return None;
    }
    // src, dst, sport, dport of the original direction, then the reply's src; `[UNREPLIED]` may come between.
    let mut values = fields.filter_map(|field| field.iter().position(|&b| b == b'=').map(|at| &field[at + 1..]));
    let (src, dst, sport, dport, answered_by) =
        (values.next()?, values.next()?, values.next()?, values.next()?, values.next()?);
    if !is_loopback(answered_by) {
        return None;
    }
    let client = SocketAddr::new(address(src)?, number(sport)?);
    let dialled = SocketAddr::new(address(dst)?, number(dport)?);
    let loopback = client.ip().is_loopback() || dialled.ip().is_loopback();
    (!loopback).then_some(InterceptedEntry { client, dialled })
}

/// `127.x.x.x`, or `::1` as the kernel prints it in full.
fn is_loopback(address: &[u8]) -> bool {
    address.starts_with(b"127.") || address == b"0000:0000:0000:0000:0000:0000:0000:0001"
}

fn address(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn number(text: &[u8]) -> Option<u16> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        intercepted(text.as_bytes()).map(|e| (e.client.to_string(), e.dialled.to_string())).collect()
    }

    #[test]
    fn an_outbound_redirect_to_a_loopback_proxy_is_taken_with_the_dialled_address() {
        // As read in the lab after the application closed: Envoy-style REDIRECT to 127.0.0.1:15001.
        let line = "ipv4     2 tcp      6 59 CLOSE_WAIT src=10.9.9.9 dst=10.96.1.12 sport=43414 dport=7070 \
                    src=127.0.0.1 dst=10.9.9.9 sport=15001 dport=43414 [ASSURED] mark=0 zone=0 use=2\n";
        assert_eq!(parse(line), vec![("10.9.9.9:43414".to_owned(), "10.96.1.12:7070".to_owned())]);
    }

    #[test]
    fn unreplied_and_ipv6_entries_parse() {
        let text = "ipv4     2 tcp      6 9 CLOSE src=10.0.0.5 dst=10.0.0.6 sport=40000 dport=8080 [UNREPLIED] \
                    src=127.0.0.1 dst=10.0.0.5 sport=4140 dport=40000 mark=0 zone=0 use=2\n\
                    ipv6     10 tcp      6 100 TIME_WAIT src=fd00:0000:0000:0000:0000:0000:0000:0005 \
                    dst=fd00:0000:0000:0000:0000:0000:0000:0006 sport=40001 dport=80 \
                    src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0005 \
                    sport=15001 dport=40001 [ASSURED] mark=0 zone=0 use=2\n";
        assert_eq!(
            parse(text),
            vec![
                ("10.0.0.5:40000".to_owned(), "10.0.0.6:8080".to_owned()),
                ("[fd00::5]:40001".to_owned(), "[fd00::6]:80".to_owned()),
            ]
        );
    }

    #[test]
    fn open_connections_inbound_redirects_untranslated_connections_udp_and_garbage_are_not_taken() {
        let text = "\
ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.5 dst=10.96.1.12 sport=40009 dport=80 src=127.0.0.1 dst=10.0.0.5 sport=15001 dport=40009 [ASSURED] mark=0 use=2
ipv4 2 tcp 6 100 TIME_WAIT src=10.0.0.7 dst=10.0.0.5 sport=39000 dport=8080 src=10.0.0.5 dst=10.0.0.7 sport=15006 dport=39000 [ASSURED] mark=0 use=2
ipv4 2 tcp 6 100 TIME_WAIT src=10.0.0.5 dst=10.0.0.6 sport=40002 dport=8080 src=10.0.0.6 dst=10.0.0.5 sport=8080 dport=40002 [ASSURED] mark=0 use=2
ipv4 2 udp 17 29 src=10.0.0.5 dst=10.96.0.10 sport=5353 dport=53 src=127.0.0.1 dst=10.0.0.5 sport=15053 dport=5353 mark=0 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=127.0.0.1 sport=40003 dport=9000 src=127.0.0.1 dst=10.0.0.5 sport=9000 dport=40003 mark=0 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=10.0.0.6 sport=x dport=80 src=127.0.0.1 dst=10.0.0.5 sport=15001 dport=1 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=10.0.0.6 sport=40004
garbage
";
        assert!(parse(text).is_empty(), "{:?}", parse(text));
    }
}
