//! `netmap-reduce diff OLD NEW`: the edges that appeared and the edges that went between two snapshots (two
//! files, or one live server at two times). New edges make the run exit 1, so a pipeline can stop on them.

use std::collections::BTreeSet;
use std::io::Write;

use super::declared::{describe_edge, map_edges};
use super::error::Result;
use super::model::{Edge, Filter, Snapshot};
use super::write_out;

/// The change between two snapshots, each list sorted.
#[derive(Debug, Default, PartialEq)]
pub struct MapDiff {
    pub new: Vec<Edge>,
    pub gone: Vec<Edge>,
    /// Edges in both.
    pub kept: usize,
}

/// Compares the two snapshots after the same filters.
pub fn diff(old: Snapshot, new: Snapshot, filter: &Filter) -> MapDiff {
    let old: BTreeSet<Edge> = map_edges(&old.into_map(filter)).collect();
    let new: BTreeSet<Edge> = map_edges(&new.into_map(filter)).collect();
    MapDiff {
        new: new.difference(&old).cloned().collect(),
        gone: old.difference(&new).cloned().collect(),
        kept: old.intersection(&new).count(),
    }
}

/// Writes `+ <edge>` for each new edge and `- <edge>` for each gone one (new first).
pub fn write_diff(diff: &MapDiff, out: &mut dyn Write) -> Result<()> {
    let mut text = String::new();
    for edge in &diff.new {
        text.push_str(&format!("+ {}\n", describe_edge(edge)));
    }
    for edge in &diff.gone {
        text.push_str(&format!("- {}\n", describe_edge(edge)));
    }
    write_out(out, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(edges: &[(&str, &str)]) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (client, server) in edges {
            let edge = Edge {
                client: (*client).into(),
                namespace: "s".into(),
                server: (*server).into(),
                server_namespace: Some("s".into()),
            };
            snapshot.add_edge(edge, 1.0);
        }
        snapshot
    }

    #[test]
    fn new_and_gone_edges_are_listed_new_first() {
        let diff = diff(snapshot(&[("a", "b"), ("a", "c")]), snapshot(&[("a", "c"), ("d", "b")]), &Filter::default());
        assert_eq!(diff.kept, 1);
        let mut out = Vec::new();
        write_diff(&diff, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "+ d in namespace s calls b\n- a in namespace s calls b\n");
    }
}
