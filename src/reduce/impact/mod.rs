//! `netmap-reduce impact`: which of the calls we actually saw would a policy set deny? Offline, for any CNI:
//! policies (files or directories: NetworkPolicies, CiliumNetworkPolicies), the observed map (any input the
//! reducer reads, or `--prometheus`) and the workloads' labels (`--inventory-file` or `--kubeconfig`) in; every
//! observed edge the set would deny out, with its port, count and last seen (`docs/policies.md`).
//!
//! - [`load`] reads policy files; [`networkpolicy`] and [`cilium`] translate each API into the [`set`] every
//!   policy shares;
//! - [`evaluate`] decides what one pod may open to one server ([`ports`] holds the port sets);
//! - [`check`] runs the whole map through it (also the generator's self-check, `super::policy`);
//! - [`report`] writes the answer as text or JSON.

pub mod check;
pub mod cilium;
pub mod evaluate;
pub mod load;
pub mod networkpolicy;
pub mod ports;
pub mod report;
pub mod set;

use std::io::Write;
use std::path::PathBuf;

pub use check::{Checked, Verdict, check_map};
pub use report::Summary;

use super::error::Result;
use super::model::Filter;
use super::policy::{ClusterSource, check_inventory, load_cluster};
use super::{Source, empty_report, load_snapshot_with, write_out};

/// Everything one `impact` run needs.
#[derive(Debug, Clone)]
pub struct ImpactRequest {
    /// Policy files or directories.
    pub policies: Vec<PathBuf>,
    pub source: Source,
    pub filter: Filter,
    pub cluster: ClusterSource,
    /// `--format json` instead of text.
    pub json: bool,
    pub skip_renamed: bool,
}

/// How a run ended: the counts, and what the caller should say on stderr.
#[derive(Debug, Clone, Default)]
pub struct ImpactOutcome {
    pub summary: Summary,
    pub notes: Vec<String>,
}

/// Reads the policies, the map and the inventory, writes every observed edge the policies would deny.
pub fn run(request: &ImpactRequest, out: &mut dyn Write) -> Result<ImpactOutcome> {
    let loaded = load::load_policies(&request.policies)?;
    let mut notes = Vec::new();
    if loaded.skipped > 0 {
        notes.push(format!("skipped {} object(s) that are not policies", loaded.skipped));
    }
    if loaded.replaced > 0 {
        notes.push(format!("{} policy(ies) given more than once: the last version counts", loaded.replaced));
    }
    let mut snapshot = load_snapshot_with(&request.source, request.skip_renamed, true, true)?;
    let ports = snapshot.take_ports();
    let renamed_skipped = snapshot.stats.renamed_skipped;
    let (map, report) = snapshot.into_map_reported(&request.filter);
    if map.is_empty() {
        notes.push(format!("No connections found ({}): nothing to check.", empty_report(&report, renamed_skipped)));
        write_out(out, &if request.json { report::render_json(&[]) } else { String::new() })?;
        return Ok(ImpactOutcome { summary: Summary::default(), notes });
    }
    let cluster = load_cluster(&request.cluster)?;
    check_inventory(&map, &cluster, &request.cluster)?;
    let checked = check_map(&map, &ports, &cluster, &loaded.policies);
    let text = if request.json { report::render_json(&checked) } else { report::render_text(&checked) };
    write_out(out, &text)?;
    let summary = Summary::of(&checked);
    notes.push(format!(
        "{} of {} observed edge(s) would be denied ({} edge port(s)); {} edge port(s) cannot be told; {} \
         {} read.",
        summary.denied_edges,
        summary.edges,
        summary.denied,
        summary.unknown,
        loaded.policies.len(),
        if loaded.policies.len() == 1 { "policy" } else { "policies" }
    ));
    Ok(ImpactOutcome { summary, notes })
}

#[cfg(test)]
mod tests;
