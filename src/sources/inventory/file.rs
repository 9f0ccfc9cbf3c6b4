//! `--inventory-file`: a static inventory from a Kubernetes `List` (YAML or JSON), e.g. the output of
//! `kubectl get pods,services,endpointslices,replicasets,jobs -A -o yaml`.
//!
//! Several YAML documents, and Lists nested in documents, are accepted too. Pods, Services and EndpointSlices
//! are projected into their records; every other namespaced object becomes a potential owner, which is how
//! ReplicaSets, Jobs and custom owners (e.g. Argo Rollouts) join owner chains.

use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

use super::objects::{OwnerRecord, PodRecord, ServiceRecord, SliceRecord};
use super::{Error, Inventory};

/// Reads and indexes an inventory file.
pub fn load_file(path: &Path) -> Result<Inventory, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    parse_inventory(&text).map_err(|message| Error::Invalid { path: path.to_owned(), message })
}

/// Parses inventory text (YAML or JSON, one or several documents). The error is a message without the path.
pub fn parse_inventory(text: &str) -> Result<Inventory, String> {
    let mut inventory = Inventory::new();
    let mut objects = 0usize;
    for (doc_index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| format!("document {}: not valid YAML or JSON: {e}", doc_index + 1))?;
        objects += add_value(&mut inventory, value, &format!("document {}", doc_index + 1))?;
    }
    if objects == 0 {
        return Err("no Kubernetes objects found: expected a List with `items` (kubectl get … -o yaml)".into());
    }
    Ok(inventory)
}

/// Adds one document: a List (its items, recursively) or a single object. Returns the number of objects.
fn add_value(inventory: &mut Inventory, value: Value, place: &str) -> Result<usize, String> {
    match value {
        Value::Null => Ok(0),
        Value::Object(mut map) => {
            if let Some(items) = map.remove("items") {
                let Value::Array(items) = items else { return Err(format!("{place}: `items` is not a list")) };
                let mut count = 0;
                for (i, item) in items.into_iter().enumerate() {
                    count += add_value(inventory, item, &format!("{place}, item {}", i + 1))?;
                }
                Ok(count)
            } else {
                add_object(inventory, Value::Object(map), place).map(|()| 1)
            }
        }
        other => Err(format!("{place}: expected an object or a List, found {}", type_name(&other))),
    }
}

fn add_object(inventory: &mut Inventory, value: Value, place: &str) -> Result<(), String> {
    let kind = value.get("kind").and_then(Value::as_str).map(str::to_owned);
    let Some(kind) = kind else { return Err(format!("{place}: object has no `kind`")) };
    let describe = |e: serde_json::Error| format!("{place} ({kind} {}): {e}", name_of(&value));
    let missing = || format!("{place} ({kind}): metadata.name and metadata.namespace are required");
    match kind.as_str() {
        "Pod" => {
            let pod: Pod = serde_json::from_value(value.clone()).map_err(describe)?;
            inventory.upsert_pod(PodRecord::from_pod(&pod).ok_or_else(missing)?);
        }
        "Service" => {
            let svc: Service = serde_json::from_value(value.clone()).map_err(describe)?;
            inventory.upsert_service(ServiceRecord::from_service(&svc).ok_or_else(missing)?);
        }
        "EndpointSlice" => {
            let slice: EndpointSlice = serde_json::from_value(value.clone()).map_err(describe)?;
            inventory.upsert_slice(SliceRecord::from_slice(&slice).ok_or_else(missing)?);
        }
        _ => {
            let meta = value.get("metadata").cloned().unwrap_or(Value::Null);
            let meta: ObjectMeta = serde_json::from_value(meta).map_err(describe)?;
            // Cluster-scoped objects (Nodes, Namespaces) never own pods; they are skipped, not errors.
            if let Some(owner) = OwnerRecord::from_meta(&kind, &meta) {
                inventory.upsert_owner(owner);
            }
        }
    }
    Ok(())
}

fn name_of(value: &Value) -> String {
    let meta = value.get("metadata");
    let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str).unwrap_or("?").to_owned();
    format!("{}/{}", field("namespace"), field("name"))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
