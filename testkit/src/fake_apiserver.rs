//! A fake Kubernetes API server for tests and benchmarks: plain HTTP on 127.0.0.1, serving what the exporter
//! watches (Pods, Services, EndpointSlices, ReplicaSets, Jobs; and the controllers netmap-reduce lists) the way kube-rs expects it: paged lists with
//! `metadata.resourceVersion` and `continue`, chunked newline-delimited watch events (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR 410), and the `PartialObjectMetadata` forms for metadata-only requests.
//!
//! Tests drive it: apply and delete objects (each bumps the resource version and becomes a watch event), and
//! inject faults: HTTP errors on the next requests, dropped watch streams, expired watches (410 Gone, history
//! compacted so a re-watch must relist), and "down" (every connection closed unanswered). It runs on its own
//! runtime thread, so sync and async tests use it alike.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A served collection: kind, request path, apiVersion.
/// The controllers at the end are what `netmap-reduce --format networkpolicy --kubeconfig` lists for selectors.
const RESOURCES: [(&str, &str, &str); 9] = [
    ("Pod", "/api/v1/pods", "v1"),
    ("Service", "/api/v1/services", "v1"),
    ("EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices", "discovery.k8s.io/v1"),
    ("ReplicaSet", "/apis/apps/v1/replicasets", "apps/v1"),
    ("Job", "/apis/batch/v1/jobs", "batch/v1"),
    ("Deployment", "/apis/apps/v1/deployments", "apps/v1"),
    ("StatefulSet", "/apis/apps/v1/statefulsets", "apps/v1"),
    ("DaemonSet", "/apis/apps/v1/daemonsets", "apps/v1"),
    ("CronJob", "/apis/batch/v1/cronjobs", "batch/v1"),
];

/// An object as served: full JSON and its `PartialObjectMetadata` form, both with the resource version.
#[derive(Clone)]
struct Stored {
    full: Arc<str>,
    meta: Arc<str>,
}

struct Event {
    rv: u64,
    kind: &'static str,
    ty: &'static str,
    object: Stored,
}

/// How open watch streams end when a fault is injected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StreamFault {
    /// Aborted mid-stream, without the final chunk.
    Drop,
    /// An ERROR event with code 410, then a clean end.
    Expire,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<(String, String), Stored>>,
    events: Vec<Event>,
    /// Watches from a version before this one are answered 410 Gone (the history was compacted).
    compacted: u64,
    fail_next: VecDeque<u16>,
    down: bool,
    fault_generation: u64,
    fault: Option<StreamFault>,
    requests: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
        let shared =
            Arc::new(Shared { state: Mutex::new(State { rv: 1, ..State::default() }), changed: Notify::new() });
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

    /// Writes a kubeconfig that points at this server; returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n\
             users:\n- name: fake\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Adds or replaces every served object of a YAML List (other kinds, e.g. ConfigMaps, are not served).
    pub fn apply_yaml(&self, text: &str) {
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("fixture is YAML");
            match value.get("items").and_then(Value::as_array) {
                Some(items) => items.iter().for_each(|item| self.apply(item.clone())),
                None if !value.is_null() => self.apply(value),
                None => {}
            }
        }
    }

    /// Adds (ADDED) or replaces (MODIFIED) one object. Objects of kinds that are not served are ignored.
    pub fn apply(&self, object: Value) {
        let mut state = self.shared.lock();
        let Some(kind) = served_kind(&object) else { return };
        let key = key_of(&object);
        let ty = if state.objects.get(kind).is_some_and(|m| m.contains_key(&key)) { "MODIFIED" } else { "ADDED" };
        state.record(kind, ty, key, object);
        drop(state);
        self.shared.changed.notify_waiters();
    }

    /// Deletes one object (DELETED); returns whether it existed.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(kind) = RESOURCES.iter().map(|r| r.0).find(|k| *k == kind) else { return false };
        let key = (namespace.to_owned(), name.to_owned());
        let Some(old) = state.objects.get_mut(kind).and_then(|m| m.remove(&key)) else { return false };
        let object: Value = serde_json::from_str(&old.full).unwrap();
        state.record(kind, "DELETED", key, object);
        drop(state);
        self.shared.changed.notify_waiters();
        true
    }

    /// The next `count` requests (lists or watches, any kind) are answered with HTTP `status`.
    pub fn fail_next_requests(&self, count: usize, status: u16) {
        self.shared.lock().fail_next.extend(std::iter::repeat_n(status, count));
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
        let mut state = self.shared.lock();
        state.compacted = state.rv;
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

    fn fault_streams(&self, fault: StreamFault, compact: bool) {
        let mut state = self.shared.lock();
        state.fault_generation += 1;
        state.fault = Some(fault);
        if compact {
            state.compacted = state.rv;
        }
        drop(state);
        self.shared.changed.notify_waiters();
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

impl State {
    fn record(&mut self, kind: &'static str, ty: &'static str, key: (String, String), mut object: Value) {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let meta =
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]});
        let stored = Stored { full: Arc::from(object.to_string()), meta: Arc::from(meta.to_string()) };
        let objects = self.objects.entry(kind).or_default();
        if ty == "DELETED" {
            objects.remove(&key);
        } else {
            objects.insert(key, stored.clone());
        }
        self.events.push(Event { rv: self.rv, kind, ty, object: stored });
    }
}

fn served_kind(object: &Value) -> Option<&'static str> {
    let kind = object.get("kind")?.as_str()?;
    RESOURCES.iter().map(|r| r.0).find(|k| *k == kind)
}

fn key_of(object: &Value) -> (String, String) {
    let field = |f: &str| object["metadata"][f].as_str().unwrap_or_default().to_owned();
    (field("namespace"), field("name"))
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted { Ok((stream, _)) => stream, Err(_) => continue },
        };
        if shared.lock().down {
            drop(stream);
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// One request: a list or a watch of a served collection.
async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, std::io::Error> {
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let meta_only =
        req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("as=PartialObjectMeta"));
    let injected = {
        let mut state = shared.lock();
        if state.down {
            // Closes the connection unanswered, as a dead server would (the client may hold a pooled one).
            return Err(std::io::Error::other("apiserver down"));
        }
        let form = if meta_only { " [metadata]" } else { "" };
        state.requests.push(format!("{path}?{}{form}", req.uri().query().unwrap_or_default()));
        state.fail_next.pop_front()
    };
    if let Some(code) = injected {
        return Ok(status_response(code, "injected fault"));
    }
    let Some(&(kind, _, api_version)) = RESOURCES.iter().find(|r| r.1 == path) else {
        return Ok(status_response(404, "the server could not find the requested resource"));
    };
    let response = if query.get("watch").map(String::as_str) == Some("true") {
        let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
        watch(shared, kind, api_version, from, meta_only)
    } else {
        let limit: usize = query.get("limit").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
        list(&shared.lock(), kind, api_version, limit, query.get("continue").map(String::as_str), meta_only)
    };
    Ok(response)
}

/// One page of a list. The continue token carries the list's version and the last key, hex-encoded.
fn list(
    state: &State,
    kind: &str,
    api_version: &str,
    limit: usize,
    token: Option<&str>,
    meta_only: bool,
) -> Response<Body> {
    let (list_rv, after) = match token.and_then(|t| t.split_once('.')) {
        Some((rv, key)) => (rv.to_owned(), Some(unhex(key))),
        None => (state.rv.to_string(), None),
    };
    let empty = BTreeMap::new();
    let objects = state.objects.get(kind).unwrap_or(&empty);
    let mut items = Vec::new();
    let mut last = None;
    let range = match &after {
        Some(key) => objects.range::<(String, String), _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded)),
        None => objects.range::<(String, String), _>(..),
    };
    let mut more = false;
    for (key, stored) in range {
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(if meta_only { stored.meta.clone() } else { stored.full.clone() });
        last = Some(key);
    }
    let next = match (more, last) {
        (true, Some((ns, name))) => format!(",\"continue\":\"{list_rv}.{}\"", hex(&format!("{ns}/{name}"))),
        _ => String::new(),
    };
    let (list_kind, list_api) = if meta_only {
        ("PartialObjectMetadataList".to_owned(), "meta.k8s.io/v1")
    } else {
        (format!("{kind}List"), api_version)
    };
    let body = format!(
        "{{\"kind\":\"{list_kind}\",\"apiVersion\":\"{list_api}\",\"metadata\":{{\"resourceVersion\":\"{list_rv}\"{next}}},\"items\":[{}]}}",
        items.join(",")
    );
    json_response(StatusCode::OK, Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed_unsync())
}

/// A watch: the events after `from`, then new ones as they happen, until a fault or the client leaves.
fn watch(
    shared: Arc<Shared>,
    kind: &'static str,
    api_version: &'static str,
    from: u64,
    meta_only: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    tokio::spawn(async move {
        let generation = shared.lock().fault_generation;
        let mut sent = from;
        let mut bookmarked = false;
        loop {
            let notified = shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let (lines, end) = next_lines(&shared.lock(), kind, generation, &mut sent, meta_only);
            for line in lines {
                if tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_err() {
                    return;
                }
            }
            match end {
                Some(StreamFault::Drop) => {
                    let _ = tx.send(Err(std::io::Error::other("injected stream drop"))).await;
                    return;
                }
                Some(StreamFault::Expire) => return,
                None => {}
            }
            if !bookmarked {
                bookmarked = true;
                let line = format!(
                    "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"resourceVersion\":\"{sent}\"}}}}}}\n"
                );
                if tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_err() {
                    return;
                }
            }
            notified.await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) });
    json_response(StatusCode::OK, StreamBody::new(stream).boxed_unsync())
}

/// The lines a watch owes its client, and whether it must end.
fn next_lines(
    state: &State,
    kind: &str,
    generation: u64,
    sent: &mut u64,
    meta_only: bool,
) -> (Vec<String>, Option<StreamFault>) {
    let expired = match state.fault {
        _ if state.fault_generation == generation => state.compacted > *sent,
        Some(StreamFault::Drop) | None => return (Vec::new(), Some(StreamFault::Drop)),
        Some(StreamFault::Expire) => true,
    };
    if expired {
        let message = format!("too old resource version: {sent} ({})", state.compacted);
        let status = status_json(410, "Expired", &message);
        return (vec![format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n")], Some(StreamFault::Expire));
    }
    let start = state.events.partition_point(|e| e.rv <= *sent);
    let lines = state.events[start..]
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            let object = if meta_only { &e.object.meta } else { &e.object.full };
            format!("{{\"type\":\"{}\",\"object\":{object}}}\n", e.ty)
        })
        .collect();
    *sent = state.rv;
    (lines, None)
}

fn status_json(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code})
    .to_string()
}

fn status_response(code: u16, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = status_json(code, status.canonical_reason().unwrap_or("Error"), message);
    json_response(status, Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed_unsync())
}

fn json_response(status: StatusCode, body: Body) -> Response<Body> {
    Response::builder().status(status).header("content-type", "application/json").body(body).unwrap()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> (String, String) {
    let bytes: Vec<u8> =
        (0..text.len() / 2).filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    let joined = String::from_utf8_lossy(&bytes).into_owned();
    let (ns, name) = joined.split_once('/').unwrap_or_default();
    (ns.to_owned(), name.to_owned())
}
