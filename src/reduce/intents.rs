//! Otterize `ClientIntents`: the serde types of the two forms we write and read (`k8s.otterize.com/v2beta1`,
//! the default, and the older `v1alpha3`), and the mapping from a [`ServiceMap`] to one document per client.
//!
//! Naming rules follow Otterize's CLI export (docs/design.md §6): a target in another namespace is
//! `name.namespace`; the API server and Services without backing pods are `service` targets (`svc:` prefix in
//! v1alpha3); names outside the cluster are `internet.domains`; `kind` comes from `network_mapper_workload_info`
//! and is omitted when unknown.

use serde::{Deserialize, Serialize};

use super::model::{Call, Client, ServiceMap};
use super::yaml::to_yaml;

pub const API_GROUP: &str = "k8s.otterize.com";
pub const KIND: &str = "ClientIntents";

/// Which form of ClientIntents to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntentsVersion {
    #[default]
    V2beta1,
    V1alpha3,
}

impl IntentsVersion {
    pub fn api_version(self) -> String {
        match self {
            Self::V2beta1 => format!("{API_GROUP}/v2beta1"),
            Self::V1alpha3 => format!("{API_GROUP}/v1alpha3"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `k8s.otterize.com/v2beta1` ClientIntents (also the shape of v2alpha1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIntentsV2 {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: SpecV2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecV2 {
    pub workload: Workload,
    #[serde(default)]
    pub targets: Vec<TargetV2>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// One v2 target. Exactly one field is set; `kafka` is only read (declared edges), never written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetV2 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Workload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<NamedTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<NamedTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet: Option<Internet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTarget {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Internet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
}

/// `k8s.otterize.com/v1alpha3` ClientIntents (also the shape of v1alpha2 and v1beta1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIntentsV1 {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: SpecV1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecV1 {
    pub service: NamedTarget,
    #[serde(default)]
    pub calls: Vec<CallV1>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet: Option<Internet>,
}

/// One rendered ClientIntents document and the file it goes to with `--output-dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentsDocument {
    /// `<client>.<namespace>.yaml`, as Otterize's `--output-type dir`.
    pub file_name: String,
    pub yaml: String,
}

/// One document per client, in the map's order.
pub fn render_intents(map: &ServiceMap, version: IntentsVersion) -> Vec<IntentsDocument> {
    map.clients
        .iter()
        .map(|client| IntentsDocument {
            file_name: format!("{}.{}.yaml", client.name, client.namespace),
            yaml: match version {
                IntentsVersion::V2beta1 => to_yaml(&client_intents_v2(client)),
                IntentsVersion::V1alpha3 => to_yaml(&client_intents_v1(client)),
            },
        })
        .collect()
}

/// All documents as one stream, separated by `---` lines.
pub fn render_intents_stream(map: &ServiceMap, version: IntentsVersion) -> String {
    let docs: Vec<String> = render_intents(map, version).into_iter().map(|d| d.yaml).collect();
    docs.join("---\n")
}

/// The v2beta1 document of one client.
pub fn client_intents_v2(client: &Client) -> ClientIntentsV2 {
    let mut targets: Vec<TargetV2> = client
        .calls
        .iter()
        .filter(|call| call.namespace.is_some())
        .map(|call| {
            let name = target_name(client, call);
            if call.is_service() {
                TargetV2 { service: Some(NamedTarget { name }), ..TargetV2::default() }
            } else {
                TargetV2 { kubernetes: Some(Workload { name, kind: call.kind.clone() }), ..TargetV2::default() }
            }
        })
        .collect();
    if let Some(internet) = internet_of(client) {
        targets.push(TargetV2 { internet: Some(internet), ..TargetV2::default() });
    }
    ClientIntentsV2 {
        api_version: IntentsVersion::V2beta1.api_version(),
        kind: KIND.to_owned(),
        metadata: metadata_of(client),
        spec: SpecV2 { workload: Workload { name: client.name.clone(), kind: client.kind.clone() }, targets },
    }
}

/// The v1alpha3 document of one client (v1 has no `kind` fields; Otterize's v1 printer omits them too).
pub fn client_intents_v1(client: &Client) -> ClientIntentsV1 {
    let mut calls: Vec<CallV1> = client
        .calls
        .iter()
        .filter(|call| call.namespace.is_some())
        .map(|call| {
            let name = target_name(client, call);
            let name = if call.is_service() { format!("svc:{name}") } else { name };
            CallV1 { name: Some(name), ..CallV1::default() }
        })
        .collect();
    if let Some(internet) = internet_of(client) {
        calls.push(CallV1 { call_type: Some("internet".to_owned()), internet: Some(internet), ..CallV1::default() });
    }
    ClientIntentsV1 {
        api_version: IntentsVersion::V1alpha3.api_version(),
        kind: KIND.to_owned(),
        metadata: metadata_of(client),
        spec: SpecV1 { service: NamedTarget { name: client.name.clone() }, calls },
    }
}

/// `name` in the client's namespace, `name.namespace` elsewhere (so the API server is `kubernetes.default`
/// except for clients in `default`, exactly as Otterize writes it).
fn target_name(client: &Client, call: &Call) -> String {
    match call.namespace.as_deref() {
        Some(ns) if ns != client.namespace => format!("{}.{ns}", call.server),
        _ => call.server.clone(),
    }
}

fn internet_of(client: &Client) -> Option<Internet> {
    let domains: Vec<String> =
        client.calls.iter().filter(|call| call.namespace.is_none()).map(|call| call.server.clone()).collect();
    (!domains.is_empty()).then_some(Internet { domains })
}

/// `metadata.name` must be a DNS subdomain; the `_` that replaces dots in workload names (docs/design.md §4.1) is not
/// allowed there, so it becomes `-`. `spec` keeps the exact workload name.
fn metadata_of(client: &Client) -> Metadata {
    Metadata { name: client.name.replace('_', "-"), namespace: Some(client.namespace.clone()) }
}
