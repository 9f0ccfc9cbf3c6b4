//! `--inventory-file`: a static inventory from a Kubernetes `List` (YAML or JSON), e.g. the output of
//! [`super::naming::KUBECTL_GET`].
//!
//! Several YAML documents, and Lists nested in documents, are accepted too. Pods, Services and EndpointSlices
//! are projected into their records; every other namespaced object becomes a potential owner, which is how
//! ReplicaSets, Jobs and custom owners (e.g. Argo Rollouts) join owner chains.

use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::objects::{NodeRecord, OwnerRecord, PodRecord, ServiceRecord, SliceRecord};
use super::{Error, Inventory, naming};

const NO_OBJECTS: &str = "no Kubernetes objects found: expected a List with `items` (kubectl get … -o yaml)";

/// Reads and indexes an inventory file. A file that holds no Pod names no client and is an error; pods whose
/// ReplicaSet or Job the file lacks are named after it, and a warning says so.
pub fn load_file(path: &Path) -> Result<Inventory, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let inventory = parse_inventory(&text).map_err(|message| Error::Invalid { path: path.to_owned(), message })?;
    let counts = inventory.counts();
    if counts.pods == 0 {
        let held = [(counts.services, "Service"), (counts.slices, "EndpointSlice"), (counts.owners, "other object")];
        let held: Vec<String> = held.iter().filter(|(n, _)| *n > 0).map(|(n, kind)| format!("{n} {kind}(s)")).collect();
        return Err(Error::Invalid { path: path.to_owned(), message: naming::no_pods_message(&held) });
    }
    if let Some(warning) = naming::missing_owners_warning(&inventory.pods_of_missing_owners()) {
        tracing::warn!(file = %path.display(), "{warning}");
    }
    Ok(inventory)
}

/// Parses inventory text (YAML or JSON, one or several documents). The error is a message without the path.
///
/// A List's items are deserialized one at a time and indexed at once, so memory holds the index plus one
/// object's tree, never a tree of the whole document (a 2,000-pod List is megabytes of YAML and tens of megabytes
/// as a value tree).
pub fn parse_inventory(text: &str) -> Result<Inventory, String> {
    // JSON first when it looks like JSON; a flow-style YAML document (`{kind: List, …}`) is not JSON and goes on.
    if text.trim_start().starts_with('{')
        && let Some(result) = parse_json(text)
    {
        return result;
    }
    if let Some(inventory) = list_items(text).and_then(|items| parse_items(&items)) {
        return Ok(inventory);
    }
    parse_documents(text)
}

/// One JSON document (`kubectl get … -o json`), streamed by serde_json, which holds no more than the item it reads.
/// `None` when the text is not JSON (a syntax error), for the YAML parser to read.
fn parse_json(text: &str) -> Option<Result<Inventory, String>> {
    let mut inventory = Inventory::new();
    let place = "document 1";
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let objects = read_document(&mut deserializer, &mut inventory, place)
        .and_then(|objects| deserializer.end().map(|()| objects).map_err(DocumentError::Syntax));
    Some(match objects {
        Ok(0) => Err(NO_OBJECTS.into()),
        Ok(_) => Ok(inventory),
        Err(DocumentError::Invalid(message)) => Err(message),
        Err(DocumentError::Syntax(e)) if e.is_syntax() || e.is_eof() => return None,
        Err(DocumentError::Syntax(e)) => Err(format!("{place}: not a Kubernetes List or object: {e}")),
    })
}

/// The items of a single-document List as `kubectl get … -o yaml` writes it (`items:` at the start of a line,
/// each item a block starting `- ` there), each turned into a document of its own; `None` for anything else.
///
/// serde_yaml reads a whole document's events before deserializing any of it: for a 2,000-pod List that is about
/// 20 MiB for a moment, more than the exporter needs for everything else. Item by item, it is one item's events.
fn list_items(text: &str) -> Option<Vec<String>> {
    let mut items: Vec<String> = Vec::new();
    let mut in_items = false;
    for line in text.lines() {
        if line.starts_with("---") || line.starts_with("...") {
            // Several documents (or a marker this shortcut need not understand): the general path reads them.
            if in_items || !items.is_empty() {
                return None;
            }
            continue;
        }
        let top_level = !line.is_empty() && !line.starts_with([' ', '#']);
        if top_level {
            if let Some(rest) = line.strip_prefix("- ").filter(|_| in_items) {
                items.push(format!("  {rest}\n"));
                continue;
            }
            in_items = line == "items:";
            if !in_items && line.starts_with(['-', '\t', '[', '{']) {
                return None;
            }
            continue;
        }
        if let Some(item) = items.last_mut().filter(|_| in_items) {
            item.push_str(line);
            item.push('\n');
        }
    }
    (!items.is_empty()).then_some(items)
}

/// Parses and indexes [`list_items`]; `None` if any item fails (an error, or an alias to an anchor in another
/// item) or none is an object, so that the caller parses the whole document instead: its result and its error
/// messages are the reference.
fn parse_items(items: &[String]) -> Option<Inventory> {
    let mut inventory = Inventory::new();
    let mut objects = 0;
    for (index, item) in items.iter().enumerate() {
        let value: Value = serde_yaml::from_str(item).ok()?;
        objects += add_value(&mut inventory, value, &format!("document 1, item {}", index + 1)).ok()?;
    }
    (objects > 0).then_some(inventory)
}

/// Parses every document of `text`, a List's items deserialized one at a time through serde_yaml.
fn parse_documents(text: &str) -> Result<Inventory, String> {
    let mut inventory = Inventory::new();
    let mut objects = 0usize;
    for (doc_index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let place = format!("document {}", doc_index + 1);
        objects += read_document(document, &mut inventory, &place).map_err(|e| match e {
            DocumentError::Invalid(message) => message,
            DocumentError::Syntax(e) => format!("{place}: not valid YAML or JSON: {e}"),
        })?;
    }
    if objects == 0 {
        return Err(NO_OBJECTS.into());
    }
    Ok(inventory)
}

/// Why a document could not be read.
enum DocumentError<E> {
    /// Well-formed, but not Kubernetes objects: the message names the item.
    Invalid(String),
    /// The deserializer's own error (bad syntax, a document cut short).
    Syntax(E),
}

/// Indexes one document (a List whose items are deserialized one at a time, or a single object); returns how many
/// objects it held.
fn read_document<'de, D: Deserializer<'de>>(
    deserializer: D,
    inventory: &mut Inventory,
    place: &str,
) -> Result<usize, DocumentError<D::Error>> {
    let mut sink = Sink { inventory, place, objects: 0, failure: None };
    let outcome = deserializer.deserialize_any(DocumentVisitor { sink: &mut sink });
    if let Some(message) = sink.failure {
        return Err(DocumentError::Invalid(message));
    }
    outcome.map(|()| sink.objects).map_err(DocumentError::Syntax)
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
        "Node" => {
            let node: Node = serde_json::from_value(value.clone()).map_err(describe)?;
            let unnamed = || format!("{place} (Node): metadata.name is required");
            inventory.upsert_node(NodeRecord::from_node(&node).ok_or_else(unnamed)?);
        }
        _ => {
            let meta = value.get("metadata").cloned().unwrap_or(Value::Null);
            let meta: ObjectMeta = serde_json::from_value(meta).map_err(describe)?;
            // Other cluster-scoped objects (Namespaces) never own pods; they are skipped, not errors.
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
    fn item_by_item_reads_a_kubectl_list_exactly_as_the_whole_document() {
        let fixture = std::fs::read_to_string("tests/fixtures/inventory/cluster.yaml").unwrap();
        let rs = "kind: ReplicaSet\nmetadata: {name: web, namespace: shop}\n# a comment\n";
        let block =
            "kind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata:\n  script: |\n    echo hi\n\n    done\n";
        let text = list(&[POD, rs, block]);
        let items = list_items(&text).expect("a kubectl List takes the item-by-item path");
        let by_item = parse_items(&items).expect("every item parses alone");
        assert_eq!(format!("{by_item:?}"), format!("{:?}", parse_documents(&text).unwrap()));
        // An alias to another item's anchor (the fixture has one, as PyYAML writes shared values) only resolves in
        // the whole document, which is then what is read.
        assert!(parse_items(&list_items(&fixture).unwrap()).is_none());
        let whole = parse_documents(&fixture).unwrap();
        assert_eq!(format!("{:?}", parse_inventory(&fixture).unwrap()), format!("{whole:?}"));
        let aliased = list(&["kind: Pod\nmetadata: &m {name: a, namespace: b}", "kind: ReplicaSet\nmetadata: *m"]);
        assert!(parse_items(&list_items(&aliased).unwrap()).is_none());
        assert_eq!(parse_inventory(&aliased).unwrap().counts().owners, 1);
        // JSON (`kubectl get … -o json`) is streamed by serde_json, with the same result as through serde_yaml.
        // A flow-style YAML document looks like JSON but is not: the YAML parser reads it.
        let flow = "{kind: List, items: [{kind: Pod, metadata: {name: a, namespace: b}}]}";
        assert_eq!(parse_inventory(flow).unwrap().counts().pods, 1);
        let json = json_list();
        assert_eq!(format!("{:?}", parse_inventory(&json).unwrap()), format!("{:?}", parse_documents(&json).unwrap()));
        // Several documents are not cut into items.
        assert!(list_items(&format!("{}---\n{}", list(&[POD]), list(&[rs]))).is_none());
    }

    fn json_list() -> String {
        let pod = r#"{"kind":"Pod","metadata":{"name":"a","namespace":"b"},"status":{"podIP":"10.0.0.1"}}"#;
        let rs = r#"{"kind":"ReplicaSet","metadata":{"name":"r","namespace":"b"}}"#;
        format!("{{\n  \"apiVersion\": \"v1\",\n  \"items\": [{pod}, {rs}],\n  \"kind\": \"List\"\n}}\n")
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
