//! The requests that reach the fetch worker (docs/design.md §7): observations that need a remote pod or an owner
//! ask for it here, from any thread, without waiting. Bounded, and each wanted object is queued once while it is
//! queued or being fetched, however many observations wait for it.

use std::sync::{Arc, Mutex, PoisonError};

use rustc_hash::FxHashSet;
use tokio::sync::mpsc;

use super::Wanted;

/// What a fetch asks for, as the fetch metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FetchKind {
    /// A pod by the name an endpoint gives it.
    Pod,
    /// A pod by address.
    PodAddress,
    /// A ReplicaSet (an owner).
    ReplicaSet,
    /// A Job (an owner).
    Job,
}

impl FetchKind {
    /// Every kind.
    pub const ALL: [FetchKind; 4] = [FetchKind::Pod, FetchKind::PodAddress, FetchKind::ReplicaSet, FetchKind::Job];

    /// The kind of a fetch. Owners are fetched only of the tracked kinds, ReplicaSet and Job.
    pub fn of(wanted: &Wanted) -> FetchKind {
        match wanted {
            Wanted::Pod { .. } => FetchKind::Pod,
            Wanted::PodAt(_) => FetchKind::PodAddress,
            Wanted::Owner { kind, .. } if &**kind == "Job" => FetchKind::Job,
            Wanted::Owner { .. } => FetchKind::ReplicaSet,
        }
    }

    /// A short stable label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            FetchKind::Pod => "Pod",
            FetchKind::PodAddress => "PodAddress",
            FetchKind::ReplicaSet => "ReplicaSet",
            FetchKind::Job => "Job",
        }
    }
}

/// How a fetch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FetchResult {
    /// The object arrived.
    Found,
    /// The API has no such object (or no pod at that address).
    Missing,
    /// The request failed.
    Failed,
    /// Not made: the fetch queue was full (the rate limit held it back).
    Refused,
}

impl FetchResult {
    /// Every result.
    pub const ALL: [FetchResult; 4] =
        [FetchResult::Found, FetchResult::Missing, FetchResult::Failed, FetchResult::Refused];

    /// A short stable label for metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            FetchResult::Found => "found",
            FetchResult::Missing => "missing",
            FetchResult::Failed => "failed",
            FetchResult::Refused => "refused",
        }
    }
}

/// How a request was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested {
    /// Queued now.
    Queued,
    /// Queued or being fetched already.
    Already,
    /// The queue is full: the fetch is not made (counted as rate-limited).
    Full,
}

/// The sending side, shared by the pipelines. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FetchQueue {
    tx: mpsc::Sender<Wanted>,
    queued: Arc<Mutex<FxHashSet<Wanted>>>,
}

/// The worker's side.
#[derive(Debug)]
pub struct FetchRequests {
    rx: mpsc::Receiver<Wanted>,
    queued: Arc<Mutex<FxHashSet<Wanted>>>,
}

impl FetchQueue {
    /// A queue of at most `capacity` waiting requests.
    pub fn new(capacity: usize) -> (FetchQueue, FetchRequests) {
        let (tx, rx) = mpsc::channel(capacity);
        let queued = Arc::new(Mutex::new(FxHashSet::default()));
        (FetchQueue { tx, queued: queued.clone() }, FetchRequests { rx, queued })
    }

    /// Asks for `wanted` to be fetched.
    pub fn request(&self, wanted: &Wanted) -> Requested {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        if queued.contains(wanted) {
            return Requested::Already;
        }
        match self.tx.try_send(wanted.clone()) {
            Ok(()) => {
                queued.insert(wanted.clone());
                Requested::Queued
            }
            Err(_) => Requested::Full,
        }
    }
}

impl FetchRequests {
    /// The next request; `None` once every sender is gone.
    pub async fn next(&mut self) -> Option<Wanted> {
        self.rx.recv().await
    }

    /// `wanted` has been fetched (or has failed): a later request queues it again.
    pub fn done(&self, wanted: &Wanted) {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner).remove(wanted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wanted_object_is_queued_once_until_done_and_a_full_queue_refuses() {
        let (queue, mut requests) = FetchQueue::new(2);
        let pod = |name: &str| Wanted::Pod { namespace: Arc::from("shop"), name: Arc::from(name) };
        assert_eq!(queue.request(&pod("a")), Requested::Queued);
        assert_eq!(queue.request(&pod("a")), Requested::Already);
        assert_eq!(queue.request(&pod("b")), Requested::Queued);
        assert_eq!(queue.request(&pod("c")), Requested::Full);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let first = runtime.block_on(requests.next()).unwrap();
        assert_eq!(first, pod("a"));
        assert_eq!(queue.request(&pod("a")), Requested::Already, "still being fetched");
        requests.done(&first);
        assert_eq!(queue.request(&pod("a")), Requested::Queued);
    }
}
