//! One kind's watch: a kube-rs watcher whose events are projected into records and applied to the index in
//! batches, with the list strategy of docs/design.md §7 (a streaming list, or a list from the watch cache if the
//! server refuses streaming lists) and jittered backoff between failures (`pacing`).

use std::fmt::Debug;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use ::kube::Resource;
use ::kube::api::{Api, PartialObjectMeta};
use ::kube::runtime::watcher::{self, Event};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::pacing::{Backoff, Jitter};
use super::{Kind, WatchStatus};
use crate::sources::inventory::Inventory;
use crate::sources::inventory::objects::{NodeRecord, OwnerRecord, PodRecord, ServiceRecord, SliceRecord};

/// A streaming list that has not delivered its end within this long is given up for a list: a server that
/// ignored `sendInitialEvents` instead of refusing it would never send the end.
const STREAMING_LIST_LIMIT: Duration = Duration::from_secs(120);

/// Events applied under one write lock: large enough that a 100k-pod list takes few locks, small enough that
/// a lookup never waits more than about a millisecond.
const BATCH: usize = 512;

/// Namespace (empty for a cluster-scoped object) and name.
pub(super) type Key = (Arc<str>, Arc<str>);

/// A projected object.
#[derive(Debug)]
pub(super) enum Record {
    Pod(PodRecord),
    Service(ServiceRecord),
    Slice(SliceRecord),
    Owner(OwnerRecord),
    /// The agent's Node.
    Node(NodeRecord),
}

impl Record {
    /// Returns whether the object is new to the index.
    fn upsert(self, inventory: &mut Inventory) -> bool {
        match self {
            Record::Pod(r) => inventory.upsert_pod(r),
            Record::Service(r) => inventory.upsert_service(r),
            Record::Slice(r) => inventory.upsert_slice(r),
            Record::Owner(r) => inventory.upsert_owner(r),
            Record::Node(r) => inventory.upsert_node(r),
        }
    }
}

/// A watch event, projected.
#[derive(Debug)]
enum Change {
    /// A (re)list starts.
    Relist,
    /// An object of the list.
    Listed(Record),
    /// The list is complete.
    RelistDone,
    /// Added or modified while watching.
    Upsert(Record),
    /// Deleted while watching.
    Delete(Key),
}

/// What a batch did to the sync state of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transition {
    Relisting { first: bool },
    Synced,
}

/// One kind's share of the index. The watch task is the only writer of its kind, so it can count its objects
/// without asking the index.
#[derive(Debug)]
struct KindIndex {
    kind: Kind,
    /// The index's upsert stamp when the list in progress started; `Some` between `Relist` and `RelistDone`.
    /// Whatever of this kind was last upserted before it and is not named by the list is gone.
    listing_since: Option<u64>,
    lists: u64,
    /// Lists completed.
    lists_done: u64,
    objects: usize,
}

impl KindIndex {
    fn new(kind: Kind) -> KindIndex {
        KindIndex { kind, listing_since: None, lists: 0, lists_done: 0, objects: 0 }
    }

    fn apply(&mut self, inventory: &mut Inventory, change: Change) -> Option<Transition> {
        match change {
            Change::Relist => {
                self.listing_since = Some(inventory.stamp());
                self.lists += 1;
                return Some(Transition::Relisting { first: self.lists == 1 });
            }
            Change::Listed(record) | Change::Upsert(record) => {
                self.objects += usize::from(record.upsert(inventory));
            }
            Change::RelistDone => {
                self.lists_done += 1;
                let since = self.listing_since.take();
                if let (Some(since), Some(collection)) = (since, self.kind.collection()) {
                    for stale in inventory.upserted_before(collection, since) {
                        self.objects -= usize::from(self.kind.remove(inventory, &stale));
                    }
                }
                return Some(Transition::Synced);
            }
            Change::Delete(key) => self.objects -= usize::from(self.kind.remove(inventory, &key)),
        }
        None
    }
}

/// How one kind is watched.
#[derive(Clone, Debug)]
pub(super) struct WatchSpec {
    kind: Kind,
    /// The field selector: this node's pods, or this node.
    fields: Option<String>,
    /// Before the first request.
    start_delay: Duration,
}

impl WatchSpec {
    /// The watch of `kind` for an agent of `node` (`None`: every pod).
    pub(super) fn new(kind: Kind, node: Option<&str>, start_delay: Duration) -> WatchSpec {
        let fields = match (kind, node) {
            (Kind::Pod, Some(node)) => Some(format!("spec.nodeName={node}")),
            (Kind::Node, Some(node)) => Some(format!("metadata.name={node}")),
            _ => None,
        };
        WatchSpec { kind, fields, start_delay }
    }

    /// The watcher configuration: a streaming list (`sendInitialEvents`, served from the watch cache from
    /// `resourceVersion=0`), or, where the server refuses those, a list from the watch cache
    /// (`resourceVersion=0`, NotOlderThan). Never a quorum read.
    fn config(&self, streaming: bool) -> watcher::Config {
        // kube-rs drops `resourceVersion=0` from a list that has a page size (the default 500), which makes it a
        // quorum read; lists from the watch cache are not paged by the server anyway.
        let config = match streaming {
            true => watcher::Config::default().streaming_lists(),
            false => watcher::Config { page_size: None, ..watcher::Config::default().any_semantic() },
        };
        match &self.fields {
            Some(fields) => config.fields(fields),
            None => config,
        }
    }
}

/// What the server refused, if the error says it refused something: a streaming list (a server without the
/// WatchList feature answers 422, or 400 naming `sendInitialEvents`), or the field selector (400).
fn refusal(error: &watcher::Error, streaming: bool) -> Option<Refusal> {
    let (watcher::Error::WatchStartFailed(::kube::Error::Api(status))
    | watcher::Error::InitialListFailed(::kube::Error::Api(status))) = error
    else {
        return None;
    };
    let streaming_refused = status.code == 422 || status.message.contains("sendInitialEvents");
    match status.code {
        400 | 422 if streaming && streaming_refused => Some(Refusal::Streaming),
        400 if status.message.contains("field label") || status.message.contains("fieldSelector") => {
            Some(Refusal::FieldSelector)
        }
        _ => None,
    }
}

/// Whether an event shows the watch working again, so the next failure backs off from the start.
fn delivers<K>(event: &Event<K>) -> bool {
    matches!(event, Event::InitDone | Event::Apply(_) | Event::Delete(_))
}

pub(super) fn project_pod(pod: &Pod) -> Option<Record> {
    PodRecord::from_pod(pod).map(Record::Pod)
}

pub(super) fn project_service(service: &Service) -> Option<Record> {
    ServiceRecord::from_service(service).map(Record::Service)
}

pub(super) fn project_slice(slice: &EndpointSlice) -> Option<Record> {
    SliceRecord::from_slice(slice).map(Record::Slice)
}

pub(super) fn project_owner<K: Resource<DynamicType = ()>>(meta: &PartialObjectMeta<K>) -> Option<Record> {
    OwnerRecord::from_meta(&K::kind(&()), &meta.metadata).map(Record::Owner)
}

pub(super) fn project_node(node: &Node) -> Option<Record> {
    NodeRecord::from_node(node).map(Record::Node)
}

/// Where a watch's events come from (an `Api<PartialObjectMeta<K>>` watches metadata only: owners).
pub(super) trait EventSource<T>: Send + 'static {
    fn events(&self, config: watcher::Config) -> BoxStream<'static, watcher::Result<Event<T>>>;
}

impl<K> EventSource<K> for Api<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn events(&self, config: watcher::Config) -> BoxStream<'static, watcher::Result<Event<K>>> {
        watcher::watcher(self.clone(), config).boxed()
    }
}

/// Runs one kind's watch forever: events are projected, then applied in batches under the write lock. After a
/// failure the watch waits its backoff before it asks again. What the server refuses is given up for good: a
/// streaming list for a list from the watch cache, a field selector for the whole kind (the agent then keeps
/// what it needs of it, as with `--remote-pods=watch`).
pub(super) async fn run<T: Resource + Send + 'static>(
    source: impl EventSource<T>,
    mut spec: WatchSpec,
    project: fn(&T) -> Option<Record>,
    inventory: Arc<RwLock<Inventory>>,
    status: WatchStatus,
) {
    tokio::time::sleep(spec.start_delay).await;
    let mut watch =
        Watch { index: KindIndex::new(spec.kind), backoff: Backoff::new(Jitter::random()), streaming: true };
    loop {
        let mut events = source.events(spec.config(watch.streaming)).ready_chunks(BATCH);
        let mut deadline = Instant::now() + STREAMING_LIST_LIMIT;
        while let Some(batch) = watch.next_batch(&mut events, deadline).await {
            match watch.handle(batch, project, &inventory, &status) {
                Step::Go => {}
                Step::Failed(None) => {
                    tokio::time::sleep(watch.backoff.next_delay()).await;
                    deadline = Instant::now() + STREAMING_LIST_LIMIT;
                }
                Step::Failed(Some(refusal)) => {
                    watch.give_up(refusal, &mut spec);
                    break;
                }
            }
        }
    }
}

/// One watch's state across the streams it opens.
struct Watch {
    index: KindIndex,
    backoff: Backoff,
    /// Lists are streaming lists, until the server refuses one.
    streaming: bool,
}

/// What to do after a batch.
enum Step {
    Go,
    /// Something failed: back off before asking again, or ask differently if the server refused how.
    Failed(Option<Refusal>),
}

/// What a server may refuse of a watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// Streaming lists (a server without the WatchList feature answers 422).
    Streaming,
    /// The field selector (400, `field label not supported`).
    FieldSelector,
}

impl Watch {
    /// The next batch of events; `None` when the stream ended, or when a streaming list did not end by
    /// `deadline` (the watch then lists instead).
    async fn next_batch<S: futures_util::Stream + Unpin>(
        &mut self,
        events: &mut S,
        deadline: Instant,
    ) -> Option<S::Item> {
        if !self.streaming || self.index.lists_done > 0 {
            return events.next().await;
        }
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        if next.is_err() {
            let kind = self.index.kind.name();
            tracing::warn!(kind, "streaming list never ended; listing from the watch cache");
            self.streaming = false;
        }
        next.ok().flatten()
    }

    fn handle<T: Resource>(
        &mut self,
        batch: Vec<watcher::Result<Event<T>>>,
        project: fn(&T) -> Option<Record>,
        inventory: &RwLock<Inventory>,
        status: &WatchStatus,
    ) -> Step {
        let (mut failed, mut refused, mut working) = (false, None, false);
        let mut changes = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(event) => {
                    working |= delivers(&event);
                    changes.extend(to_change(event, project));
                }
                Err(e) => {
                    refused = refused.or(refusal(&e, self.streaming));
                    failed = true;
                    status.error(self.index.kind, &e);
                }
            }
        }
        apply(&mut self.index, inventory, status, changes);
        if working {
            self.backoff.reset();
        }
        if failed { Step::Failed(refused) } else { Step::Go }
    }

    /// Asks differently from now on.
    fn give_up(&mut self, refusal: Refusal, spec: &mut WatchSpec) {
        let kind = self.index.kind.name();
        match refusal {
            Refusal::Streaming => {
                tracing::info!(kind, "the API server refuses streaming lists; listing from its watch cache");
                self.streaming = false;
            }
            Refusal::FieldSelector => {
                let fields = spec.fields.take();
                tracing::warn!(
                    kind,
                    ?fields,
                    "the API server refuses the field selector; watching every object of the kind"
                );
            }
        }
    }
}

fn apply(index: &mut KindIndex, inventory: &RwLock<Inventory>, status: &WatchStatus, changes: Vec<Change>) {
    let transitions: Vec<Transition> = {
        let mut inventory = inventory.write().unwrap_or_else(PoisonError::into_inner);
        changes.into_iter().filter_map(|change| index.apply(&mut inventory, change)).collect()
    };
    for transition in transitions {
        status.transition(index.kind, transition);
    }
    status.observer.objects(index.kind, index.objects);
}

fn to_change<K: Resource>(event: Event<K>, project: fn(&K) -> Option<Record>) -> Option<Change> {
    match event {
        Event::Init => Some(Change::Relist),
        Event::InitApply(object) => project(&object).map(Change::Listed),
        Event::InitDone => Some(Change::RelistDone),
        Event::Apply(object) => project(&object).map(Change::Upsert),
        Event::Delete(object) => key_of(object.meta()).map(Change::Delete),
    }
}

fn key_of(meta: &ObjectMeta) -> Option<Key> {
    Some((Arc::from(meta.namespace.as_deref().unwrap_or("")), Arc::from(meta.name.as_deref()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str) -> Record {
        Record::Pod(PodRecord { ips: vec![ip.parse().unwrap()], ..PodRecord::bare(Arc::from("shop"), Arc::from(name)) })
    }

    fn key(name: &str) -> Key {
        (Arc::from("shop"), Arc::from(name))
    }

    #[test]
    fn a_relist_leaves_exactly_the_listed_objects() {
        let mut inventory = Inventory::new();
        let mut index = KindIndex::new(Kind::Pod);
        assert_eq!(index.apply(&mut inventory, Change::Relist), Some(Transition::Relisting { first: true }));
        index.apply(&mut inventory, Change::Listed(pod("a", "10.0.0.1")));
        index.apply(&mut inventory, Change::Listed(pod("b", "10.0.0.2")));
        assert_eq!(index.apply(&mut inventory, Change::RelistDone), Some(Transition::Synced));
        index.apply(&mut inventory, Change::Upsert(pod("c", "10.0.0.3")));
        assert_eq!(inventory.counts().pods, 3);

        // The watch was away: `a` was deleted and `b` moved meanwhile. Until the list completes, the last good
        // index keeps answering.
        assert_eq!(index.apply(&mut inventory, Change::Relist), Some(Transition::Relisting { first: false }));
        index.apply(&mut inventory, Change::Listed(pod("b", "10.0.0.9")));
        assert!(inventory.pod("shop", "a").is_some());
        index.apply(&mut inventory, Change::Listed(pod("c", "10.0.0.3")));
        index.apply(&mut inventory, Change::RelistDone);
        assert!(inventory.pod("shop", "a").is_none());
        assert_eq!(inventory.pods_with_ip(&"10.0.0.1".parse().unwrap()).count(), 0);
        assert_eq!(inventory.pods_with_ip(&"10.0.0.2".parse().unwrap()).count(), 0);
        assert_eq!(inventory.pods_with_ip(&"10.0.0.9".parse().unwrap()).count(), 1);
        assert!(inventory.pod("shop", "b").is_some() && inventory.pod("shop", "c").is_some());
        assert_eq!((index.objects, inventory.counts().pods), (2, 2));
    }

    #[test]
    fn deletes_remove_owners_of_their_own_kind_only() {
        let mut inventory = Inventory::new();
        let owner = |kind: &str| OwnerRecord {
            namespace: Arc::from("shop"),
            kind: Arc::from(kind),
            name: Arc::from("x"),
            owner: None,
        };
        let mut jobs = KindIndex::new(Kind::Job);
        let mut sets = KindIndex::new(Kind::ReplicaSet);
        jobs.apply(&mut inventory, Change::Upsert(Record::Owner(owner("Job"))));
        sets.apply(&mut inventory, Change::Upsert(Record::Owner(owner("ReplicaSet"))));
        jobs.apply(&mut inventory, Change::Delete(key("x")));
        assert!(inventory.owner("shop", "Job", "x").is_none());
        assert!(inventory.owner("shop", "ReplicaSet", "x").is_some());
    }
}
