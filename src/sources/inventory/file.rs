//! `--inventory-file`: a static inventory from a Kubernetes `List` (YAML or JSON), e.g. the output of
//! `kubectl get pods,services,endpointslices,replicasets,jobs -A -o yaml`.
//!
//! Several YAML documents, and Lists nested in documents, are accepted too. Pods, Services and EndpointSlices
//! are projected into their records; every other namespaced object becomes a potential owner, which is how
//! ReplicaSets, Jobs and custom owners (e.g. Argo Rollouts) join owner chains.

use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::objects::{OwnerRecord, PodRecord, ServiceRecord, SliceRecord};
use super::{Error, Inventory};

/// Reads and indexes an inventory file.
pub fn load_file(path: &Path) -> Result<Inventory, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    parse_inventory(&text).map_err(|message| Error::Invalid { path: path.to_owned(), message })
}

/// Parses inventory text (YAML or JSON, one or several documents). The error is a message without the path.
///
/// A List's items are deserialized one at a time and indexed at once, so memory holds the index plus one
/// object's tree, never a tree of the whole document (a 2,000-pod List is megabytes of YAML and tens of megabytes
/// as a value tree).
pub fn parse_inventory(text: &str) -> Result<Inventory, String> {
    let mut inventory = Inventory::new();
    let mut objects = 0usize;
    for (doc_index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let place = format!("document {}", doc_index + 1);
        let mut sink = Sink { inventory: &mut inventory, place: &place, objects: 0, failure: None };
        let outcome = document.deserialize_any(DocumentVisitor { sink: &mut sink });
        if let Some(message) = sink.failure {
            return Err(message);
        }
        outcome.map_err(|e| format!("{place}: not valid YAML or JSON: {e}"))?;
        objects += sink.objects;
    }
    if objects == 0 {
        return Err("no Kubernetes objects found: expected a List with `items` (kubectl get … -o yaml)".into());
    }
    Ok(inventory)
}

/// Where the streamed objects go. An object that is valid YAML but not a valid Kubernetes object stops the
/// parse with `failure` (a message naming the item), kept apart from the deserializer's own syntax errors.
struct Sink<'a> {
    inventory: &'a mut Inventory,
    place: &'a str,
    objects: usize,
    failure: Option<String>,
}

impl Sink<'_> {
    fn add(&mut self, value: Value, place: &str) -> Result<(), ()> {
        match add_value(self.inventory, value, place) {
            Ok(count) => {
                self.objects += count;
                Ok(())
            }
            Err(message) => {
                self.failure = Some(message);
                Err(())
            }
        }
    }
}

/// One top-level document: a List whose `items` are streamed, or a single object.
struct DocumentVisitor<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> Visitor<'de> for DocumentVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes List or object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The List's own fields (apiVersion, kind, metadata) are kept: without `items` they are the object.
        let mut fields = serde_json::Map::new();
        let mut had_items = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                had_items = true;
                map.next_value_seed(ItemsSeed { sink: &mut *self.sink })?;
            } else {
                fields.insert(key, map.next_value::<Value>()?);
            }
        }
        let place = self.sink.place.to_owned();
        let result = if had_items { Ok(()) } else { self.sink.add(Value::Object(fields), &place) };
        result.map_err(|()| de::Error::custom("invalid object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        self.sink.failure = Some(format!("{}: expected an object or a List, found a list", self.sink.place));
        Err(de::Error::custom("not an object"))
    }

    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        self.sink.failure = Some(format!("{}: expected an object or a List, found a string", self.sink.place));
        Err(E::custom("not an object"))
    }
}

/// A List's `items`: each deserialized as a small tree and indexed before the next is read.
struct ItemsSeed<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            index += 1;
            let place = format!("{}, item {index}", self.sink.place);
            self.sink.add(item, &place).map_err(|()| de::Error::custom("invalid item"))?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        self.sink.failure = Some(format!("{}: `items` is not a list", self.sink.place));
        Err(de::Error::custom("`items` is not a list"))
    }
}

/// Adds one object, or a List nested as an item (its items, recursively). Returns the number of objects.
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

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "kind: Pod\nmetadata: {name: web-1, namespace: shop}\nspec: {nodeName: node-a}\n\
                       status: {podIP: 10.0.1.10, podIPs: [{ip: 10.0.1.10}]}\n";

    fn list(items: &[&str]) -> String {
        let mut text = "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n".to_string();
        for item in items {
            let mut lines = item.lines();
            text += &format!("- {}\n", lines.next().unwrap());
            lines.for_each(|line| text += &format!("  {line}\n"));
        }
        text
    }

    #[test]
    fn a_list_a_single_object_several_documents_and_json_are_read() {
        let rs = "kind: ReplicaSet\nmetadata: {name: web, namespace: shop}\n";
        assert_eq!(parse_inventory(&list(&[POD, rs])).unwrap().counts().pods, 1);
        assert_eq!(parse_inventory(POD).unwrap().counts().pods, 1);
        let two = format!("{POD}---\n{}", list(&[rs]));
        assert_eq!(parse_inventory(&two).unwrap().counts().owners, 1);
        let json = r#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"a","namespace":"b"}}]}"#;
        assert_eq!(parse_inventory(json).unwrap().counts().pods, 1);
        let nested = list(&["kind: List\nitems: []"]);
        assert!(parse_inventory(&nested).unwrap_err().contains("no Kubernetes objects"));
    }

    #[test]
    fn errors_name_the_document_and_item() {
        let bad_item = list(&[POD, "kind: Pod\nmetadata: {name: a, namespace: b}\nspec: 5"]);
        let err = parse_inventory(&bad_item).unwrap_err();
        assert!(err.starts_with("document 1, item 2 (Pod b/a)"), "{err}");
        let err = parse_inventory("kind: List\nitems: {a: 1}\n").unwrap_err();
        assert_eq!(err, "document 1: `items` is not a list");
        let err = parse_inventory(&format!("{POD}---\n- 1\n")).unwrap_err();
        assert_eq!(err, "document 2: expected an object or a List, found a list");
        let err = parse_inventory(&list(&["kind: Pod\nmetadata: {name: a}"])).unwrap_err();
        assert!(err.contains("item 1") && err.contains("metadata.name and metadata.namespace"), "{err}");
        assert!(parse_inventory("kind: [unclosed").unwrap_err().contains("not valid YAML or JSON"));
        assert!(parse_inventory("items:\n- 5\n").unwrap_err().contains("item 1: expected an object or a List"));
    }
}
