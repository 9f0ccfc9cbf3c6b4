//! Owner chains: the owners the index knows, and for each pod the root of its controller owner chain, kept
//! current as owners come, change and go, so resolving a pod never walks the chain.
//!
//! Every owner *key* that something refers to has a slot, whether or not the owner object itself is known
//! (pods often arrive before their ReplicaSet, and Deployments are never watched). A slot records who refers to
//! it — pods and other owners — so a change to an owner finds every pod whose chain passes through it.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::naming;
use super::objects::{OwnerRecord, OwnerRef};
use super::table::{Id, Interner, Key, Keyed, Slots};

#[derive(Debug)]
struct OwnerSlot {
    /// The key, and when `present`, the object as last upserted.
    record: OwnerRecord,
    present: bool,
    stamp: u64,
    /// The slot of `record.owner`, while present.
    parent: Option<Id>,
    /// Pods whose owner reference names this key.
    pods: Vec<Id>,
    /// Owners whose own owner reference names this key.
    children: Vec<Id>,
}

impl Keyed for OwnerSlot {
    fn key(&self) -> Key<'_> {
        Key { namespace: &self.record.namespace, kind: &self.record.kind, name: &self.record.name }
    }
}

/// Every owner key in use, with the reverse references that keep pods' chain roots current.
#[derive(Debug, Default)]
pub(super) struct Owners {
    slots: Slots<OwnerSlot>,
    present: usize,
}

impl Owners {
    /// A known owner object.
    pub fn get(&self, namespace: &str, kind: &str, name: &str) -> Option<&OwnerRecord> {
        let slot = self.slots.get(self.slots.find(Key { namespace, kind, name })?);
        slot.present.then_some(&slot.record)
    }

    /// How many owner objects are known.
    pub fn len(&self) -> usize {
        self.present
    }

    /// Slots held, for objects or for references to absent ones.
    #[cfg(test)]
    pub fn slots_in_use(&self) -> usize {
        self.slots.len()
    }

    /// Records that pod `pod` names `owner` (in `namespace`); returns the owner's slot.
    pub fn add_pod(&mut self, namespace: &Arc<str>, owner: &OwnerRef, pod: Id, strings: &mut Interner) -> Id {
        let id = self.acquire(namespace, owner, strings);
        self.slots.get_mut(id).pods.push(pod);
        id
    }

    /// Undoes [`Owners::add_pod`].
    pub fn remove_pod(&mut self, id: Id, pod: Id) {
        let pods = &mut self.slots.get_mut(id).pods;
        if let Some(at) = pods.iter().position(|&p| p == pod) {
            pods.swap_remove(at);
        }
        self.release(id);
    }

    /// The owner reference as stored: strings shared with the owner's slot.
    pub fn reference(&self, id: Id) -> OwnerRef {
        let record = &self.slots.get(id).record;
        OwnerRef { kind: record.kind.clone(), name: record.name.clone() }
    }

    /// The root of the chain that starts at owner slot `first`.
    pub fn root(&self, first: Id) -> OwnerRef {
        self.reference(naming::chain_root(first, |id| self.slots.get(*id).parent))
    }

    /// The root of the chain that starts at `owner` in `namespace`, for a pod the index may not hold.
    pub fn root_of(&self, namespace: &str, owner: &OwnerRef) -> OwnerRef {
        match self.slots.find(Key { namespace, kind: &owner.kind, name: &owner.name }) {
            Some(id) => self.root(id),
            None => owner.clone(),
        }
    }

    /// Adds or replaces an owner object (namespace and kind already shared); returns whether it is new and the
    /// pods whose chain root may have changed.
    pub fn upsert(&mut self, mut record: OwnerRecord, stamp: u64, strings: &mut Interner) -> (bool, Vec<Id>) {
        let key = Key { namespace: &record.namespace, kind: &record.kind, name: &record.name };
        let id = self.slots.find_or_insert(key, || OwnerSlot {
            record: OwnerRecord { owner: None, ..record.clone() },
            present: false,
            stamp,
            parent: None,
            pods: Vec::new(),
            children: Vec::new(),
        });
        let parent_ref = record.owner.take();
        // Link the new parent before unlinking the old, so a parent that stays keeps its slot.
        let parent = parent_ref.map(|o| self.acquire(&record.namespace, &o, strings));
        if let Some(parent) = parent {
            self.slots.get_mut(parent).children.push(id);
        }
        let old_parent = std::mem::replace(&mut self.slots.get_mut(id).parent, parent);
        let slot = self.slots.get_mut(id);
        let new = !slot.present;
        slot.present = true;
        slot.stamp = stamp;
        if let Some(old) = old_parent {
            self.unlink_child(old, id);
        }
        let owner = parent.map(|p| self.reference(p));
        self.slots.get_mut(id).record.owner = owner;
        self.present += usize::from(new);
        (new, self.dependent_pods(id))
    }

    /// Removes an owner object; `None` when it was not known, else the pods whose chain root may have changed.
    pub fn remove(&mut self, namespace: &str, kind: &str, name: &str) -> Option<Vec<Id>> {
        let id = self.slots.find(Key { namespace, kind, name })?;
        let slot = self.slots.get_mut(id);
        if !slot.present {
            return None;
        }
        slot.present = false;
        slot.record.owner = None;
        let parent = slot.parent.take();
        self.present -= 1;
        let pods = self.dependent_pods(id);
        if let Some(parent) = parent {
            self.unlink_child(parent, id);
        }
        self.release(id);
        Some(pods)
    }

    /// Owner objects of `kind` last upserted at or before `stamp`.
    pub fn upserted_before(&self, kind: &str, stamp: u64) -> Vec<(Arc<str>, Arc<str>)> {
        let stale = self.slots.iter().map(|(_, s)| s).filter(|s| s.present && s.stamp <= stamp);
        stale.filter(|s| &*s.record.kind == kind).map(|s| (s.record.namespace.clone(), s.record.name.clone())).collect()
    }

    /// The slot for an owner reference, made when nothing referred to that key yet.
    fn acquire(&mut self, namespace: &Arc<str>, owner: &OwnerRef, strings: &mut Interner) -> Id {
        let key = Key { namespace, kind: &owner.kind, name: &owner.name };
        self.slots.find_or_insert(key, || OwnerSlot {
            record: OwnerRecord {
                namespace: namespace.clone(),
                kind: strings.intern(&owner.kind),
                name: owner.name.clone(),
                owner: None,
            },
            present: false,
            stamp: 0,
            parent: None,
            pods: Vec::new(),
            children: Vec::new(),
        })
    }

    fn unlink_child(&mut self, parent: Id, child: Id) {
        let children = &mut self.slots.get_mut(parent).children;
        if let Some(at) = children.iter().position(|&c| c == child) {
            children.swap_remove(at);
        }
        // An owner that names itself is released by whoever is removing it.
        if parent != child {
            self.release(parent);
        }
    }

    /// Frees a slot that neither holds an object nor is referred to.
    fn release(&mut self, id: Id) {
        let slot = self.slots.get(id);
        if !slot.present && slot.pods.is_empty() && slot.children.is_empty() {
            self.slots.remove(id);
        }
    }

    /// Every pod whose owner chain passes through `id`.
    fn dependent_pods(&self, id: Id) -> Vec<Id> {
        let mut pods = Vec::new();
        let mut seen = FxHashSet::default();
        let mut next = vec![id];
        while let Some(id) = next.pop() {
            // Reference cycles are possible in hand-written inventories; each slot is visited once.
            if seen.insert(id) {
                let slot = self.slots.get(id);
                pods.extend_from_slice(&slot.pods);
                next.extend_from_slice(&slot.children);
            }
        }
        pods
    }
}
