//! Snapshot inputs: files or `-` for stdin, each a Prometheus API response (JSON object), `netmap-reduce`'s own
//! `--format json` output (JSON array) or a text exposition, told apart by their first byte. All inputs are
//! summed into one [`Snapshot`]; each is checked on its own ([`super::validate`]).

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::api::{ApiProblem, parse_api_response};
use super::error::{ReduceError, Result};
use super::exposition::parse_exposition;
use super::model::{CONNECTIONS_METRIC, EDGE_METRIC, LabelSet, Snapshot};
use super::time::{Seen, parse_time};
use super::validate::{InputKind, check_input};

/// The input formats.
pub type InputFormat = InputKind;

/// Tells the format from the content: an API response is a JSON object, `--format json` a JSON array; an
/// exposition starts with neither.
pub fn detect_format(bytes: &[u8]) -> InputFormat {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => InputKind::ApiJson,
        Some(b'[') => InputKind::EdgeJson,
        _ => InputKind::Exposition,
    }
}

/// Parses one input's bytes into `snapshot` and checks that it was a network-mapper snapshot; `name` is how
/// errors refer to the input.
pub fn parse_input(name: &str, bytes: &[u8], snapshot: &mut Snapshot) -> Result<()> {
    let before = snapshot.stats.clone();
    snapshot.stats.not_a_sample = None;
    let kind = detect_format(bytes);
    match kind {
        InputKind::ApiJson => parse_api_response(bytes, snapshot).map_err(|problem| match problem {
            ApiProblem::ErrorStatus { error_type, message } => {
                ReduceError::ApiErrorResponse { input: name.to_owned(), error_type, message }
            }
            ApiProblem::Malformed(problem) | ApiProblem::BadSeries(problem) => ReduceError::bad_input(name, problem),
        })?,
        InputKind::EdgeJson => {
            parse_edge_json(bytes, snapshot).map_err(|problem| ReduceError::bad_input(name, problem))?;
        }
        InputKind::Exposition => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                ReduceError::bad_input(
                    name,
                    format!("not a Prometheus API response nor a text exposition: not UTF-8 text ({e})"),
                )
            })?;
            parse_exposition(text, snapshot).map_err(|problem| ReduceError::bad_input(name, problem))?;
        }
    }
    check_input(name, bytes, kind, &before, &snapshot.stats)
}

/// One edge of `netmap-reduce --format json` (see `render::render_json`), read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEdgeIn {
    client: String,
    namespace: String,
    #[serde(default)]
    client_kind: Option<String>,
    server: String,
    #[serde(default)]
    server_namespace: Option<String>,
    #[serde(default)]
    server_kind: Option<String>,
    count: f64,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    ports: Vec<JsonPortIn>,
}

/// Connections of an edge to one server port.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPortIn {
    port: u16,
    connections: f64,
}

/// Reads `--format json` output back, so a saved map can be filtered, rendered again or diffed.
fn parse_edge_json(bytes: &[u8], snapshot: &mut Snapshot) -> Result<(), String> {
    let edges: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| format!("a JSON array, but not netmap-reduce --format json output: {e}"))?;
    for (index, value) in edges.into_iter().enumerate() {
        let edge: JsonEdgeIn = serde_json::from_value(value).map_err(|e| {
            format!("a JSON array, but item {} is not an edge of netmap-reduce --format json output: {e}", index + 1)
        })?;
        add_json_edge(&edge, snapshot).map_err(|problem| format!("item {}: {problem}", index + 1))?;
    }
    Ok(())
}

fn labels_of(edge: &JsonEdgeIn) -> LabelSet<'_> {
    LabelSet {
        name: Some(EDGE_METRIC.into()),
        client: Some(edge.client.as_str().into()),
        namespace: Some(edge.namespace.as_str().into()),
        server: Some(edge.server.as_str().into()),
        server_namespace: edge.server_namespace.as_deref().map(Into::into),
        ..LabelSet::default()
    }
}

fn add_json_edge(edge: &JsonEdgeIn, snapshot: &mut Snapshot) -> Result<(), String> {
    let labels = labels_of(edge);
    let seen = match (&edge.first_seen, &edge.last_seen) {
        (Some(first), Some(last)) => Some(Seen { first: parse_time(first)?, last: parse_time(last)? }),
        _ => None,
    };
    snapshot.add_series_seen(&labels, edge.count, seen)?;
    for port in &edge.ports {
        let port_text = port.port.to_string();
        let labels = LabelSet {
            name: Some(CONNECTIONS_METRIC.into()),
            port: Some(port_text.as_str().into()),
            ..labels_of(edge)
        };
        snapshot.add_series(&labels, port.connections)?;
    }
    if let Some(kind) = &edge.client_kind {
        snapshot.add_kind(&edge.namespace, &edge.client, kind);
    }
    if let (Some(kind), Some(ns)) = (&edge.server_kind, &edge.server_namespace) {
        snapshot.add_kind(ns, &edge.server, kind);
    }
    Ok(())
}

/// Reads and sums the given inputs (`-` is stdin).
pub fn read_inputs(paths: &[String]) -> Result<Snapshot> {
    read_inputs_with(paths, Snapshot::default())
}

/// [`read_inputs`] into a prepared snapshot (e.g. with `skip_renamed` set).
pub fn read_inputs_with(paths: &[String], mut snapshot: Snapshot) -> Result<Snapshot> {
    for path in paths {
        let (name, bytes) = read_input(path)?;
        parse_input(&name, &bytes, &mut snapshot)?;
    }
    Ok(snapshot)
}

fn read_input(path: &str) -> Result<(String, Vec<u8>)> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| ReduceError::io("<stdin>", e))?;
        return Ok(("<stdin>".to_owned(), bytes));
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReduceError::MissingInput { path: Path::new(path).to_owned() },
        std::io::ErrorKind::IsADirectory => {
            ReduceError::bad_input(path, "is a directory; give the snapshot files in it")
        }
        _ => ReduceError::io(path, e),
    })?;
    Ok((path.to_owned(), bytes))
}
