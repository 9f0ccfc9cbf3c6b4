//! The fetch worker (docs/design.md §7): a node's agent does not watch remote pods, nor the owners that name
//! workloads; observations that need one ask for it ([`FetchQueue`](crate::sources::inventory::FetchQueue)), and
//! this worker reads it from the API server's watch cache (`resourceVersion=0`: a GET by name, or a list by
//! `status.podIP` for an address no endpoint names), at most [`FETCH_RATE`] a second, and puts it into the index.
//! What could not be had is recorded for a while, so that observations waiting for it are counted (unresolved,
//! never under a guessed name) and the next ones do not ask again at once.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::kube::api::{Api, GetParams, ListParams};
use ::kube::{Client, Resource};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::WatchStatus;
use super::pacing::RateLimit;
use crate::UnixMicros;
use crate::sources::inventory::objects::{OwnerRecord, PodRecord};
use crate::sources::inventory::{FetchKind, FetchRequests, FetchResult, Inventory, Unfetched, Wanted};

/// Fetches a second at most, and the burst saved for a start-up or a rollout of many servers at once.
pub(super) const FETCH_RATE: f64 = 20.0;
const FETCH_BURST: u32 = 50;
/// One fetch gives up after this long (counted as failed).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long "no such object" holds before it is asked again.
const MISSING_FOR: Duration = Duration::from_secs(60);
/// How long a failed fetch holds before it is asked again; observations meanwhile keep waiting (up to the
/// pipeline's bound, then `fetch_failed` / `owner_pending`).
const FAILED_FOR: Duration = Duration::from_secs(10);
/// How long a pod fetched by address is trusted: nothing says when it is gone, and its address may be given to
/// another pod after it.
const BY_ADDRESS_FOR: Duration = Duration::from_secs(60);
/// How often expired fetches are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// What one fetch brought.
enum Fetched {
    /// Pods, each with its uid.
    Pods(Vec<(PodRecord, Option<Arc<str>>)>),
    Owner(OwnerRecord),
    Missing,
    Failed,
}

/// Serves fetch requests until every sender is gone.
pub(super) async fn run(
    client: Client,
    inventory: Arc<RwLock<Inventory>>,
    mut requests: FetchRequests,
    status: WatchStatus,
    start_delay: Duration,
) {
    tokio::time::sleep(start_delay).await;
    let mut limit = RateLimit::new(FETCH_RATE, FETCH_BURST);
    let mut last_sweep = Instant::now();
    while let Some(wanted) = requests.next().await {
        // Observations waiting for a failed fetch ask for it again at every retry; it is fetched again only once
        // the failure stops holding, so an outage costs the API server one request per object per FAILED_FOR.
        let held = inventory.read().unwrap_or_else(PoisonError::into_inner).unfetched(&wanted, now_micros());
        if held == Some(Unfetched::Failed) {
            requests.done(&wanted);
            continue;
        }
        limit.acquire().await;
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, fetch(&client, &wanted)).await.unwrap_or(Fetched::Failed);
        let result = {
            let mut inventory = inventory.write().unwrap_or_else(PoisonError::into_inner);
            let now = now_micros();
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                inventory.expire_fetched(now, now - micros(BY_ADDRESS_FOR));
            }
            store(&mut inventory, &wanted, fetched, now)
        };
        requests.done(&wanted);
        status.fetched(FetchKind::of(&wanted), result);
    }
}

/// Puts what a fetch brought into the index.
fn store(inventory: &mut Inventory, wanted: &Wanted, fetched: Fetched, now: UnixMicros) -> FetchResult {
    match fetched {
        Fetched::Pods(pods) if !pods.is_empty() => {
            let by_address = matches!(wanted, Wanted::PodAt(_)).then_some(now);
            for (pod, uid) in pods {
                inventory.upsert_fetched_pod(pod, uid, by_address);
            }
            FetchResult::Found
        }
        Fetched::Owner(owner) => {
            inventory.upsert_fetched_owner(owner);
            FetchResult::Found
        }
        Fetched::Pods(_) | Fetched::Missing => {
            inventory.record_unfetched(wanted.clone(), Unfetched::Missing, now + micros(MISSING_FOR));
            FetchResult::Missing
        }
        Fetched::Failed => {
            inventory.record_unfetched(wanted.clone(), Unfetched::Failed, now + micros(FAILED_FOR));
            FetchResult::Failed
        }
    }
}

async fn fetch(client: &Client, wanted: &Wanted) -> Fetched {
    match wanted {
        Wanted::Pod { namespace, name } => {
            let api = Api::<Pod>::namespaced(client.clone(), namespace);
            match api.get_with(name, &GetParams::any()).await {
                Ok(pod) => Fetched::Pods(with_uid(&pod).into_iter().collect()),
                Err(e) => missing_or_failed(&e, wanted),
            }
        }
        Wanted::PodAt(ip) => {
            let params = ListParams::default().fields(&format!("status.podIP={ip}")).match_any();
            match Api::<Pod>::all(client.clone()).list(&params).await {
                Ok(list) => Fetched::Pods(list.items.iter().filter_map(with_uid).collect()),
                Err(e) => missing_or_failed(&e, wanted),
            }
        }
        Wanted::Owner { namespace, kind, name } => match &**kind {
            "ReplicaSet" => owner::<ReplicaSet>(client, namespace, name, wanted).await,
            "Job" => owner::<Job>(client, namespace, name, wanted).await,
            _ => Fetched::Failed,
        },
    }
}

/// An owner's metadata: its name and its own owner reference are all a chain needs.
async fn owner<K>(client: &Client, namespace: &str, name: &str, wanted: &Wanted) -> Fetched
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    match api.get_metadata_with(name, &GetParams::any()).await {
        Ok(meta) => match OwnerRecord::from_meta(&K::kind(&()), &meta.metadata) {
            Some(record) => Fetched::Owner(record),
            None => Fetched::Failed,
        },
        Err(e) => missing_or_failed(&e, wanted),
    }
}

fn with_uid(pod: &Pod) -> Option<(PodRecord, Option<Arc<str>>)> {
    Some((PodRecord::from_pod(pod)?, pod.metadata.uid.as_deref().map(Arc::from)))
}

fn missing_or_failed(error: &::kube::Error, wanted: &Wanted) -> Fetched {
    match error {
        ::kube::Error::Api(status) if status.code == 404 => Fetched::Missing,
        _ => {
            tracing::warn!(?wanted, error = %error, "fetch from the Kubernetes API failed");
            Fetched::Failed
        }
    }
}

fn micros(duration: Duration) -> i64 {
    duration.as_micros() as i64
}

fn now_micros() -> UnixMicros {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
