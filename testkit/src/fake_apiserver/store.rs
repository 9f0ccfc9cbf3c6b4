//! The objects and their history: per kind, the current objects (each serialized once per version, in full
//! and as `PartialObjectMetadata`, with its selectable fields and labels extracted) and the events since the
//! last compaction, so a watch finds its kind's events by version without looking at any other kind's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::routes::RESOURCES;
use super::selectors::{FieldSelector, Fields, LabelSelector, fields_of, labels_of};

/// `(namespace, name)`; the namespace is `""` for cluster-scoped kinds.
pub(super) type Key = (String, String);

/// Events kept per kind unless [`Store::set_history_limit`] says otherwise. The real watch cache keeps a
/// window of recent events too; a watch from before the window gets 410 Gone and relists.
pub(super) const DEFAULT_HISTORY_LIMIT: usize = 10_000;

/// One version of an object, as served.
#[derive(Debug)]
pub(super) struct Stored {
    pub full: Bytes,
    pub meta: Bytes,
    pub fields: Fields,
    pub labels: BTreeMap<String, String>,
}

impl Stored {
    fn new(kind: &str, mut object: Value, rv: u64) -> Stored {
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let meta = format!(
            "{{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"PartialObjectMetadata\",\"metadata\":{}}}",
            object["metadata"]
        );
        Stored {
            full: Bytes::from(object.to_string()),
            meta: Bytes::from(meta),
            fields: fields_of(kind, &object),
            labels: labels_of(&object),
        }
    }

    /// This version with resource version `rv`: what a DELETED event carries.
    pub fn restamped(&self, kind: &str, rv: u64) -> Stored {
        Stored::new(kind, self.value(), rv)
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.full).expect("stored objects are JSON")
    }

    /// The form a request asked for.
    pub fn form(&self, metadata_only: bool) -> &Bytes {
        if metadata_only { &self.meta } else { &self.full }
    }

    pub fn selected(&self, fields: &FieldSelector, labels: &LabelSelector) -> bool {
        fields.matches(&self.fields) && labels.matches(&self.labels)
    }
}

/// A change of one object.
pub(super) struct Event {
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub ty: &'static str,
    /// The new version; for DELETED the last one, stamped with the deletion's version.
    pub object: Arc<Stored>,
    /// The version before, which decides whether the change enters or leaves a selector.
    pub prev: Option<Arc<Stored>>,
}

#[derive(Default)]
struct KindLog {
    objects: BTreeMap<Key, Arc<Stored>>,
    events: VecDeque<Event>,
    /// Watches from a version before this one missed events that are gone.
    compacted: u64,
}

/// Every served kind's objects and events, and the cluster's resource version.
pub(super) struct Store {
    pub rv: u64,
    kinds: Vec<KindLog>,
    compacted: u64,
    history_limit: usize,
}

impl Store {
    pub fn new() -> Store {
        let kinds = RESOURCES.iter().map(|_| KindLog::default()).collect();
        Store { rv: 1, kinds, compacted: 0, history_limit: DEFAULT_HISTORY_LIMIT }
    }

    /// Adds or replaces an object of kind `index`; returns the event type.
    pub fn put(&mut self, index: usize, object: Value) -> &'static str {
        let key = key_of(&object);
        self.rv += 1;
        let stored = Arc::new(Stored::new(RESOURCES[index].kind, object, self.rv));
        let prev = self.kinds[index].objects.insert(key, stored.clone());
        let ty = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        self.push(index, Event { rv: self.rv, ty, object: stored, prev });
        ty
    }

    /// Deletes an object; returns whether it existed.
    pub fn remove(&mut self, index: usize, key: &Key) -> bool {
        let Some(prev) = self.kinds[index].objects.remove(key) else { return false };
        self.rv += 1;
        let object = Arc::new(prev.restamped(RESOURCES[index].kind, self.rv));
        self.push(index, Event { rv: self.rv, ty: "DELETED", object, prev: Some(prev) });
        true
    }

    fn push(&mut self, index: usize, event: Event) {
        let log = &mut self.kinds[index];
        log.events.push_back(event);
        while log.events.len() > self.history_limit {
            let dropped = log.events.pop_front().expect("over the limit");
            log.compacted = dropped.rv;
        }
    }

    /// Forgets every event: a watch from an older version gets 410 Gone.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.kinds.iter_mut().for_each(|log| log.events.clear());
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
    }

    pub fn get(&self, index: usize, key: &Key) -> Option<&Arc<Stored>> {
        self.kinds[index].objects.get(key)
    }

    /// The current objects of kind `index` that `filter` selects, in key order.
    pub fn select<'a>(&'a self, index: usize, filter: &'a Filter) -> impl Iterator<Item = &'a Arc<Stored>> + 'a {
        self.range(index, filter, None).map(|(_, stored)| stored).filter(|stored| filter.selects(stored))
    }

    /// One page of a list: up to `limit` selected objects after key `after`, and the key to continue after when
    /// objects remain (possibly none selected: a real paged list may end with an empty page too).
    pub fn page(
        &self,
        index: usize,
        filter: &Filter,
        after: Option<&Key>,
        limit: usize,
    ) -> (Vec<Arc<Stored>>, Option<Key>) {
        let mut items = Vec::new();
        let mut range = self.range(index, filter, after).peekable();
        while let Some((key, stored)) = range.next() {
            if filter.selects(stored) {
                items.push(stored.clone());
            }
            if items.len() == limit {
                return (items, range.peek().map(|_| key.clone()));
            }
        }
        (items, None)
    }

    /// The objects of the filter's namespace (all when it has none), after `after`.
    fn range<'a>(
        &'a self,
        index: usize,
        filter: &'a Filter,
        after: Option<&Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Stored>)> + 'a {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let objects = &self.kinds[index].objects;
        let start = match (after, &filter.namespace) {
            (Some(key), _) => Excluded(key.clone()),
            (None, Some(ns)) => Included((ns.clone(), String::new())),
            (None, None) => Unbounded,
        };
        let namespace = filter.namespace.as_deref();
        objects.range((start, Unbounded)).take_while(move |(key, _)| namespace.is_none_or(|ns| key.0 == ns))
    }

    /// The version up to which history was dropped by [`Store::compact`].
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The events of kind `index` after version `from`, or the compacted version when some are gone.
    pub fn events_after(&self, index: usize, from: u64) -> Result<impl Iterator<Item = &Event>, u64> {
        let log = &self.kinds[index];
        let compacted = self.compacted.max(log.compacted);
        if compacted > from {
            return Err(compacted);
        }
        let start = log.events.partition_point(|e| e.rv <= from);
        Ok(log.events.range(start..))
    }
}

/// Which objects a list or watch selects: a namespace (of a namespaced path) and selectors.
#[derive(Default)]
pub(super) struct Filter {
    pub namespace: Option<String>,
    pub fields: FieldSelector,
    pub labels: LabelSelector,
}

impl Filter {
    pub fn selects(&self, stored: &Stored) -> bool {
        let in_namespace = |ns: &str| stored.fields.get("metadata.namespace") == ns;
        self.namespace.as_deref().is_none_or(in_namespace) && stored.selected(&self.fields, &self.labels)
    }
}

pub(super) fn key_of(object: &Value) -> Key {
    let field = |f: &str| object["metadata"][f].as_str().unwrap_or_default().to_owned();
    (field("namespace"), field("name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"}})
    }

    #[test]
    fn history_is_capped_per_kind_and_old_watches_expire() {
        let mut store = Store::new();
        store.set_history_limit(2);
        let service = json!({"kind": "Service", "metadata": {"name": "web", "namespace": "shop"}});
        store.put(1, service);
        let after_service = store.rv;
        for name in ["a", "b", "c"] {
            store.put(0, pod(name));
        }
        assert_eq!(store.events_after(0, after_service).err(), Some(after_service + 1), "pod a's ADDED is gone");
        let kept: Vec<&str> = store.events_after(0, after_service + 1).unwrap().map(|e| e.ty).collect();
        assert_eq!(kept, ["ADDED", "ADDED"]);
        assert_eq!(store.events_after(1, 0).unwrap().count(), 1, "other kinds keep their history");
    }

    #[test]
    fn a_deletion_carries_the_last_state_with_its_own_version() {
        let mut store = Store::new();
        store.put(0, pod("a"));
        assert!(store.remove(0, &("shop".into(), "a".into())));
        let deleted = store.events_after(0, 0).unwrap().last().unwrap();
        assert_eq!(deleted.ty, "DELETED");
        assert_eq!(deleted.object.value()["metadata"]["resourceVersion"], json!(store.rv.to_string()));
        assert!(!store.remove(0, &("shop".into(), "a".into())));
    }
}
