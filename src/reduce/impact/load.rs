//! Policy files: NetworkPolicies, CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies from files or
//! directories, as written by hand, by the generator (its stream or `--output-dir`) or by `kubectl get
//! networkpolicy -A -o yaml` (a `List`). Other kinds in the same manifests are skipped and counted; policy kinds
//! that would change the answer but are not evaluated (Calico's, AdminNetworkPolicy) are refused. A policy given
//! twice (same kind, namespace and name) counts once, as its last version, as `kubectl apply` of the files in
//! that order would leave it: so the cluster's policies followed by a pull request's changed ones are previewed
//! as the cluster would hold them.

use std::path::PathBuf;

use super::set::Policy;
use super::{cilium, networkpolicy};
use crate::reduce::error::{ReduceError, Result};
use crate::reduce::manifests;

/// The policies read, how many other objects were skipped, and how many policies a later version replaced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub policies: Vec<Policy>,
    pub skipped: usize,
    pub replaced: usize,
}

impl Loaded {
    /// Adds the policies of one object, replacing those of an earlier object of the same kind and name.
    fn put(&mut self, policies: Vec<Policy>) {
        let Some(origin) = policies.first().map(|p| p.origin.clone()) else { return };
        let same = |p: &Policy| {
            (&p.origin.kind, &p.origin.namespace, &p.origin.name) == (&origin.kind, &origin.namespace, &origin.name)
        };
        let before = self.policies.len();
        self.policies.retain(|p| !same(p));
        if self.policies.len() < before {
            self.replaced += 1;
        }
        self.policies.extend(policies);
    }
}

/// Reads every policy under `paths`; finding none is bad input (most likely the wrong path).
pub fn load_policies(paths: &[PathBuf]) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    manifests::visit_objects(paths, &mut |file, object| add(file, object, &mut loaded))?;
    if loaded.policies.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ReduceError::bad_input(
            &names.join(", "),
            format!(
                "no NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy found ({} other object(s)); \
                 give the policy files or directories (e.g. kubectl get networkpolicy -A -o yaml > policies.yaml)",
                loaded.skipped
            ),
        ));
    }
    Ok(loaded)
}

/// Reads the policies of one text (the generator's own stream, for its self-check).
pub fn policies_from_text(name: &str, text: &str) -> Result<Vec<Policy>> {
    let mut loaded = Loaded::default();
    manifests::visit_text(name, text, &mut |object| add(name, object, &mut loaded))?;
    Ok(loaded.policies)
}

fn add(file: &str, object: &serde_yaml::Value, loaded: &mut Loaded) -> std::result::Result<(), String> {
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let (kind, api_version) = (text("kind"), text("apiVersion"));
    let json = || serde_json::to_value(object).map_err(|e| format!("{kind}: {e}"));
    match (kind.as_str(), api_version.split('/').next().unwrap_or_default()) {
        ("NetworkPolicy", "networking.k8s.io") => loaded.put(vec![networkpolicy::translate(json()?, file)?]),
        ("CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy", "cilium.io") => {
            loaded.put(cilium::translate(&json()?, file)?);
        }
        ("NetworkPolicy" | "GlobalNetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy", _) => {
            return Err(format!(
                "{kind} of {api_version}: netmap-reduce evaluates networking.k8s.io/v1 NetworkPolicies and Cilium's \
                 policies only, and this one would change the answer; leave it out of the input"
            ));
        }
        _ => loaded.skipped += 1,
    }
    Ok(())
}
