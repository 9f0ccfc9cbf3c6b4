//! What `impact` prints: every observed edge the policy set would deny (and those it cannot tell about), as
//! lines for people or as JSON for scripts, each with how often and when the edge was seen.

use std::fmt::Write as _;

use serde::Serialize;

use super::check::{Checked, DeniedSide, Verdict};
use crate::reduce::declared::describe_edge;
use crate::reduce::model::Edge;
use crate::reduce::render::Observed;
use crate::reduce::time::format_time;

/// Counts for the summary line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Distinct edges checked.
    pub edges: usize,
    /// Edges with at least one denied port.
    pub denied_edges: usize,
    /// Edge ports denied.
    pub denied: usize,
    /// Edge ports the inventory cannot decide.
    pub unknown: usize,
}

impl Summary {
    pub fn of(checked: &[Checked<'_>]) -> Summary {
        let denied: Vec<&Checked<'_>> = checked.iter().filter(|c| is_denied(c)).collect();
        Summary {
            edges: distinct_edges(checked.iter()),
            denied_edges: distinct_edges(denied.iter().copied()),
            denied: denied.len(),
            unknown: checked.iter().filter(|c| matches!(c.verdict, Verdict::Unknown(_))).count(),
        }
    }
}

fn is_denied(checked: &Checked<'_>) -> bool {
    matches!(checked.verdict, Verdict::Denied(_))
}

/// The checks of one edge are consecutive (one per port), so a new edge starts where client or call change.
fn distinct_edges<'a, 'm: 'a>(checked: impl Iterator<Item = &'a Checked<'m>>) -> usize {
    let mut previous: Option<&Checked<'_>> = None;
    let mut count = 0;
    for item in checked {
        if !previous.is_some_and(|p| std::ptr::eq(p.client, item.client) && std::ptr::eq(p.call, item.call)) {
            count += 1;
        }
        previous = Some(item);
    }
    count
}

/// One line per denied or undecided edge port, denied first.
pub fn render_text(checked: &[Checked<'_>]) -> String {
    let mut out = String::new();
    for (label, denied) in [("deny", true), ("unknown", false)] {
        for item in checked.iter().filter(|c| is_denied(c) == denied) {
            let why = match &item.verdict {
                Verdict::Allowed => continue,
                Verdict::Denied(sides) => sides.iter().map(describe_side).collect::<Vec<_>>().join("; "),
                Verdict::Unknown(reason) => format!("cannot tell: {reason}"),
            };
            let _ =
                writeln!(out, "{label}: {} on {}: {why}; {}", describe_edge(&edge(item)), port(item.port), seen(item));
        }
    }
    out
}

fn describe_side(side: &DeniedSide) -> String {
    let by = if side.isolated_by.is_empty() {
        "policies that may select it".to_owned()
    } else {
        side.isolated_by.join(", ")
    };
    format!("{} of {} is isolated by {by} and no rule allows it", side.direction, side.workload)
}

fn port(port: Option<u16>) -> String {
    port.map_or_else(|| "an unknown port".to_owned(), |p| format!("TCP {p}"))
}

fn seen(item: &Checked<'_>) -> String {
    let count = item.call.count;
    let last =
        item.call.seen.map_or_else(|| "last seen unknown".to_owned(), |s| format!("last seen {}", format_time(s.last)));
    format!("{count} observation(s), {last}")
}

fn edge(item: &Checked<'_>) -> Edge {
    Edge {
        client: item.client.name.clone(),
        namespace: item.client.namespace.clone(),
        server: item.call.server.clone(),
        server_namespace: item.call.namespace.clone(),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    edges: usize,
    denied: Vec<JsonItem<'a>>,
    unknown: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    client: &'a str,
    namespace: &'a str,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_namespace: Option<&'a str>,
    /// `null` when the port is not known.
    port: Option<u16>,
    protocol: &'static str,
    #[serde(flatten)]
    observed: Observed,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    denied_at: Vec<JsonSide<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonSide<'a> {
    direction: &'static str,
    workload: &'a str,
    isolated_by: &'a [String],
}

fn json_item<'a>(item: &'a Checked<'a>) -> JsonItem<'a> {
    let (denied_at, reason) = match &item.verdict {
        Verdict::Denied(sides) => {
            let sides = sides.iter().map(|s| JsonSide {
                direction: s.direction,
                workload: &s.workload,
                isolated_by: &s.isolated_by,
            });
            (sides.collect(), None)
        }
        Verdict::Unknown(reason) => (Vec::new(), Some(reason.as_str())),
        Verdict::Allowed => (Vec::new(), None),
    };
    JsonItem {
        client: &item.client.name,
        namespace: &item.client.namespace,
        server: &item.call.server,
        server_namespace: item.call.namespace.as_deref(),
        port: item.port,
        protocol: "TCP",
        observed: Observed::of(item.call),
        denied_at,
        reason,
    }
}

/// `{"edges": N, "denied": […], "unknown": […]}`.
pub fn render_json(checked: &[Checked<'_>]) -> String {
    let denied = checked.iter().filter(|c| is_denied(c)).map(json_item).collect();
    let unknown = checked.iter().filter(|c| matches!(c.verdict, Verdict::Unknown(_))).map(json_item).collect();
    let report = JsonReport { edges: Summary::of(checked).edges, denied, unknown };
    let mut json = serde_json::to_string_pretty(&report).unwrap_or_else(|e| unreachable!("serde_json: {e}"));
    json.push('\n');
    json
}
