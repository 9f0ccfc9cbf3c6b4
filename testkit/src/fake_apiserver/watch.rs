//! Watches as the real watch cache serves them: the current state first when asked (a streaming list ends it
//! with the `k8s.io/initial-events-end` bookmark), then the kind's events after the watch's version, filtered
//! by selectors the way the cache does it (an object entering the selector is ADDED, one leaving it DELETED),
//! bookmarks every interval and 2 s before `timeoutSeconds` ends the watch, and the injected faults.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::accounting::{Chunk, ListGuard, Meter, Sent};
use super::responses::{Body, event_chunks, metered, status_json};
use super::routes::RESOURCES;
use super::server::{Shared, State, StreamFault};
use super::store::{Event, Filter};

/// What a watch asked for.
pub(super) struct WatchRequest {
    pub index: usize,
    pub filter: Filter,
    pub metadata_only: bool,
    /// `None`: send the current state first (synthetic ADDED events), as for `resourceVersion` "0" or unset.
    pub from: Option<u64>,
    /// `sendInitialEvents=true`: a bookmark marks the end of the state.
    pub initial_events_end: bool,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
}

/// Starts the watch's task and answers with its stream. `guard` counts a streaming list in flight until its
/// initial-events-end bookmark has gone out.
pub(super) fn watch(
    shared: Arc<Shared>,
    request: WatchRequest,
    meter: Meter,
    guard: Option<ListGuard>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<io::Result<Chunk>>(16);
    tokio::spawn(async move { run(&shared, &request, &tx).await });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    metered(200, chunks, meter, guard)
}

/// Ends (`None`) when the client leaves, a fault ends the stream, or the timeout passes.
async fn run(shared: &Shared, request: &WatchRequest, tx: &mpsc::Sender<io::Result<Chunk>>) -> Option<()> {
    let (generation, mut sent, interval) = send_state(shared, request, tx).await?;
    let deadline = request.timeout.map(|t| Instant::now() + t);
    let mut next_bookmark = next_bookmark_at(interval, deadline);
    loop {
        let notified = shared.notifies[request.index].notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let step = next_step(&shared.lock(), request, generation, &mut sent);
        send_step(tx, step).await?;
        tokio::select! {
            () = &mut notified => {}
            // A client gone between changes ends the task now, not at the next change.
            () = tx.closed() => return None,
            () = sleep_until(next_bookmark), if request.bookmarks => {
                send(tx, bookmark(request, sent, false)).await?;
                next_bookmark = next_bookmark_at(interval, deadline);
            }
            () = sleep_until(deadline.unwrap_or(next_bookmark)), if deadline.is_some() => return None,
        }
    }
}

/// The opening: the current state when asked for (the snapshot and the version to go on from are taken under
/// one lock, so no change falls between them), then a streaming list's end bookmark. Returns the fault
/// generation, that version and the bookmark interval.
async fn send_state(
    shared: &Shared,
    request: &WatchRequest,
    tx: &mpsc::Sender<io::Result<Chunk>>,
) -> Option<(u64, u64, Duration)> {
    let (generation, sent, initial, interval) = {
        let state = shared.lock();
        let initial: Vec<Bytes> = match request.from {
            Some(_) => Vec::new(),
            None => state
                .store
                .select(request.index, &request.filter)
                .map(|s| s.form(request.metadata_only).clone())
                .collect(),
        };
        (state.fault_generation, request.from.unwrap_or(state.store.rv), initial, state.bookmark_interval)
    };
    for chunk in event_chunks(initial.iter().map(added), true) {
        send(tx, chunk).await?;
    }
    if request.initial_events_end {
        send(tx, bookmark(request, sent, true)).await?;
    }
    Some((generation, sent, interval))
}

/// A synthetic ADDED event of the state (a fn, not a closure: the iterator lives across awaits).
fn added(object: &Bytes) -> (&'static str, &Bytes) {
    ("ADDED", object)
}

/// Sends what a step owes; `None` when the stream ends with it.
async fn send_step(tx: &mpsc::Sender<io::Result<Chunk>>, step: Step) -> Option<()> {
    match step {
        Step::Events(chunks) => {
            for chunk in chunks {
                send(tx, chunk).await?;
            }
            Some(())
        }
        Step::Expired(chunk) => send(tx, chunk).await.and(None),
        Step::Abort => {
            let _ = tx.send(Err(io::Error::other("injected stream drop"))).await;
            None
        }
    }
}

async fn send(tx: &mpsc::Sender<io::Result<Chunk>>, chunk: Chunk) -> Option<()> {
    tx.send(Ok(chunk)).await.ok()
}

/// Every `interval`, and 2 s before the deadline (as the real cacher does, so a client resumes from there).
fn next_bookmark_at(interval: Duration, deadline: Option<Instant>) -> Instant {
    let regular = Instant::now() + interval;
    match deadline.and_then(|d| d.checked_sub(Duration::from_secs(2))) {
        Some(before_end) if before_end > Instant::now() => regular.min(before_end),
        _ => regular,
    }
}

enum Step {
    Events(Vec<Chunk>),
    /// ERROR 410, then a clean end: the client must relist.
    Expired(Chunk),
    /// Cut mid-stream.
    Abort,
}

/// The events owed since `sent`, or how the stream must end.
fn next_step(state: &State, request: &WatchRequest, generation: u64, sent: &mut u64) -> Step {
    if state.fault_generation != generation {
        match state.fault {
            Some(StreamFault::Expire) => return Step::Expired(expired(*sent, state.store.compacted())),
            Some(StreamFault::Drop) | None => return Step::Abort,
        }
    }
    let events = match state.store.events_after(request.index, *sent) {
        Ok(events) => events,
        Err(compacted) => return Step::Expired(expired(*sent, compacted)),
    };
    let kind = RESOURCES[request.index].kind;
    let lines: Vec<(&'static str, Bytes)> =
        events.filter_map(|event| as_seen(event, &request.filter, kind, request.metadata_only)).collect();
    *sent = state.store.rv;
    Step::Events(event_chunks(lines.iter().map(|(ty, object)| (*ty, object)), false).collect())
}

/// How a watch with `filter` sees `event`, like the watch cache: by whether the object matched before and after.
fn as_seen(event: &Event, filter: &Filter, kind: &str, metadata_only: bool) -> Option<(&'static str, Bytes)> {
    let now = event.ty != "DELETED" && filter.selects(&event.object);
    let before = event.prev.as_ref().is_some_and(|prev| filter.selects(prev));
    let form = |stored: &super::store::Stored| stored.form(metadata_only).clone();
    match (before, now) {
        (false, true) => Some(("ADDED", form(&event.object))),
        (true, true) => Some(("MODIFIED", form(&event.object))),
        (true, false) if event.ty == "DELETED" => Some(("DELETED", form(&event.object))),
        // Left the selector: its last matching state, with this event's version.
        (true, false) => event.prev.as_ref().map(|prev| ("DELETED", form(&prev.restamped(kind, event.rv)))),
        (false, false) => None,
    }
}

fn expired(sent: u64, compacted: u64) -> Chunk {
    let message = format!("too old resource version: {sent} ({compacted})");
    let status = status_json(410, "Expired", &message, None);
    Chunk::plain(Bytes::from(format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n")))
}

fn bookmark(request: &WatchRequest, rv: u64, initial_events_end: bool) -> Chunk {
    let resource = &RESOURCES[request.index];
    let (kind, api_version) = match request.metadata_only {
        true => ("PartialObjectMetadata", "meta.k8s.io/v1"),
        false => (resource.kind, resource.api_version),
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    let line = format!("{}\n", json!({"type": "BOOKMARK", "object": object}));
    Chunk { bytes: Bytes::from(line), sent: Sent { bookmarks: 1, ..Sent::default() }, ends_list: initial_events_end }
}
