//! What each client cost the server: every request as a [`RequestRecord`] (classified as the real API server
//! would serve it), the bytes, objects, watch events and bookmarks its responses carried — counted as the body
//! hands them to the socket, not when they are prepared — and the lists it had in flight, with the server-wide
//! peak of concurrent lists. A client is its bearer token (`FakeApi::write_kubeconfig_as`).

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The client name of requests without a bearer token.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    List,
    Watch,
    Get,
}

/// One request, as the server understood it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Since the server started.
    pub at: Duration,
    pub verb: Verb,
    /// `""` for a path the server does not serve.
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The raw query string.
    pub query: String,
    pub metadata_only: bool,
    /// Would reach etcd on a real server: a list or get without `resourceVersion`, an exact-version list, a
    /// streaming list without a version, or a later page of such a list.
    pub quorum: bool,
    /// A watch with `sendInitialEvents=true`.
    pub streaming: bool,
    /// A later page of a list (`continue`): the list was counted on its first page.
    pub continuation: bool,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub status: u16,
}

impl RequestRecord {
    /// The start of a list: a first page or a streaming list.
    pub fn starts_list(&self) -> bool {
        (self.verb == Verb::List && !self.continuation) || self.streaming
    }
}

/// What responses carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Body bytes, watch streams included (HTTP headers and chunk framing excluded).
    pub bytes: u64,
    /// Objects: list items, gets, and the objects of watch events (synthetic initial ones included).
    pub objects: u64,
    /// ADDED, MODIFIED and DELETED events on watches, synthetic initial ones included.
    pub watch_events: u64,
    /// Of `watch_events`, the synthetic ADDED events that open a streaming list or a watch from "0".
    pub initial_events: u64,
    pub bookmarks: u64,
}

impl AddAssign for Sent {
    fn add_assign(&mut self, other: Sent) {
        self.bytes += other.bytes;
        self.objects += other.objects;
        self.watch_events += other.watch_events;
        self.initial_events += other.initial_events;
        self.bookmarks += other.bookmarks;
    }
}

/// One client's account.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    pub requests: Vec<RequestRecord>,
    pub sent: Sent,
    pub by_kind: BTreeMap<&'static str, Sent>,
    pub lists_in_flight: usize,
    pub peak_lists_in_flight: usize,
}

impl ClientStats {
    /// Successful reads that reached etcd, each list counted once.
    pub fn quorum_reads(&self) -> usize {
        self.requests.iter().filter(|r| r.quorum && !r.continuation && r.status == 200).count()
    }

    /// Lists started (first pages and streaming lists), whatever their answer.
    pub fn lists(&self) -> usize {
        self.requests.iter().filter(|r| r.starts_list()).count()
    }

    /// What responses about `kind` carried.
    pub fn of_kind(&self, kind: &str) -> Sent {
        self.by_kind.get(kind).copied().unwrap_or_default()
    }
}

/// A snapshot of every account.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub clients: BTreeMap<String, ClientStats>,
    pub total: Sent,
    /// Lists being served at once, at most, since the start or the last reset.
    pub peak_concurrent_lists: usize,
    pub lists_in_flight: usize,
}

impl Stats {
    /// The account of `client` (empty if it never asked).
    pub fn client(&self, client: &str) -> ClientStats {
        self.clients.get(client).cloned().unwrap_or_default()
    }

    pub fn quorum_reads(&self) -> usize {
        self.clients.values().map(ClientStats::quorum_reads).sum()
    }

    pub fn requests(&self) -> usize {
        self.clients.values().map(|c| c.requests.len()).sum()
    }
}

#[derive(Default)]
struct Ledger {
    clients: BTreeMap<String, ClientStats>,
    total: Sent,
    in_flight: usize,
    peak: usize,
}

/// The server's books; its own lock, so counting never waits for the object store.
pub(super) struct Accounting {
    started: Instant,
    ledger: Mutex<Ledger>,
}

impl Accounting {
    pub fn new() -> Accounting {
        Accounting { started: Instant::now(), ledger: Mutex::default() }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn record(&self, client: &str, record: RequestRecord) {
        self.ledger().clients.entry(client.to_owned()).or_default().requests.push(record);
    }

    fn credit(&self, client: &str, kind: &'static str, sent: Sent) {
        let mut ledger = self.ledger();
        ledger.total += sent;
        let account = ledger.clients.entry(client.to_owned()).or_default();
        account.sent += sent;
        *account.by_kind.entry(kind).or_default() += sent;
    }

    /// Counts a list in flight until the guard is dropped.
    pub fn list_started(self: &Arc<Self>, client: &str) -> ListGuard {
        let mut ledger = self.ledger();
        ledger.in_flight += 1;
        ledger.peak = ledger.peak.max(ledger.in_flight);
        let account = ledger.clients.entry(client.to_owned()).or_default();
        account.lists_in_flight += 1;
        account.peak_lists_in_flight = account.peak_lists_in_flight.max(account.lists_in_flight);
        ListGuard { accounting: self.clone(), client: client.to_owned() }
    }

    pub fn snapshot(&self) -> Stats {
        let ledger = self.ledger();
        Stats {
            clients: ledger.clients.clone(),
            total: ledger.total,
            peak_concurrent_lists: ledger.peak,
            lists_in_flight: ledger.in_flight,
        }
    }

    /// Forgets what was counted; lists in flight stay counted (and become the peaks).
    pub fn reset(&self) {
        let mut ledger = self.ledger();
        ledger.total = Sent::default();
        ledger.peak = ledger.in_flight;
        for account in ledger.clients.values_mut() {
            *account = ClientStats {
                lists_in_flight: account.lists_in_flight,
                peak_lists_in_flight: account.lists_in_flight,
                ..ClientStats::default()
            };
        }
    }
}

/// A list in flight, from its request to its last byte (or the client leaving).
pub(super) struct ListGuard {
    accounting: Arc<Accounting>,
    client: String,
}

impl Drop for ListGuard {
    fn drop(&mut self) {
        let mut ledger = self.accounting.ledger();
        ledger.in_flight = ledger.in_flight.saturating_sub(1);
        if let Some(account) = ledger.clients.get_mut(&self.client) {
            account.lists_in_flight = account.lists_in_flight.saturating_sub(1);
        }
    }
}

/// A piece of a response body and what it carries.
pub(super) struct Chunk {
    pub bytes: Bytes,
    /// Objects, events and bookmarks in `bytes` (its `bytes` field is filled by the meter).
    pub sent: Sent,
    /// The last piece of a list: the list is no longer in flight once it is out.
    pub ends_list: bool,
}

impl Chunk {
    pub fn plain(bytes: Bytes) -> Chunk {
        Chunk { bytes, sent: Sent::default(), ends_list: false }
    }
}

/// Credits chunks to one client and kind as they go out.
#[derive(Clone)]
pub(super) struct Meter {
    pub accounting: Arc<Accounting>,
    pub client: Arc<str>,
    pub kind: &'static str,
}

impl Meter {
    pub fn count(&self, chunk: &Chunk) {
        let sent = Sent { bytes: chunk.bytes.len() as u64, ..chunk.sent };
        self.accounting.credit(&self.client, self.kind, sent);
    }
}
