//! The socket scanner against the fake procfs tree in `tests/fixtures/proc` (documented in its README), and
//! against edited copies of it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use network_mapper::mesh::Sighting;
use network_mapper::sources::sockets::netns::PodHash;
use network_mapper::sources::sockets::{Connection, Error, ProcRoot, ScanMode, ScanReport, Scanner, SocketOutcomes};
use testkit::procfs::{ESTABLISHED, LISTEN, Row, SYN_SENT, copy_tree, snmp_text, table_text};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn ino(path: &Path) -> u64 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).ino()
}

fn conn(local: &str, remote: &str, netns: u64, inode: u64) -> Connection {
    Connection {
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        netns,
        inode,
        sighting: Sighting::Plain,
    }
}

/// The six client-side connections of the fixture, as the first scan must report them.
fn fixture_clients(root: &Path) -> Vec<Connection> {
    // checkout is read through pid 100, which has ns/net; cart and redis through pids without it.
    let checkout = ino(&root.join("netns/checkout/ns"));
    let cart = ino(&root.join("netns/cart/tcp"));
    let redis = ino(&root.join("netns/redis/tcp"));
    let mut expected = vec![
        conn("10.244.1.10:40001", "10.96.0.20:7070", checkout, 5001),
        conn("10.244.1.10:40004", "10.244.2.12:6379", checkout, 0),
        conn("10.244.1.10:40005", "10.244.1.11:7070", checkout, 5005),
        conn("10.244.1.10:40010", "10.96.0.30:443", checkout, 5010),
        conn("10.244.1.11:39000", "10.244.1.12:6379", cart, 6001),
        conn("10.244.1.12:41000", "10.96.0.10:53", redis, 7001),
    ];
    expected.sort();
    expected
}

/// Sets a fixture namespace's TCP `ActiveOpens`, as a `connect()` in it would move it.
fn set_active_opens(root: &Path, namespace: &str, value: u64) {
    fs::write(root.join("netns").join(namespace).join("snmp"), snmp_text(value)).unwrap();
}

fn scan(scanner: &mut Scanner) -> ScanReport {
    let mut report = scanner.scan().expect("scan");
    report.new_connections.sort();
    report
}

#[test]
fn first_scan_finds_exactly_the_client_side_connections_reading_each_namespace_once() {
    let root = fixture();
    let mut scanner = Scanner::new(ProcRoot(root.clone())).expect("fixture is a procfs tree");
    let report = scan(&mut scanner);
    assert_eq!(
        report,
        ScanReport {
            new_connections: fixture_clients(&root),
            pids: 11,
            namespaces: 3,
            unchanged: 0,
            sockets: 21,
            // checkout and cart: tcp + tcp6; redis has no tcp6. Once each, although checkout has three pids.
            tables_read: 5,
            // pid 400 has no net/, pid 401's namespace is gone.
            vanished: 2,
            unreadable: 0,
            skipped_host_netns: true,
            outcomes: SocketOutcomes {
                client: 6,
                already_seen: 0,
                server_side: 4,
                loopback: 4,
                not_established: 7,
                malformed: 0,
            },
            // No mesh proxy listens in the fixture, so no connection tracking table is read.
            conntrack_read: 0,
            closed_intercepted: 0,
        }
    );
    assert_eq!(scanner.tracked_connections(), 6);
}

#[test]
fn later_scans_read_no_table_while_no_namespace_opens_a_connection() {
    let mut scanner = Scanner::new(ProcRoot(fixture())).unwrap();
    scan(&mut scanner);
    for _ in 0..3 {
        let report = scan(&mut scanner);
        assert_eq!(report.new_connections, vec![]);
        assert_eq!((report.namespaces, report.unchanged, report.tables_read, report.sockets), (0, 3, 0, 0));
        assert_eq!(report.outcomes, SocketOutcomes::default());
        assert_eq!((report.pids, report.vanished), (11, 2));
        assert!(report.skipped_host_netns);
        assert_eq!(scanner.tracked_connections(), 6, "unread namespaces keep their connections");
    }
}

#[test]
fn the_ungated_modes_read_every_namespace_or_every_pid_each_scan() {
    for (mode, tables_read) in [(ScanMode::EveryNamespace, 5), (ScanMode::EveryPid, 3 * 2 + 2 * 2 + 1)] {
        let mut scanner = Scanner::new(ProcRoot(fixture())).unwrap().with_mode(mode);
        let first = scan(&mut scanner);
        assert_eq!(first.new_connections, fixture_clients(&fixture()), "{mode:?}");
        assert_eq!(first.tables_read, tables_read, "{mode:?}: checkout has 3 pids, cart 2, redis 1 (no tcp6)");
        let later = scan(&mut scanner);
        assert_eq!((later.new_connections.len(), later.outcomes.already_seen), (0, 6), "{mode:?}");
        assert_eq!((later.namespaces, later.unchanged, later.tables_read), (3, 0, tables_read), "{mode:?}");
    }
}

#[test]
fn a_connection_in_syn_sent_keeps_its_namespace_read_until_it_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    scan(&mut scanner);

    // redis connect()s: the counter moves at once, the handshake is still in flight when the tables are read.
    let redis = dir.path().join("netns/redis");
    let mut rows = vec![
        Row::new("10.244.1.12:6379", "0.0.0.0:0", LISTEN, 7000),
        Row::new("10.244.1.12:6379", "10.244.1.11:39000", ESTABLISHED, 7002),
        Row::new("10.244.1.12:41000", "10.96.0.10:53", ESTABLISHED, 7001),
        Row::new("10.244.1.12:41002", "10.96.0.50:9000", SYN_SENT, 7004),
    ];
    fs::write(redis.join("tcp"), table_text(false, &rows)).unwrap();
    set_active_opens(dir.path(), "redis", 4);
    let report = scan(&mut scanner);
    assert_eq!((report.namespaces, report.unchanged, report.new_connections.len()), (1, 2, 0));

    // No further connect(), but the counter is not trusted past the SYN_SENT socket: redis is read again.
    rows[3].state = ESTABLISHED;
    fs::write(redis.join("tcp"), table_text(false, &rows)).unwrap();
    let report = scan(&mut scanner);
    let netns = ino(&redis.join("tcp"));
    assert_eq!(report.new_connections, vec![conn("10.244.1.12:41002", "10.96.0.50:9000", netns, 7004)]);
    assert_eq!((report.namespaces, report.unchanged), (1, 2));

    let report = scan(&mut scanner);
    assert_eq!((report.namespaces, report.unchanged, report.new_connections.len()), (0, 3, 0));
}

#[test]
fn a_namespace_without_a_readable_counter_is_read_every_scan() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    fs::remove_file(dir.path().join("netns/redis/snmp")).unwrap();
    fs::write(dir.path().join("netns/cart/snmp"), "Tcp: RtoAlgorithm\nTcp: 1\n").unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    assert_eq!(scan(&mut scanner).new_connections, fixture_clients(dir.path()));
    for _ in 0..2 {
        let report = scan(&mut scanner);
        assert_eq!((report.namespaces, report.unchanged, report.tables_read), (2, 1, 3));
        assert_eq!((report.new_connections.len(), report.outcomes.already_seen), (0, 2));
    }
}

#[test]
fn the_tcp6_table_is_skipped_when_the_namespace_has_no_ipv6_tcp_socket() {
    // checkout's tcp6 holds a client (to payments, IPv4-mapped). With `TCP6: inuse 0` in its sockstat6 (a lie here,
    // never on a real kernel) the gated scan does not read tcp6, which the missing connection shows; with the
    // true count it does, and the ungated modes read it whatever sockstat6 says.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    let sockstat6 = dir.path().join("netns/checkout/sockstat6");
    let without_v6: Vec<Connection> =
        fixture_clients(dir.path()).into_iter().filter(|c| c.local.port() != 40010).collect();
    for (text, mode, want) in [
        ("TCP6: inuse 0\nUDP6: inuse 0\n", ScanMode::Gated, &without_v6),
        ("TCP6: inuse 6\nUDP6: inuse 0\n", ScanMode::Gated, &fixture_clients(dir.path())),
        ("TCP6: inuse 0\nUDP6: inuse 0\n", ScanMode::EveryNamespace, &fixture_clients(dir.path())),
    ] {
        fs::write(&sockstat6, text).unwrap();
        let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap().with_mode(mode);
        let report = scan(&mut scanner);
        assert_eq!(&report.new_connections, want, "{text:?} {mode:?}");
        let tables = if want.len() == without_v6.len() { 4 } else { 5 };
        assert_eq!(report.tables_read, tables, "{text:?} {mode:?}");
    }
}

#[test]
fn a_new_connection_is_reported_once_and_a_closed_one_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    scan(&mut scanner);

    // redis closes its DNS connection and opens one to 10.96.0.40:8125.
    let redis = dir.path().join("netns/redis");
    let rows = [
        Row::new("10.244.1.12:6379", "0.0.0.0:0", LISTEN, 7000),
        Row::new("10.244.1.12:6379", "10.244.1.11:39000", ESTABLISHED, 7002),
        Row::new("10.244.1.12:41001", "10.96.0.40:8125", ESTABLISHED, 7003),
    ];
    fs::write(redis.join("tcp"), table_text(false, &rows)).unwrap();
    set_active_opens(dir.path(), "redis", 4);
    let report = scan(&mut scanner);
    let netns = ino(&redis.join("tcp"));
    assert_eq!(report.new_connections, vec![conn("10.244.1.12:41001", "10.96.0.40:8125", netns, 7003)]);
    assert_eq!((report.namespaces, report.unchanged), (1, 2));
    assert_eq!(report.outcomes.already_seen, 0, "the other namespaces were not read");
    assert_eq!(scanner.tracked_connections(), 6);

    // The old connection reappearing (same inode) is new again: it was forgotten when it closed.
    let mut reopened = rows.to_vec();
    reopened.push(Row::new("10.244.1.12:41000", "10.96.0.10:53", ESTABLISHED, 7001));
    fs::write(redis.join("tcp"), table_text(false, &reopened)).unwrap();
    set_active_opens(dir.path(), "redis", 5);
    let report = scan(&mut scanner);
    assert_eq!(report.new_connections, vec![conn("10.244.1.12:41000", "10.96.0.10:53", netns, 7001)]);
}

#[test]
fn a_namespace_is_read_through_another_pid_and_not_reported_again_when_its_first_pid_exits() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    scan(&mut scanner);

    // Pid 100 was checkout's only process with ns/net; 101 and 102 are identified by the net/tcp inode.
    fs::remove_dir_all(dir.path().join("100")).unwrap();
    let report = scan(&mut scanner);
    assert_eq!(report.new_connections, vec![]);
    assert_eq!((report.namespaces, report.unchanged, report.tables_read), (0, 3, 0), "the gate kept checkout");

    // A connect() in checkout (refused: no new socket) makes it read, through pid 101, with nothing new.
    set_active_opens(dir.path(), "checkout", 42);
    let report = scan(&mut scanner);
    assert_eq!(report.new_connections, vec![]);
    assert_eq!((report.namespaces, report.unchanged, report.tables_read), (1, 2, 2));
    assert_eq!(report.outcomes.already_seen, 4);
}

#[test]
fn the_host_namespace_is_skipped_when_pid_1_has_no_readable_ns_net() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    // As for pid 1 without CAP_SYS_PTRACE: its namespace is known only by its net/tcp inode, while pid 3
    // (a hostNetwork pod) still shows ns/net.
    fs::remove_dir_all(dir.path().join("1/ns")).unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    let report = scan(&mut scanner);
    assert!(report.skipped_host_netns);
    assert_eq!(report.new_connections, fixture_clients(dir.path()));
    assert_eq!(report.namespaces, 3);
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let err = Scanner::new(ProcRoot(PathBuf::from("/nonexistent/host/proc"))).unwrap_err();
    assert!(matches!(err, Error::UnreadableRoot { .. }), "{err:?}");
    assert_eq!(err.metric_label(), "unreadable_root");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/host/proc"), "{message}");
    assert!(message.contains("--procfs-root"), "{message}");
}

#[test]
fn a_directory_that_is_not_procfs_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap_err();
    assert!(matches!(err, Error::NotProcfs { .. }), "{err:?}");
    assert_eq!(err.metric_label(), "not_procfs");
    assert!(err.to_string().contains("1/net/tcp"), "{err}");
}

#[test]
fn a_root_that_disappears_after_start_up_fails_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    copy_tree(&fixture(), &root).unwrap();
    let mut scanner = Scanner::new(ProcRoot(root.clone())).unwrap();
    fs::remove_dir_all(&root).unwrap();
    assert!(matches!(scanner.scan(), Err(Error::UnreadableRoot { .. })));
}

#[test]
fn a_malformed_row_is_counted_and_the_rest_of_its_table_kept() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path()).unwrap();
    let tcp = dir.path().join("netns/cart/tcp");
    let mut text = fs::read_to_string(&tcp).unwrap();
    text.insert_str(text.find('\n').unwrap() + 1, "   9: 0B01F40A:ZZZZ truncated\n");
    fs::write(&tcp, text).unwrap();
    let mut scanner = Scanner::new(ProcRoot(dir.path().to_path_buf())).unwrap();
    let report = scan(&mut scanner);
    assert_eq!(report.outcomes.malformed, 1);
    assert_eq!(report.new_connections, fixture_clients(dir.path()));
}

#[test]
fn the_hash_that_new_namespaces_get_is_read_from_the_host_sysctls() {
    let dir = tempfile::tempdir().unwrap();
    let ipv4 = dir.path().join("sys/net/ipv4");
    assert_eq!(PodHash::of_host(dir.path()), None, "a kernel without the setting (before 6.1)");
    fs::create_dir_all(&ipv4).unwrap();
    fs::write(ipv4.join("tcp_ehash_entries"), "262144\n").unwrap();
    fs::write(ipv4.join("tcp_child_ehash_entries"), "0\n").unwrap();
    assert_eq!(PodHash::of_host(dir.path()), Some(PodHash::Shared { host_buckets: 262144 }));
    fs::write(ipv4.join("tcp_child_ehash_entries"), "16384\n").unwrap();
    assert_eq!(PodHash::of_host(dir.path()), Some(PodHash::Own { buckets: 16384 }));
}
