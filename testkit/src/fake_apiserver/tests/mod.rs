//! The fake API server through real clients: plain HTTP (reqwest) for what is on the wire, kube-rs for what
//! the exporter's watchers make of it.

mod http;
mod kube;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::{Value, json};

use super::FakeApi;
use crate::k8s::{self, Pod};

/// The `Accept` header of kube-rs's metadata-only requests.
const METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// A pod `shop/name` on `node` (unscheduled when `None`).
fn pod(name: &str, node: Option<&str>, ip: &str) -> Value {
    let mut pod = Pod::new("shop", name, ip).owner("ReplicaSet", "web-7d").json();
    match node {
        Some(node) => pod["spec"]["nodeName"] = json!(node),
        None => pod["spec"].as_object_mut().unwrap().retain(|key, _| key != "nodeName"),
    }
    pod
}

fn node(name: &str, unschedulable: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": unschedulable}})
}

/// Three pods in `shop` (two on node-1, one unscheduled), one in `billing`, their owners, two nodes.
fn cluster() -> FakeApi {
    let api = FakeApi::start();
    api.apply_all([
        pod("web-1", Some("node-1"), "10.244.1.10"),
        pod("web-2", Some("node-1"), "10.244.1.11"),
        pod("web-3", None, ""),
        Pod::new("billing", "invoices-1", "10.244.2.10").node("node-2").json(),
        k8s::owned("ReplicaSet", "shop", "web-7d", "Deployment", "web"),
        k8s::owned("Job", "shop", "backup-1", "CronJob", "backup"),
        node("node-1", false),
        node("node-2", true),
    ]);
    api
}

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    len: usize,
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

/// GET `path_and_query` as `client` (a bearer token; none when `None`), in full or metadata-only.
fn get(api: &FakeApi, path_and_query: &str, client: Option<&str>, metadata_only: bool) -> Answer {
    let mut request = http().get(format!("{}{path_and_query}", api.url()));
    if let Some(client) = client {
        request = request.bearer_auth(client);
    }
    if metadata_only {
        request = request.header("Accept", METADATA);
    }
    let response = request.send().unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().unwrap();
    Answer { status, headers, len: text.len(), body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// The events of a watch, line by line, as they arrive (the iterator blocks for the next one).
fn watch(api: &FakeApi, path_and_query: &str, client: &str) -> impl Iterator<Item = Value> {
    watch_as(api, path_and_query, client, false)
}

/// [`watch`], in full or metadata-only.
fn watch_as(api: &FakeApi, path_and_query: &str, client: &str, metadata_only: bool) -> impl Iterator<Item = Value> {
    let mut request = http().get(format!("{}{path_and_query}", api.url())).bearer_auth(client);
    if metadata_only {
        request = request.header("Accept", METADATA);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), 200);
    BufReader::new(response).lines().map(|line| serde_json::from_str(&line.unwrap()).unwrap())
}

/// `(type, name)` of a watch event.
fn seen(event: &Value) -> (String, String) {
    let name = event["object"]["metadata"]["name"].as_str().unwrap_or_default();
    (event["type"].as_str().unwrap().to_owned(), name.to_owned())
}

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|item| item["metadata"]["name"].as_str().unwrap()).collect()
}
