//! Decides, from the 12-byte header, the question and the destination address alone, what happens to a DNS
//! message that cannot count here, so that the full `simple-dns` parse ([`super::dns::parse_response`], still
//! the parser of record) runs only for answers that can count.
//!
//! A node that hosts a DNS server sees every answer of the cluster, yet counts only its own clients' ones
//! (docs/design.md §2, §3); with 20 nodes that is one answer in twenty. The checks, cheapest and widest first,
//! so that the question is read (hashed for de-duplication) only for answers this node may count:
//! 1. header cut short → [`Early::Malformed`];
//! 2. the header says it cannot be an answer (QR clear, not a standard query, NXDOMAIN or another error RCODE,
//!    no question, no answer record) → [`Early::NotAnswer`];
//! 3. the destination is a DNS server pod: a lookup it forwarded upstream → [`Early::Forwarded`];
//! 4. the destination is a pod on another node → [`Early::OtherNode`] (that node counts it);
//! 5. question cut short → [`Early::Malformed`]; a copy of an answer seen within the window →
//!    [`Early::Duplicate`].
//!
//! Every copy of a message decided by steps 1–4 counts under that outcome (a capture on device `any` sees most
//! answers twice: from the DNS pod, and from the Service address after NAT), so `duplicate` counts the copies of
//! answers this node goes on to parse. The full parse keeps the last word: a message whose header passes but
//! whose body `simple-dns` rejects, or whose answer records hold no address, counts as `malformed` /
//! `not_answer`, unless an earlier step decided it (a damaged body to another node's pod is `other_node`).
//!
//! The node and DNS-server tests are the caller's ([`Destinations`]): this module knows no inventory.

use std::net::IpAddr;

use super::dedup::{DedupKey, Deduplicator};
use super::dns::{self, NotAnswerReason};
use super::frame::DnsMessage;
use crate::UnixMicros;

/// What the caller knows about a message's destination (the client of the lookup).
pub trait Destinations {
    /// Whether `ip` is a pod on another node at `at`: that node counts its answers. Must be false for an address
    /// that is not a pod's, or is ambiguous, so that the resolver still reports why it did not resolve.
    fn on_other_node(&self, ip: IpAddr, at: UnixMicros) -> bool;

    /// Whether `ip` is a DNS server pod (a backend of a Service on port 53, or a pod seen sending DNS answers):
    /// an answer to it is a lookup it forwarded, not an edge of its own.
    fn is_dns_server(&self, _ip: IpAddr) -> bool {
        false
    }
}

/// No node and no DNS-server knowledge: only the header rules and de-duplication apply.
impl Destinations for () {
    fn on_other_node(&self, _ip: IpAddr, _at: UnixMicros) -> bool {
        false
    }
}

/// A message decided without the full parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Early {
    Malformed,
    Duplicate,
    NotAnswer(NotAnswerReason),
    Forwarded,
    OtherNode,
}

impl Early {
    /// The `outcome` label of `network_mapper_dns_responses_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Early::Malformed => "malformed",
            Early::Duplicate => "duplicate",
            Early::NotAnswer(_) => "not_answer",
            Early::Forwarded => "forwarded",
            Early::OtherNode => "other_node",
        }
    }
}

/// The pre-filter's state: the duplicate memory.
#[derive(Debug)]
pub struct Prefilter {
    dedup: Deduplicator,
}

impl Prefilter {
    /// A pre-filter remembering answers for `window_micros` (at most `max_entries` of them).
    pub fn new(window_micros: i64, max_entries: usize) -> Prefilter {
        Prefilter { dedup: Deduplicator::new(window_micros, max_entries) }
    }

    /// `Err` with the outcome of a message that cannot count, `Ok` when it must be parsed in full: steps 1–5 in
    /// order ([`check_header`], [`check_destination`], [`Prefilter::check_duplicate`]).
    pub fn check(&mut self, message: &DnsMessage<'_>, at: UnixMicros, dest: &impl Destinations) -> Result<(), Early> {
        check_header(message)?;
        check_destination(message, at, dest)?;
        self.check_duplicate(message, at)
    }

    /// Step 5: a copy of an answer seen within the window; a question cut short is malformed (its duplicate key
    /// cannot be taken).
    pub fn check_duplicate(&mut self, message: &DnsMessage<'_>, at: UnixMicros) -> Result<(), Early> {
        let message_hash = dns::dedup_key_hash(message.bytes).ok_or(Early::Malformed)?;
        let key = DedupKey { client: message.dst.ip(), client_port: message.dst.port(), message_hash };
        if self.dedup.first_sighting(key, at) { Ok(()) } else { Err(Early::Duplicate) }
    }
}

/// Steps 1–2, which need the 12-byte header alone: cut short, or not an answer.
pub fn check_header(message: &DnsMessage<'_>) -> Result<(), Early> {
    let header = message.bytes.get(..12).ok_or(Early::Malformed)?;
    header_verdict(header).map_err(Early::NotAnswer)
}

/// Steps 3–4: a lookup forwarded by a DNS server, an answer to another node's pod.
pub fn check_destination(message: &DnsMessage<'_>, at: UnixMicros, dest: &impl Destinations) -> Result<(), Early> {
    let client = message.dst.ip();
    if dest.is_dns_server(client) {
        return Err(Early::Forwarded);
    }
    if dest.on_other_node(client, at) {
        return Err(Early::OtherNode);
    }
    Ok(())
}

/// The header rules of [`dns::parse_response`], in its order, on the raw header. The caller has checked that
/// the 12-byte header is there.
pub fn header_verdict(message: &[u8]) -> Result<(), NotAnswerReason> {
    let Some(header) = message.get(..12) else {
        return Ok(());
    };
    let (flags_hi, flags_lo) = (header[2], header[3]);
    let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if flags_hi & 0x80 == 0 {
        return Err(NotAnswerReason::Query);
    }
    if (flags_hi >> 3) & 0x0F != 0 {
        return Err(NotAnswerReason::Opcode);
    }
    match flags_lo & 0x0F {
        0 => {}
        3 => return Err(NotAnswerReason::NxDomain),
        _ => return Err(NotAnswerReason::ErrorRcode),
    }
    if count(4) == 0 {
        return Err(NotAnswerReason::NoQuestion);
    }
    if count(6) == 0 {
        return Err(NotAnswerReason::NoAddresses);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::capture::dns::DnsResponse;
    use testkit::packets::{self as synth, Record};

    struct Node {
        other: IpAddr,
        dns_server: IpAddr,
    }

    impl Destinations for Node {
        fn on_other_node(&self, ip: IpAddr, _at: UnixMicros) -> bool {
            ip == self.other
        }
        fn is_dns_server(&self, ip: IpAddr) -> bool {
            ip == self.dns_server
        }
    }

    fn message<'a>(dst: &str, bytes: &'a [u8]) -> DnsMessage<'a> {
        DnsMessage { src: "10.0.0.53:53".parse().unwrap(), dst: dst.parse().unwrap(), tcp: false, bytes }
    }

    fn node() -> Node {
        Node { other: "10.0.2.10".parse().unwrap(), dns_server: "10.0.0.53".parse().unwrap() }
    }

    /// An answer for `cart`, and a fresh pre-filter.
    fn cart_answer() -> (Vec<u8>, Prefilter) {
        let name = "cart.shop.svc.cluster.local";
        (synth::response(1, name, &[Record::A(name, "10.96.0.20".parse().unwrap())]), Prefilter::new(2_000_000, 16))
    }

    #[test]
    fn each_early_outcome_in_order() {
        let ((answer, mut filter), node) = (cart_answer(), node());
        assert_eq!(filter.check(&message("10.0.1.10:1000", &answer), 0, &node), Ok(()));
        assert_eq!(filter.check(&message("10.0.1.10:1000", &answer), 10, &node), Err(Early::Duplicate));
        assert_eq!(filter.check(&message("10.0.2.10:1000", &answer), 20, &node), Err(Early::OtherNode));
        assert_eq!(filter.check(&message("10.0.0.53:1000", &answer), 30, &node), Err(Early::Forwarded));
        let nx = synth::nxdomain(2, "cart.shop.svc.cluster.local.shop.svc.cluster.local");
        let want = Err(Early::NotAnswer(NotAnswerReason::NxDomain));
        assert_eq!(filter.check(&message("10.0.2.10:1000", &nx), 40, &node), want, "before the node test");
        assert_eq!(filter.check(&message("10.0.2.10:1000", &nx), 41, &node), want, "a copy too");
        assert_eq!(filter.check(&message("10.0.1.10:1", &answer[..20]), 50, &node), Err(Early::Malformed));
        assert_eq!(filter.check(&message("10.0.1.10:1", &answer[..11]), 60, &node), Err(Early::Malformed));
    }

    #[test]
    fn only_answers_this_node_may_count_are_hashed_so_only_their_copies_are_duplicates() {
        let ((answer, mut filter), node) = (cart_answer(), node());
        for at in [0, 10] {
            assert_eq!(filter.check(&message("10.0.2.10:1000", &answer), at, &node), Err(Early::OtherNode));
            assert_eq!(filter.check(&message("10.0.0.53:1000", &answer), at, &node), Err(Early::Forwarded));
        }
        // A question cut short is never read for another node's answer: the destination decides first.
        assert_eq!(filter.check(&message("10.0.2.10:1000", &answer[..20]), 20, &node), Err(Early::OtherNode));
        assert_eq!(filter.check(&message("10.0.1.10:1000", &answer), 30, &node), Ok(()));
        assert_eq!(filter.check(&message("10.0.1.10:1000", &answer), 40, &node), Err(Early::Duplicate));
    }

    #[test]
    fn the_header_rules_agree_with_the_full_parse() {
        for bytes in synth::messages_of_each_kind() {
            match (header_verdict(&bytes), dns::parse_response(&bytes)) {
                (Err(early), DnsResponse::NotAnswer(parsed)) => assert_eq!(early, parsed),
                (Ok(()), _) => {}
                (early, parsed) => panic!("header says {early:?}, the parse {parsed:?}"),
            }
        }
    }
}
