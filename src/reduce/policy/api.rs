//! `--kubeconfig`: reads the objects policies need from the live API (the same client configuration as the
//! exporter: in-cluster, `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`) and hands them to
//! [`ClusterInfo::from_objects`] exactly as a `kubectl get -o yaml` file would.

use std::fmt::Debug;
use std::path::Path;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::inventory::ClusterInfo;
use crate::reduce::error::{ReduceError, Result};
use crate::sources::inventory::client_config;

/// Lists Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods and Services in every
/// namespace, EndpointSlices (for the API server's addresses) and Namespaces (their labels).
pub fn load(kubeconfig: Option<&Path>) -> Result<ClusterInfo> {
    let config = client_config(kubeconfig).map_err(|e| ReduceError::bad_input("--kubeconfig", e.to_string()))?;
    let url = config.cluster_url.to_string();
    let unreachable = |e: kube::Error| ReduceError::KubeApi { url: url.clone(), message: e.to_string() };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ReduceError::io("<tokio runtime>", e))?;
    let objects = runtime.block_on(async {
        let client = Client::try_from(config)?;
        let mut objects = Vec::new();
        objects.extend(list::<Deployment>(&client).await?);
        objects.extend(list::<StatefulSet>(&client).await?);
        objects.extend(list::<DaemonSet>(&client).await?);
        objects.extend(list::<ReplicaSet>(&client).await?);
        objects.extend(list::<Job>(&client).await?);
        objects.extend(list::<CronJob>(&client).await?);
        objects.extend(list::<Pod>(&client).await?);
        objects.extend(list::<Service>(&client).await?);
        // Only `default/kubernetes`'s slices are read (the API server's addresses).
        objects.extend(list::<EndpointSlice>(&client).await?);
        objects.extend(namespaces(&client).await?);
        Ok::<_, kube::Error>(objects)
    });
    let objects = objects.map_err(unreachable)?;
    ClusterInfo::from_objects(objects).map_err(|problem| ReduceError::bad_input("the Kubernetes API", problem))
}

/// Namespaces' labels, for namespace selectors. Listing them is a cluster-scoped permission some users lack:
/// without it (403, or 404 from a server that does not serve them) the labels stay unknown, and verdicts that
/// depend on them say so rather than guess.
async fn namespaces(client: &Client) -> kube::Result<Vec<Value>> {
    match list::<Namespace>(client).await {
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 404 => Ok(Vec::new()),
        other => other,
    }
}

async fn list<K>(client: &Client) -> kube::Result<Vec<Value>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize,
{
    let api: Api<K> = Api::all(client.clone());
    Ok(api.list(&ListParams::default()).await?.items.into_iter().filter_map(with_kind).collect())
}

/// Typed objects serialise with their `apiVersion` and `kind`, as the inventory parser expects.
fn with_kind<K: Serialize>(object: K) -> Option<Value> {
    serde_json::to_value(object).ok()
}
