//! `netmap-reduce`: turns a snapshot of `network_mapper_edge_total` (DESIGN §2) into the "X calls Y" listing,
//! Otterize ClientIntents, JSON and graphs (DESIGN §6); and turns committed ClientIntents into recording rules
//! of the declared edges.
//!
//! Data flow, each step its own module:
//!
//! - sources → [`model::Snapshot`]: [`input`] (files, stdin; format detected) with the pure parsers
//!   [`api`] (Prometheus API JSON) and [`exposition`] (OpenMetrics / 0.0.4 text); or [`prometheus`] (a live
//!   server);
//! - [`model`]: sums edges across inputs and nodes, joins kinds, filters, sorts → [`model::ServiceMap`];
//! - renderers: [`render`] (list, json, dot, mermaid), [`intents`] (ClientIntents v2beta1 / v1alpha3);
//! - [`declared`]: ClientIntents → `network_mapper:edge:declared` recording rules.
//!
//! The binary only parses arguments and maps [`ReduceError::exit_code`] to the process exit code.

pub mod api;
pub mod declared;
pub mod error;
pub mod exposition;
pub mod input;
pub mod intents;
pub mod model;
pub mod policy;
pub mod prometheus;
pub mod render;
pub mod yaml;

use std::io::Write;
use std::path::PathBuf;

pub use error::{ReduceError, Result};
pub use intents::IntentsVersion;
pub use model::{Filter, ServiceMap, Snapshot};
pub use prometheus::PrometheusSource;

/// Where the snapshot comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Files, `-` for stdin; summed.
    Inputs(Vec<String>),
    /// A live Prometheus-compatible server.
    Prometheus(PrometheusSource),
}

/// The `--format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    List,
    Intents,
    Json,
    Dot,
    Mermaid,
}

/// Everything one reduction needs.
#[derive(Debug, Clone)]
pub struct ReduceRequest {
    pub source: Source,
    pub filter: Filter,
    pub format: OutputFormat,
    pub intents_version: IntentsVersion,
    /// With `intents`: write `<client>.<namespace>.yaml` files here instead of one stream.
    pub output_dir: Option<PathBuf>,
}

/// How a successful run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The map was written; with `--output-dir`, the files written.
    Written { files: Vec<PathBuf> },
    /// Nothing survived the filters: the caller says `No connections found.` (DESIGN §6).
    Empty,
}

/// Loads the snapshot from its source.
pub fn load_snapshot(source: &Source) -> Result<Snapshot> {
    match source {
        Source::Inputs(paths) => input::read_inputs(paths),
        Source::Prometheus(server) => prometheus::query_snapshot(server),
    }
}

/// Renders a map in a stream format (every format; intents as one `---`-separated stream).
pub fn render(map: &ServiceMap, format: OutputFormat, version: IntentsVersion) -> String {
    match format {
        OutputFormat::List => render::render_list(map),
        OutputFormat::Intents => intents::render_intents_stream(map, version),
        OutputFormat::Json => render::render_json(map),
        OutputFormat::Dot => render::render_dot(map),
        OutputFormat::Mermaid => render::render_mermaid(map),
    }
}

/// Runs one reduction, writing to `out` (or to `output_dir`).
pub fn run(request: &ReduceRequest, out: &mut dyn Write) -> Result<Outcome> {
    if request.output_dir.is_some() && request.format != OutputFormat::Intents {
        return Err(ReduceError::Usage("--output-dir only goes with --format intents".to_owned()));
    }
    let map = load_snapshot(&request.source)?.into_map(&request.filter);
    if map.is_empty() {
        return Ok(Outcome::Empty);
    }
    if let Some(dir) = &request.output_dir {
        let files = write_intents_dir(&map, request.intents_version, dir)?;
        return Ok(Outcome::Written { files });
    }
    let text = render(&map, request.format, request.intents_version);
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| ReduceError::io("<stdout>", e))?;
    Ok(Outcome::Written { files: Vec::new() })
}

fn write_intents_dir(map: &ServiceMap, version: IntentsVersion, dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| ReduceError::io(dir.display().to_string(), e))?;
    let mut files = Vec::new();
    for document in intents::render_intents(map, version) {
        let path = dir.join(&document.file_name);
        std::fs::write(&path, document.yaml).map_err(|e| ReduceError::io(path.display().to_string(), e))?;
        files.push(path);
    }
    Ok(files)
}

/// Declared-edges mode: reads ClientIntents and writes the recording rules to `out`. Returns the warnings.
pub fn run_declared(paths: &[PathBuf], out: &mut dyn Write) -> Result<Vec<String>> {
    let declared = declared::read_declared(paths)?;
    let rules = declared::render_rules(&declared);
    out.write_all(rules.as_bytes()).and_then(|()| out.flush()).map_err(|e| ReduceError::io("<stdout>", e))?;
    Ok(declared.warnings)
}
