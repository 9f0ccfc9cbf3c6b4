//! The hand-written `net/tcp{,6}` parser agrees with `procfs::net::TcpNetEntries` on kernel-formatted tables,
//! and never panics on arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use network_mapper::sources::sockets::table::{self, Family};
use procfs::FromReadSI;
use proptest::prelude::*;
use testkit::procfs::{Row, table_text};

fn system_info() -> procfs::ExplicitSystemInfo {
    procfs::ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    }
}

fn endpoint(v6: bool) -> impl Strategy<Value = SocketAddr> {
    let ip = if v6 {
        prop_oneof![
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
            // Dual-stack sockets show IPv4 peers as ::ffff:a.b.c.d, loopback included.
            any::<u32>().prop_map(|n| IpAddr::V6(Ipv4Addr::from(n).to_ipv6_mapped())),
            Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]
        .boxed()
    } else {
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))).boxed()
    };
    (ip, any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn table_rows(v6: bool) -> impl Strategy<Value = Vec<Row>> {
    let row = (endpoint(v6), endpoint(v6), 1u8..=12, any::<u64>(), any::<u32>());
    prop::collection::vec(row, 0..40).prop_map(|rows| {
        rows.into_iter().map(|(local, remote, state, inode, uid)| Row { local, remote, state, inode, uid }).collect()
    })
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn check_against_procfs(v6: bool, rows: &[Row]) -> Result<(), TestCaseError> {
    let text = table_text(v6, rows);
    let family = if v6 { Family::V6 } else { Family::V4 };
    let ours: Vec<_> = table::rows(text.as_bytes(), family)
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let procfs::net::TcpNetEntries(theirs) =
        procfs::net::TcpNetEntries::from_read(text.as_bytes(), &system_info()).expect("procfs parses it");
    prop_assert_eq!(ours.len(), theirs.len());
    for (ours, theirs) in ours.iter().zip(&theirs) {
        prop_assert_eq!(ours.local, canonical(theirs.local_address));
        prop_assert_eq!(ours.remote, canonical(theirs.remote_address));
        prop_assert_eq!(ours.state, theirs.state.to_u8());
        prop_assert_eq!(ours.inode, theirs.inode);
        prop_assert_eq!(ours.uid, theirs.uid);
    }
    Ok(())
}

proptest! {
    #[test]
    fn ipv4_tables_parse_like_procfs(rows in table_rows(false)) {
        check_against_procfs(false, &rows)?;
    }

    #[test]
    fn ipv6_tables_parse_like_procfs_with_mapped_addresses_as_ipv4(rows in table_rows(true)) {
        check_against_procfs(true, &rows)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), v6 in any::<bool>()) {
        let family = if v6 { Family::V6 } else { Family::V4 };
        let _ = table::rows(&bytes, family).count();
    }

    #[test]
    fn truncating_a_table_keeps_every_complete_row(rows in table_rows(false), cut in 0usize..8000) {
        let text = table_text(false, &rows);
        let cut = cut.min(text.len());
        let parsed = table::rows(&text.as_bytes()[..cut], Family::V4).filter(Result::is_ok).count();
        let complete_lines = text[..cut].matches('\n').count().saturating_sub(1);
        prop_assert!(parsed >= complete_lines.min(rows.len()));
    }
}
