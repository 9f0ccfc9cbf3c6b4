//! A fake Kubernetes API server for tests and benchmarks: plain HTTP on 127.0.0.1 that serves the kinds the
//! exporter and `netmap-reduce` read (Pods, Services, EndpointSlices, ReplicaSets, Jobs, the controllers, and
//! Nodes) the way the real one does where it matters for a client's cost and correctness:
//!
//! - cluster-wide and namespaced collections and single objects, in full or as `PartialObjectMetadata`;
//! - paged lists, watches (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR 410) and streaming lists
//!   (`sendInitialEvents`, ended by the `k8s.io/initial-events-end` bookmark);
//! - field selectors with each kind's supported fields (400 otherwise) and label selectors, watches seeing
//!   objects enter and leave a selector as ADDED and DELETED;
//! - per client (bearer token): every request classified as the real server would serve it (watch cache or
//!   quorum read), and the bytes, objects, events and lists in flight it cost ([`Stats`]).
//!
//! Tests drive it: apply and delete objects (each bumps the resource version and becomes a watch event), and
//! inject faults: HTTP errors on the next requests (429 with `Retry-After`), refused field selectors or
//! streaming lists, dropped watch streams, expired watches (410 Gone, history compacted so a re-watch must
//! relist), and "down" (every connection closed unanswered). It runs on its own runtime thread, so sync and
//! async tests use it alike. Modules: `routes` (paths, parameters, classification), `selectors`,
//! `store` (objects and events), `watch`, `responses`, `accounting`, `server` (dispatch).

mod accounting;
mod responses;
mod routes;
mod selectors;
mod server;
mod store;
#[cfg(test)]
mod tests;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use accounting::{ANONYMOUS, ClientStats, RequestRecord, Sent, Stats, Verb};
use routes::kind_index;
use server::{Injected, Shared, StreamFault, accept_loop};

/// The running fake API server; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    /// Starts an empty server on 127.0.0.1 and a free port.
    pub fn start() -> FakeApi {
        let shared = Arc::new(Shared::new());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(accept_loop(listener, server, stopped));
            })
            .unwrap();
        FakeApi { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// Starts a server holding the objects of a YAML fixture (a List, or several documents).
    pub fn with_yaml(text: &str) -> FakeApi {
        let api = FakeApi::start();
        api.apply_yaml(text);
        api
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig that points at this server, without credentials (client [`ANONYMOUS`]); returns
    /// its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig(&dir.join("kubeconfig"), "{}")
    }

    /// Writes a kubeconfig whose bearer token is `client`, the name its requests are accounted under in
    /// [`FakeApi::stats`]; returns its path (`kubeconfig-<client>` in `dir`).
    pub fn write_kubeconfig_as(&self, dir: &Path, client: &str) -> PathBuf {
        let user = format!("{{token: {}}}", serde_json::to_string(client).unwrap());
        self.kubeconfig(&dir.join(format!("kubeconfig-{client}")), &user)
    }

    fn kubeconfig(&self, path: &Path, user: &str) -> PathBuf {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n\
             users:\n- name: fake\n  user: {user}\n",
            self.url()
        );
        std::fs::write(path, text).unwrap();
        path.to_owned()
    }

    /// Adds or replaces every served object of a YAML List (other kinds, e.g. ConfigMaps, are not served).
    pub fn apply_yaml(&self, text: &str) {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("fixture is YAML");
            match value.get("items").and_then(Value::as_array) {
                Some(items) => self.apply_all(items.iter().cloned()),
                None if !value.is_null() => self.apply(value),
                None => {}
            }
        }
    }

    /// Adds (ADDED) or replaces (MODIFIED) one object. Objects of kinds that are not served are ignored.
    pub fn apply(&self, object: Value) {
        self.apply_all([object]);
    }

    /// [`FakeApi::apply`] for many objects at once: one lock, one wake-up per kind (loading a cluster).
    pub fn apply_all(&self, objects: impl IntoIterator<Item = Value>) {
        let mut touched = [false; routes::RESOURCES.len()];
        let mut state = self.shared.lock();
        for object in objects {
            let Some(index) = object["kind"].as_str().and_then(kind_index) else { continue };
            state.store.put(index, object);
            touched[index] = true;
        }
        drop(state);
        for (index, _) in touched.iter().enumerate().filter(|(_, touched)| **touched) {
            self.shared.notifies[index].notify_waiters();
        }
    }

    /// Deletes one object (DELETED); returns whether it existed.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let Some(index) = kind_index(kind) else { return false };
        let removed = self.shared.lock().store.remove(index, &(namespace.to_owned(), name.to_owned()));
        if removed {
            self.shared.notifies[index].notify_waiters();
        }
        removed
    }

    /// The object as currently served (with its `resourceVersion`), if any.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let index = kind_index(kind)?;
        let state = self.shared.lock();
        Some(state.store.get(index, &(namespace.to_owned(), name.to_owned()))?.value())
    }

    /// The cluster's current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv
    }

    /// The next `count` requests (any verb and kind) are answered with HTTP `status`; a 429 carries
    /// `Retry-After: 1`, as the real server's priority-and-fairness sends it.
    pub fn fail_next_requests(&self, count: usize, status: u16) {
        self.fail_next_requests_retry_after(count, status, (status == 429).then_some(1));
    }

    /// [`FakeApi::fail_next_requests`] with a chosen `Retry-After` (seconds), or none.
    pub fn fail_next_requests_retry_after(&self, count: usize, status: u16, retry_after: Option<u32>) {
        let injected = (0..count).map(|_| Injected { code: status, retry_after });
        self.shared.lock().fail_next.extend(injected);
    }

    /// Answers every request with HTTP `status` (and `Retry-After`) for `duration` from now, as an API server
    /// shedding load does; then serves again.
    pub fn fail_requests_for(&self, duration: std::time::Duration, status: u16, retry_after: Option<u32>) {
        let until = std::time::Instant::now() + duration;
        self.shared.lock().fail_until = Some((until, Injected { code: status, retry_after }));
    }

    /// Answers streaming lists (`sendInitialEvents=true`) as a server with the WatchList feature off does:
    /// 422 Invalid. `false` serves them again.
    pub fn refuse_streaming_lists(&self, refuse: bool) {
        self.shared.lock().refuse_streaming_lists = refuse;
    }

    /// Answers every request with a `fieldSelector` with 400 BadRequest. `false` serves them again.
    pub fn refuse_field_selectors(&self, refuse: bool) {
        self.shared.lock().refuse_field_selectors = refuse;
    }

    /// Aborts every open watch stream mid-stream; clients resume from their last version.
    pub fn drop_watches(&self) {
        self.fault_streams(StreamFault::Drop, false);
    }

    /// Compacts the history and ends every open watch with ERROR 410 Gone: clients must relist.
    pub fn expire_watches(&self) {
        self.fault_streams(StreamFault::Expire, true);
    }

    /// Compacts the history only: a client resuming from an older version gets 410 Gone.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    /// Keeps at most `events` events per kind (10,000 unless set: about 100 MB of pod versions at most);
    /// older ones are compacted away, so a watch from before them gets 410 Gone, as from a real watch cache's
    /// window.
    pub fn set_history_limit(&self, events: usize) {
        self.shared.lock().store.set_history_limit(events);
    }

    /// How often watches that allow bookmarks get one (60 s unless set, as the real watch cache); applies to
    /// watches started afterwards.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.lock().bookmark_interval = interval;
    }

    /// "Down": every connection is closed unanswered, and open watches are dropped. `false` brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
        if down {
            self.drop_watches();
        }
    }

    /// Every request so far, as `PATH?QUERY`, with ` [metadata]` for metadata-only ones.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// How many list requests (not watches) named this collection path.
    pub fn list_count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.split('?').next() == Some(path) && !r.contains("watch=true")).count()
    }

    /// Every client's account, and the server-wide peak of concurrent lists, since the start or the last
    /// [`FakeApi::reset_stats`].
    pub fn stats(&self) -> Stats {
        self.shared.accounting.snapshot()
    }

    /// Starts the accounts afresh (lists in flight stay counted).
    pub fn reset_stats(&self) {
        self.shared.accounting.reset();
    }

    fn fault_streams(&self, fault: StreamFault, compact: bool) {
        let mut state = self.shared.lock();
        state.fault_generation += 1;
        state.fault = Some(fault);
        if compact {
            state.store.compact();
        }
        drop(state);
        self.shared.wake_all();
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
