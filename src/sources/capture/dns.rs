//! DNS message bytes → an answer (question name and the addresses it resolved to) or the reason it is not one.
//! Owns the counting rules of docs/design.md §3 for a single message, and the cheap duplicate hash taken before parsing.
//! Pure; parse failures are a [`DnsResponse::Malformed`] value, never a panic.

use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::FxHasher;

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, OPCODE, Packet, PacketFlag, RCODE};

/// A response that maps its question name to at least one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub id: u16,
    /// The question name, lower case, no trailing dot.
    pub question: String,
    /// The A/AAAA addresses reached from the question name through the CNAME chain, without repeats, in answer order.
    pub addresses: Vec<IpAddr>,
}

/// Why a well-formed DNS message is not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotAnswerReason {
    /// The QR bit is clear: a query captured on port 53 (e.g. a resolver forwarding upstream from port 53).
    Query,
    /// Not a standard query (NOTIFY, UPDATE, ...).
    Opcode,
    /// NXDOMAIN: typically a resolv.conf search-path variant.
    NxDomain,
    /// Any other non-NOERROR RCODE (SERVFAIL, REFUSED, ...).
    ErrorRcode,
    /// No question section.
    NoQuestion,
    /// NOERROR, but no A/AAAA record reachable from the question name (empty answer, other record types, unrelated
    /// names, a CNAME loop or a chain that never reaches an address).
    NoAddresses,
}

impl NotAnswerReason {
    pub fn metric_label(self) -> &'static str {
        match self {
            NotAnswerReason::Query => "query",
            NotAnswerReason::Opcode => "opcode",
            NotAnswerReason::NxDomain => "nxdomain",
            NotAnswerReason::ErrorRcode => "error_rcode",
            NotAnswerReason::NoQuestion => "no_question",
            NotAnswerReason::NoAddresses => "no_addresses",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsResponse {
    Answer(Answer),
    NotAnswer(NotAnswerReason),
    /// simple-dns could not parse the message.
    Malformed,
}

const HEADER_LEN: usize = 12;
/// The longest name on the wire, plus the two bytes of a pointer that may end it.
const MAX_NAME_BYTES: usize = 255 + 2;

/// Hash of the DNS id and the raw first question (name ASCII-lowercased, type, class), read straight from the bytes
/// so that duplicate copies can be dropped before the full parse. `None` when the header or question is cut short,
/// or the name is longer than a name can be. The name's bytes are lowercased into a buffer and hashed a word at a
/// time.
pub fn dedup_key_hash(message: &[u8]) -> Option<u64> {
    let header = message.get(..HEADER_LEN)?;
    let mut hasher = FxHasher::default();
    hasher.write_u16(u16::from_be_bytes([header[0], header[1]]));
    let question_count = u16::from_be_bytes([header[4], header[5]]);
    if question_count == 0 {
        return Some(hasher.finish());
    }
    // The name as it is on the wire (length bytes included), lowercased: at most 255 bytes (RFC 1035 §2.3.4).
    let mut name = [0u8; MAX_NAME_BYTES];
    let mut len = 0;
    let mut at = HEADER_LEN;
    loop {
        let label_len = usize::from(*message.get(at)?);
        if label_len & 0xC0 != 0 {
            // A compression pointer cannot point backwards from the first question; take its two bytes as they are.
            let pointer = message.get(at..at + 2)?;
            name.get_mut(len..len + 2)?.copy_from_slice(pointer);
            (len, at) = (len + 2, at + 2);
            break;
        }
        let label = message.get(at..at + 1 + label_len)?;
        let into = name.get_mut(len..len + label.len())?;
        for (to, from) in into.iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        (len, at) = (len + label.len(), at + label.len());
        if label_len == 0 {
            break;
        }
    }
    hasher.write(&name[..len]);
    hasher.write(message.get(at..at + 4)?);
    Some(hasher.finish())
}

/// Applies the docs/design.md §3 rules to one DNS message.
pub fn parse_response(message: &[u8]) -> DnsResponse {
    let Ok(packet) = Packet::parse(message) else {
        return DnsResponse::Malformed;
    };
    match classify(&packet) {
        Ok(answer) => DnsResponse::Answer(answer),
        Err(reason) => DnsResponse::NotAnswer(reason),
    }
}

fn classify(packet: &Packet<'_>) -> Result<Answer, NotAnswerReason> {
    if !packet.has_flags(PacketFlag::RESPONSE) {
        return Err(NotAnswerReason::Query);
    }
    if packet.opcode() != OPCODE::StandardQuery {
        return Err(NotAnswerReason::Opcode);
    }
    match packet.rcode() {
        RCODE::NoError => {}
        RCODE::NameError => return Err(NotAnswerReason::NxDomain),
        _ => return Err(NotAnswerReason::ErrorRcode),
    }
    let question = packet.questions.first().ok_or(NotAnswerReason::NoQuestion)?;
    let addresses = addresses_of(packet, &question.qname);
    if addresses.is_empty() {
        return Err(NotAnswerReason::NoAddresses);
    }
    Ok(Answer { id: packet.id(), question: name_text(&question.qname), addresses })
}

/// The lower-case dotted text of a name, without a trailing dot. Labels of hostname bytes (letters, digits, `-`,
/// `_`) — every name a stub resolver asks — are copied directly; anything else goes through `Name`'s escaping
/// `Display`, which is correct but costs a formatter call per label on the packet path.
fn name_text(name: &Name<'_>) -> String {
    let mut text: Vec<u8> = Vec::with_capacity(64);
    for (i, label) in name.get_labels().iter().enumerate() {
        let bytes: &[u8] = label.as_ref();
        if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return name.to_string().to_ascii_lowercase();
        }
        if i > 0 {
            text.push(b'.');
        }
        text.extend(bytes.iter().map(u8::to_ascii_lowercase));
    }
    // Only ASCII was pushed, so this cannot fail; the fallback keeps the function total anyway.
    String::from_utf8(text).unwrap_or_else(|_| name.to_string().to_ascii_lowercase())
}

/// Follows the CNAME chain from `name` to the first name that owns A/AAAA records. Each hop consumes an answer
/// record, so a chain longer than the answer section is a loop.
fn addresses_of(packet: &Packet<'_>, name: &Name<'_>) -> Vec<IpAddr> {
    let mut current = name;
    for _ in 0..=packet.answers.len() {
        let addresses = addresses_owned_by(packet, current);
        if !addresses.is_empty() {
            return addresses;
        }
        let next = packet.answers.iter().find_map(|rr| match &rr.rdata {
            RData::CNAME(target) if rr.class == CLASS::IN && rr.name == *current => Some(&target.0),
            _ => None,
        });
        match next {
            Some(target) => current = target,
            None => break,
        }
    }
    Vec::new()
}

fn addresses_owned_by(packet: &Packet<'_>, owner: &Name<'_>) -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    for rr in packet.answers.iter().filter(|rr| rr.class == CLASS::IN && rr.name == *owner) {
        let address = match &rr.rdata {
            RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
            RData::AAAA(aaaa) => IpAddr::V6(Ipv6Addr::from(aaaa.address)),
            _ => continue,
        };
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    addresses
}

#[cfg(test)]
mod name_text_tests {
    use super::*;

    #[test]
    fn fast_path_matches_display_for_hostnames_and_escapes_the_rest() {
        for text in ["Cart.Shop.SVC.cluster.local", "a", "x_y-1.example.com", "weird\\.label.example", "*.example.com"]
        {
            let name = Name::new(text).unwrap();
            assert_eq!(name_text(&name), name.to_string().to_ascii_lowercase(), "{text}");
        }
    }
}
