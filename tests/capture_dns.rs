//! DNS answer rules (docs/design.md §3), the pre-parse duplicate hash, and the de-duplicator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use network_mapper::sources::capture::dedup::{DedupKey, Deduplicator};
use network_mapper::sources::capture::dns::{DnsResponse, NotAnswerReason, dedup_key_hash, parse_response};
use simple_dns::{RCODE, TYPE};
use testkit::packets::{self, Record};

const NAME: &str = "cartservice.shop.svc.cluster.local";

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, 0, last)
}

fn expect_answer(message: &[u8]) -> (String, Vec<IpAddr>) {
    match parse_response(message) {
        DnsResponse::Answer(a) => (a.question, a.addresses),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn a_and_aaaa_answers_for_the_question_are_kept() {
    let message = packets::response(
        7,
        NAME,
        &[Record::A(NAME, v4(1)), Record::Aaaa(NAME, Ipv6Addr::LOCALHOST), Record::A(NAME, v4(1))],
    );
    let DnsResponse::Answer(answer) = parse_response(&message) else { panic!("not an answer") };
    assert_eq!(answer.id, 7);
    assert_eq!(answer.question, NAME);
    assert_eq!(answer.addresses, vec![IpAddr::V4(v4(1)), IpAddr::V6(Ipv6Addr::LOCALHOST)], "repeats removed");
}

#[test]
fn question_is_lower_cased_and_owner_names_match_case_insensitively() {
    let message = packets::response(
        1,
        "Redis-Cart.Shop.SVC.cluster.local",
        &[Record::A("redis-cart.shop.svc.CLUSTER.local", v4(2))],
    );
    assert_eq!(expect_answer(&message), ("redis-cart.shop.svc.cluster.local".to_string(), vec![IpAddr::V4(v4(2))]));
}

#[test]
fn cname_chains_are_followed_from_the_question_name() {
    let message = packets::response(
        2,
        "www.example.com",
        &[
            Record::A("unrelated.example.org", v4(9)),
            Record::Cname("www.example.com", "edge.example.net"),
            Record::Cname("edge.example.net", "pop7.cdn.example"),
            Record::A("pop7.cdn.example", v4(3)),
            Record::A("pop7.cdn.example", v4(4)),
        ],
    );
    assert_eq!(expect_answer(&message), ("www.example.com".to_string(), vec![IpAddr::V4(v4(3)), IpAddr::V4(v4(4))]));
}

#[test]
fn answers_for_unrelated_names_only_are_no_addresses() {
    let message = packets::response(3, NAME, &[Record::A("other.example", v4(5))]);
    assert_eq!(parse_response(&message), DnsResponse::NotAnswer(NotAnswerReason::NoAddresses));
}

#[test]
fn cname_loops_and_dangling_chains_are_no_addresses() {
    let looping = packets::response(
        4,
        "a.example",
        &[
            Record::Cname("a.example", "b.example"),
            Record::Cname("b.example", "a.example"),
            Record::A("c.example", v4(6)),
        ],
    );
    assert_eq!(parse_response(&looping), DnsResponse::NotAnswer(NotAnswerReason::NoAddresses));
    let dangling = packets::response(5, "a.example", &[Record::Cname("a.example", "b.example")]);
    assert_eq!(parse_response(&dangling), DnsResponse::NotAnswer(NotAnswerReason::NoAddresses));
    let self_loop = packets::response(5, "a.example", &[Record::Cname("a.example", "a.example")]);
    assert_eq!(parse_response(&self_loop), DnsResponse::NotAnswer(NotAnswerReason::NoAddresses));
}

#[test]
fn nxdomain_empty_and_error_responses_are_not_answers() {
    let search_variant = "cartservice.shop.svc.cluster.local.shop.svc.cluster.local";
    assert_eq!(
        parse_response(&packets::nxdomain(6, search_variant)),
        DnsResponse::NotAnswer(NotAnswerReason::NxDomain)
    );
    assert_eq!(parse_response(&packets::response(6, NAME, &[])), DnsResponse::NotAnswer(NotAnswerReason::NoAddresses));
    let servfail = packets::response_with(6, NAME, TYPE::A, RCODE::ServerFailure, &[Record::A(NAME, v4(1))]);
    assert_eq!(parse_response(&servfail), DnsResponse::NotAnswer(NotAnswerReason::ErrorRcode));
    let query = packets::query(6, NAME, TYPE::A);
    assert_eq!(parse_response(&query), DnsResponse::NotAnswer(NotAnswerReason::Query));
}

#[test]
fn a_response_without_a_question_is_not_an_answer() {
    let mut message = packets::response(8, NAME, &[]);
    message.truncate(12);
    message[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(parse_response(&message), DnsResponse::NotAnswer(NotAnswerReason::NoQuestion));
}

#[test]
fn garbage_and_every_truncation_are_malformed_never_a_panic() {
    let message = packets::response(9, NAME, &[Record::Cname(NAME, "x.example"), Record::A("x.example", v4(7))]);
    for cut in 0..message.len() {
        assert_eq!(parse_response(&message[..cut]), DnsResponse::Malformed, "cut at {cut}");
    }
    assert_eq!(parse_response(b"\xff\xff\xff"), DnsResponse::Malformed);
}

#[test]
fn dedup_hash_covers_id_and_question_case_insensitively() {
    let base = dedup_key_hash(&packets::response(10, NAME, &[Record::A(NAME, v4(1))])).unwrap();
    // Same id and question, different answer and case: a copy.
    let upper = packets::response(10, &NAME.to_uppercase(), &[Record::A(NAME, v4(2))]);
    assert_eq!(dedup_key_hash(&upper), Some(base));
    assert_ne!(dedup_key_hash(&packets::response(11, NAME, &[])), Some(base), "other id");
    assert_ne!(dedup_key_hash(&packets::response(10, "other.example", &[])), Some(base), "other name");
    let aaaa = packets::response_with(10, NAME, TYPE::AAAA, RCODE::NoError, &[]);
    assert_ne!(dedup_key_hash(&aaaa), Some(base), "other type");
}

#[test]
fn dedup_hash_is_none_when_the_question_is_cut() {
    let message = packets::response(12, NAME, &[]);
    let question_end = 12 + NAME.len() + 2 + 4;
    for cut in 0..question_end {
        assert_eq!(dedup_key_hash(&message[..cut]), None, "cut at {cut}");
    }
    assert!(dedup_key_hash(&message[..question_end]).is_some());
}

fn key(client: &str, port: u16, hash: u64) -> DedupKey {
    DedupKey { client: client.parse().unwrap(), client_port: port, message_hash: hash }
}

#[test]
fn copies_within_the_window_are_duplicates_and_later_ones_count_again() {
    let mut dedup = Deduplicator::new(2_000_000, 100);
    let k = key("10.244.1.7", 41000, 99);
    assert!(dedup.first_sighting(k, 1_000_000));
    assert!(!dedup.first_sighting(k, 1_000_010));
    // The memory keeps time in ~1 ms units: the window ends within a unit of 2 s.
    assert!(!dedup.first_sighting(k, 2_997_000), "copies do not extend the window");
    assert!(dedup.first_sighting(k, 3_001_100), "a new observation after the window");
    assert_eq!(dedup.len(), 1);
}

#[test]
fn the_nat_copy_is_a_duplicate_because_the_key_has_no_source() {
    // The same answer, seen from the DNS pod IP and, after kube-proxy NAT, from the Service ClusterIP: both copies
    // have the same client and the same payload, hence the same key.
    let message = packets::response(13, NAME, &[Record::A(NAME, v4(1))]);
    let hash = dedup_key_hash(&message).unwrap();
    let mut dedup = Deduplicator::new(2_000_000, 100);
    assert!(dedup.first_sighting(key("10.244.1.7", 41000, hash), 5));
    assert!(!dedup.first_sighting(key("10.244.1.7", 41000, hash), 6));
    assert!(dedup.first_sighting(key("10.244.1.8", 41000, hash), 7), "another client");
    assert!(dedup.first_sighting(key("10.244.1.7", 41001, hash), 8), "another port");
}

#[test]
fn expired_entries_are_evicted() {
    let mut dedup = Deduplicator::new(1_000, 1_000_000);
    for i in 0..10_000u64 {
        assert!(dedup.first_sighting(key("10.0.0.1", 1, i), i as i64 * 10));
    }
    assert!(dedup.len() <= 101, "only the last window is remembered, got {}", dedup.len());
}

#[test]
fn memory_is_bounded_by_max_entries_oldest_first() {
    // Eight entries are one bucket: a ninth key overwrites the oldest.
    let mut dedup = Deduplicator::new(1 << 40, 5);
    assert_eq!(dedup.capacity(), 8);
    for i in 0..9 {
        assert!(dedup.first_sighting(key("10.0.0.1", 1, i), 10_000 * (1 + i as i64)));
    }
    assert_eq!(dedup.len(), 8);
    assert!(dedup.first_sighting(key("10.0.0.1", 1, 0), 100_000), "the oldest was evicted");
    assert!(!dedup.first_sighting(key("10.0.0.1", 1, 8), 101_000), "the newest is remembered");
}

#[test]
fn at_full_rate_every_copy_within_the_window_is_caught() {
    // The default table at 1M answers/s: each answer's copy, 50 µs later with 50 other answers in between, is a copy.
    let mut dedup = Deduplicator::new(2_000_000, network_mapper::sources::capture::dedup::DEFAULT_MAX_ENTRIES);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..1_000_000u64 {
        let at = i as i64;
        assert!(dedup.first_sighting(key("10.0.0.1", (i % 60_000) as u16, i), at));
        pending.push_back((i, at));
        if pending.len() > 50 {
            let (j, first) = pending.pop_front().unwrap();
            assert!(!dedup.first_sighting(key("10.0.0.1", (j % 60_000) as u16, j), first + 50), "copy of {j}");
        }
    }
}

#[test]
fn not_answer_reasons_have_distinct_labels() {
    let all = [
        NotAnswerReason::Query,
        NotAnswerReason::Opcode,
        NotAnswerReason::NxDomain,
        NotAnswerReason::ErrorRcode,
        NotAnswerReason::NoQuestion,
        NotAnswerReason::NoAddresses,
    ];
    let labels: std::collections::HashSet<_> = all.iter().map(|r| r.metric_label()).collect();
    assert_eq!(labels.len(), all.len());
}
