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

/// The TCP entries of `table` that a REDIRECT in the namespace's OUTPUT chain sent to a proxy on loopback: the
/// reply comes from `127.0.0.1` (`::1`) while the application dialled an address that is not loopback. An
/// inbound REDIRECT (PREROUTING) answers from the pod's own address instead, and a proxy's own connections are not
/// translated, so neither is taken. Lines that do not parse are skipped.
pub fn intercepted(table: &[u8]) -> impl Iterator<Item = InterceptedEntry> + '_ {
    table.split(|&b| b == b'\n').filter_map(parse_line)
}

fn parse_line(line: &[u8]) -> Option<InterceptedEntry> {
    let line = std::str::from_utf8(line).ok()?;
    let mut fields = line.split_ascii_whitespace();
    if fields.nth(2)? != "tcp" {
        return None;
    }
    let mut tuples = [Tuple::default(), Tuple::default()];
    let mut filled = 0;
    for (key, value) in fields.filter_map(|field| field.split_once('=')) {
        let tuple = tuples.get_mut(filled)?;
        match key {
            "src" => tuple.src = Some(value.parse().ok()?),
            "dst" => tuple.dst = Some(value.parse().ok()?),
            "sport" => tuple.sport = Some(value.parse().ok()?),
            "dport" => {
                tuple.dport = Some(value.parse().ok()?);
                filled += 1;
                if filled == tuples.len() {
                    break;
                }
            }
            _ => {}
        }
    }
    let [original, reply] = tuples;
    let (client, dialled, answered_by) = (original.source()?, original.destination()?, reply.source()?);
    let intercepted = answered_by.ip().is_loopback() && !dialled.ip().is_loopback() && !client.ip().is_loopback();
    intercepted.then_some(InterceptedEntry { client, dialled })
}

/// One direction of an entry.
#[derive(Default)]
struct Tuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
}

impl Tuple {
    fn source(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.src?.to_canonical(), self.sport?))
    }

    fn destination(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.dst?.to_canonical(), self.dport?))
    }
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
                    ipv6     10 tcp      6 431999 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0005 \
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
    fn inbound_redirects_untranslated_connections_udp_and_garbage_are_not_taken() {
        let text = "\
ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.7 dst=10.0.0.5 sport=39000 dport=8080 src=10.0.0.5 dst=10.0.0.7 sport=15006 dport=39000 [ASSURED] mark=0 use=2
ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.5 dst=10.0.0.6 sport=40002 dport=8080 src=10.0.0.6 dst=10.0.0.5 sport=8080 dport=40002 [ASSURED] mark=0 use=2
ipv4 2 udp 17 29 src=10.0.0.5 dst=10.96.0.10 sport=5353 dport=53 src=127.0.0.1 dst=10.0.0.5 sport=15053 dport=5353 mark=0 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=127.0.0.1 sport=40003 dport=9000 src=127.0.0.1 dst=10.0.0.5 sport=9000 dport=40003 mark=0 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=10.0.0.6 sport=x dport=80 src=127.0.0.1 dst=10.0.0.5 sport=15001 dport=1 use=2
ipv4 2 tcp 6 10 CLOSE src=10.0.0.5 dst=10.0.0.6 sport=40004
garbage
";
        assert!(parse(text).is_empty(), "{:?}", parse(text));
    }
}
