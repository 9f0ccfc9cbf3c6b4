//! Field and label selectors as the real API server evaluates them: each kind accepts only its own selectable
//! fields (kubernetes `pkg/apis/*/v1/conversion.go`, field label conversion functions) and derives their values
//! from the object as its registry strategy does (`ToSelectableFields`): a field the object lacks is `""`,
//! booleans are `"true"`/`"false"`, `status.podIP` is the first of `status.podIPs`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The values of a kind's selectable fields for one object, extracted once per stored version.
#[derive(Clone, Debug, Default)]
pub(super) struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub fn get(&self, field: &str) -> &str {
        self.0.iter().find(|(name, _)| *name == field).map_or("", |(_, value)| value)
    }
}

/// The fields `kind` accepts in a selector, and the message that refuses any other.
fn accepted(kind: &str) -> (&'static [&'static str], fn(&str) -> String) {
    let not_supported = |field: &str| format!("field label not supported: {field}");
    match kind {
        "Pod" => (POD_FIELDS, not_supported),
        "Node" => (&["metadata.name", "spec.unschedulable"], not_supported),
        "Service" => (&["metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"], not_supported),
        "Job" => (&["metadata.name", "metadata.namespace", "status.successful"], |field| {
            format!("field label {field:?} not supported for batchv1.Job")
        }),
        // Kinds without a conversion function get apimachinery's DefaultMetaV1FieldSelectorConversion.
        _ => (&["metadata.name", "metadata.namespace"], |field| {
            format!("{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
        }),
    }
}

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    // Accepted, but not among the pod's selectable fields: it compares as "".
    "status.podIPs",
    "status.nominatedNodeName",
];

/// The selectable fields of `object`, a `kind`.
pub(super) fn fields_of(kind: &str, object: &Value) -> Fields {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
    let flag = |pointer: &str| object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string();
    let mut fields = vec![("metadata.name", text("/metadata/name"))];
    if kind != "Node" {
        fields.push(("metadata.namespace", text("/metadata/namespace")));
    }
    match kind {
        "Pod" => {
            let first_ip = object.pointer("/status/podIPs/0/ip").and_then(Value::as_str);
            let pod_ip = first_ip.map_or_else(|| text("/status/podIP"), str::to_owned);
            fields.extend([
                ("spec.nodeName", text("/spec/nodeName")),
                ("spec.restartPolicy", text("/spec/restartPolicy")),
                ("spec.schedulerName", text("/spec/schedulerName")),
                ("spec.serviceAccountName", text("/spec/serviceAccountName")),
                ("spec.hostNetwork", flag("/spec/hostNetwork")),
                ("status.phase", text("/status/phase")),
                ("status.podIP", pod_ip),
                ("status.nominatedNodeName", text("/status/nominatedNodeName")),
            ]);
        }
        "Node" => fields.push(("spec.unschedulable", flag("/spec/unschedulable"))),
        "Service" => fields.extend([("spec.clusterIP", text("/spec/clusterIP")), ("spec.type", text("/spec/type"))]),
        "Job" => {
            let succeeded = object.pointer("/status/succeeded").and_then(Value::as_i64).unwrap_or(0);
            fields.push(("status.successful", succeeded.to_string()));
        }
        _ => {}
    }
    Fields(fields)
}

/// A parsed field selector: every term must hold.
#[derive(Clone, Debug, Default)]
pub(super) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `text` for `kind`; the error is the real server's message (HTTP 400 BadRequest).
    pub fn parse(kind: &str, text: &str) -> Result<FieldSelector, String> {
        let (fields, refuse) = accepted(kind);
        let mut terms = Vec::new();
        for term in text.split(',').filter(|t| !t.is_empty()) {
            let (field, equal, value) =
                split_term(term).ok_or_else(|| format!("invalid selector: '{text}'; can't understand '{term}'"))?;
            // `spec.host` is what old v1 clients send for `spec.nodeName`.
            let field = if kind == "Pod" && field == "spec.host" { "spec.nodeName" } else { field };
            if !fields.contains(&field) {
                return Err(refuse(field));
            }
            terms.push((field.to_owned(), equal, value.to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, fields: &Fields) -> bool {
        self.0.iter().all(|(field, equal, value)| (fields.get(field) == value) == *equal)
    }
}

/// `field!=value`, `field==value` or `field=value`, as (field, is equality, value).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    if let Some((field, value)) = term.split_once("!=") {
        return Some((field.trim(), false, value.trim()));
    }
    let (field, value) = term.split_once("==").or_else(|| term.split_once('='))?;
    Some((field.trim(), true, value.trim()))
}

/// A parsed label selector: equality (`=`, `==`, `!=`), set (`in`, `notin`) and existence (`k`, `!k`) terms.
#[derive(Clone, Debug, Default)]
pub(super) struct LabelSelector(Vec<LabelTerm>);

#[derive(Clone, Debug)]
enum LabelTerm {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

impl LabelSelector {
    /// Parses `text`; terms it cannot read are ignored (they select everything), never refused.
    pub fn parse(text: &str) -> LabelSelector {
        LabelSelector(split_outside_parentheses(text).into_iter().filter_map(label_term).collect())
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|term| match term {
            LabelTerm::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            LabelTerm::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            LabelTerm::Exists(key) => labels.contains_key(key),
            LabelTerm::Absent(key) => !labels.contains_key(key),
        })
    }
}

fn label_term(term: &str) -> Option<LabelTerm> {
    let term = term.trim();
    let set = |values: &str| -> Option<Vec<String>> {
        let inner = values.trim().strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
    };
    if let Some((key, value)) = term.split_once("!=") {
        return Some(LabelTerm::NotIn(key.trim().to_owned(), vec![value.trim().to_owned()]));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(LabelTerm::In(key.trim().to_owned(), vec![value.trim().to_owned()]));
    }
    if let Some((key, values)) = term.split_once(" notin ") {
        return Some(LabelTerm::NotIn(key.trim().to_owned(), set(values)?));
    }
    if let Some((key, values)) = term.split_once(" in ") {
        return Some(LabelTerm::In(key.trim().to_owned(), set(values)?));
    }
    match term.strip_prefix('!') {
        Some(key) => Some(LabelTerm::Absent(key.trim().to_owned())),
        None if !term.is_empty() && !term.contains(' ') => Some(LabelTerm::Exists(term.to_owned())),
        None => None,
    }
}

fn split_outside_parentheses(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The labels of `object`.
pub(super) fn labels_of(object: &Value) -> BTreeMap<String, String> {
    let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
    labels.into_iter().flatten().filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned()))).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod() -> Value {
        json!({"kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
               "spec": {"nodeName": "node-1"}, "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}})
    }

    fn selects(selector: &str, object: &Value) -> bool {
        FieldSelector::parse("Pod", selector).unwrap().matches(&fields_of("Pod", object))
    }

    #[test]
    fn pod_fields_compare_as_the_api_server_derives_them() {
        let pod = pod();
        assert!(selects("spec.nodeName=node-1", &pod));
        assert!(selects("spec.nodeName==node-1,status.podIP=10.0.0.1", &pod));
        assert!(!selects("spec.nodeName!=node-1", &pod));
        assert!(selects("spec.hostNetwork=false", &pod), "an absent boolean is \"false\"");
        assert!(selects("spec.host=node-1", &pod), "the old name of spec.nodeName");
        assert!(selects("status.podIPs=", &pod), "accepted, never among the selectable fields");
        let unscheduled = json!({"kind": "Pod", "metadata": {"name": "new", "namespace": "shop"}});
        assert!(selects("spec.nodeName=", &unscheduled), "an absent field is \"\"");
    }

    #[test]
    fn unsupported_fields_are_refused_with_the_real_message() {
        let refused = |kind: &str, selector: &str| FieldSelector::parse(kind, selector).unwrap_err();
        assert_eq!(refused("Pod", "spec.containers=x"), "field label not supported: spec.containers");
        assert_eq!(refused("Node", "metadata.namespace=x"), "field label not supported: metadata.namespace");
        assert_eq!(
            refused("EndpointSlice", "spec.nodeName=x"),
            "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(refused("Pod", "nonsense"), "invalid selector: 'nonsense'; can't understand 'nonsense'");
    }

    #[test]
    fn label_selectors_select() {
        let labels = labels_of(&pod());
        let selects = |text: &str| LabelSelector::parse(text).matches(&labels);
        assert!(selects("app=web,tier!=back"));
        assert!(selects("app in (web, api),!canary,tier"));
        assert!(!selects("app notin (web)"));
        assert!(!selects("app==api"));
        assert!(selects("missing!=x"), "!= selects objects without the label");
    }
}
