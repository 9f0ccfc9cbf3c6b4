//! `netmap-reduce`: turns a snapshot of `network_mapper_edge_total` (docs/design.md §2) into the "X calls Y" listing,
//! Otterize ClientIntents, JSON and graphs (docs/design.md §6); and turns committed ClientIntents into recording rules
//! of the declared edges.
//!
//! Data flow, each step its own module:
//!
//! - sources → [`model::Snapshot`]: [`input`] (files, stdin; format detected) with the pure parsers
//!   [`api`] (Prometheus API JSON) and [`exposition`] (OpenMetrics / 0.0.4 text); or [`prometheus`] (a live
//!   server);
//!   [`validate`] tells a wrong input (no network-mapper series) from an empty map; [`time`] holds first/last
//!   seen where the source has timestamps;
//! - [`model`]: sums edges across inputs and nodes, joins kinds, filters, sorts → [`model::ServiceMap`];
//!   [`control_plane`] leaves the mesh proxies' calls to their control plane out of listings and intents;
//! - [`graph`]: the map as nodes and edges, `--focus`, `--group-by namespace`;
//! - renderers: [`render`] (list, json, dot, mermaid), [`html`] (the interactive map), [`intents`]
//!   (ClientIntents v2beta1 / v1alpha3) and [`outdir`] (`--output-dir`, `--prune`);
//! - [`declared`]: ClientIntents → `network_mapper:edge:declared` recording rules, and declared edges never
//!   seen; [`diff`]: new and gone edges between two snapshots.
//!
//! The binary only parses arguments and maps [`ReduceError::exit_code`] to the process exit code.

pub mod api;
pub mod control_plane;
pub mod declared;
pub mod diff;
pub mod error;
pub mod exposition;
pub mod flags;
pub mod graph;
pub mod html;
pub mod impact;
pub mod input;
pub mod intents;
pub mod manifests;
pub mod model;
pub mod outdir;
pub mod policy;
pub mod prometheus;
pub mod render;
pub mod time;
pub mod validate;
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
    Html,
}

/// How the picture formats (`dot`, `mermaid`, `html`) and the map are narrowed and drawn.
#[derive(Debug, Clone, Default)]
pub struct GraphRequest {
    /// `--focus`: a workload (`name` or `name.namespace`) and its neighbours.
    pub focus: Option<String>,
    /// `--depth`: hops around the focus.
    pub depth: usize,
    /// `--group-by namespace`: one node per namespace (dot, mermaid; the html map has it as a switch).
    pub group_by_namespace: bool,
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
    /// With `output_dir`: remove the files an earlier run wrote for clients that are gone.
    pub prune: bool,
    /// `--allow-empty`: an empty map with `prune` removes every file an earlier run wrote.
    pub allow_empty: bool,
    pub graph: GraphRequest,
    /// `list`: end each edge with its first and last seen times, where known.
    pub show_seen: bool,
    /// `--declared`: instead of the map, list the edges these ClientIntents declare that were not seen.
    pub declared: Vec<PathBuf>,
    /// `--skip-renamed`: leave out edge series scraped without `honor_labels: true` instead of failing.
    pub skip_renamed: bool,
    /// `--show-control-plane`: keep mesh proxies' calls to their control plane in `list` and `intents`.
    pub show_control_plane: bool,
}

impl ReduceRequest {
    /// `list` and `intents` leave out mesh control-plane calls unless asked ([`control_plane`]); they need the
    /// per-port connections to tell them.
    fn hides_control_plane(&self) -> bool {
        !self.show_control_plane
            && self.declared.is_empty()
            && matches!(self.format, OutputFormat::List | OutputFormat::Intents)
    }
}

/// How a successful run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The map was written; with `--output-dir`, the files written and those pruned.
    Written { files: Vec<PathBuf>, removed: Vec<PathBuf> },
    /// Nothing survived the filters (the output, if any, is the empty map): the caller says `No connections
    /// found.` and what was read and kept (docs/design.md §6).
    Empty { report: String, removed: Vec<PathBuf> },
    /// `--declared`: the declared edges that were not seen.
    Unseen { count: usize, declared: usize, warnings: Vec<String> },
}

/// Loads the snapshot from its source. `with_times`: also ask a live server when each edge was seen (a range
/// query; files carry their times or not).
pub fn load_snapshot(source: &Source, skip_renamed: bool, with_times: bool) -> Result<Snapshot> {
    load_snapshot_with(source, skip_renamed, with_times, false)
}

/// [`load_snapshot`]; `with_ports` also asks a live server for the per-port connections (files carry them or
/// not).
pub fn load_snapshot_with(source: &Source, skip_renamed: bool, with_times: bool, with_ports: bool) -> Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    snapshot.skip_renamed = skip_renamed;
    match source {
        Source::Inputs(paths) => input::read_inputs_with(paths, snapshot),
        Source::Prometheus(server) => prometheus::query_live(server, snapshot, with_times, with_ports),
    }
}

/// Renders a map in a stream format (every format; intents as one `---`-separated stream).
pub fn render(map: &ServiceMap, format: OutputFormat, version: IntentsVersion) -> String {
    render_with(map, format, version, &GraphRequest::default(), false)
}

/// [`render`] with the graph options and `show_seen`.
pub fn render_with(
    map: &ServiceMap,
    format: OutputFormat,
    version: IntentsVersion,
    graph_request: &GraphRequest,
    show_seen: bool,
) -> String {
    let graph = || {
        let graph = graph::build(map);
        if graph_request.group_by_namespace { graph::group_by_namespace(&graph) } else { graph }
    };
    match format {
        OutputFormat::List => render::render_list(map, show_seen),
        OutputFormat::Intents => intents::render_intents_stream(map, version),
        OutputFormat::Json => render::render_json(map),
        OutputFormat::Dot => render::render_dot(&graph()),
        OutputFormat::Mermaid => render::render_mermaid(&graph()),
        OutputFormat::Html => html::render_html(&graph::build(map), graph_request),
    }
}

/// Runs one reduction, writing to `out` (or to `output_dir`).
pub fn run(request: &ReduceRequest, out: &mut dyn Write) -> Result<Outcome> {
    check_request(request)?;
    let with_times = request.show_seen || matches!(request.format, OutputFormat::Json | OutputFormat::Html);
    let with_ports = request.format == OutputFormat::Json || request.hides_control_plane();
    let snapshot = load_snapshot_with(&request.source, request.skip_renamed, with_times, with_ports)?;
    let renamed_skipped = snapshot.stats.renamed_skipped;
    let (mut map, mut report) = snapshot.into_map_reported(&request.filter);
    if request.hides_control_plane() && control_plane::leave_out(&mut map) > 0 {
        let left = map.clients.iter().map(|client| client.calls.len()).sum();
        report.stages.push(("leaving out mesh control-plane calls (--show-control-plane keeps them)".into(), left));
    }
    if let Some(focus) = &request.graph.focus {
        map = graph::focus(map, focus, request.graph.depth).map_err(ReduceError::Usage)?;
    }
    if !request.declared.is_empty() {
        return declared::run_unseen(&request.declared, &request.filter, &map, out);
    }
    let mut outcome = match &request.output_dir {
        Some(dir) if map.is_empty() && request.prune => {
            outdir::check_empty_prune(dir, request.allow_empty, &empty_report(&report, renamed_skipped))?;
            let (files, removed) = outdir::write_intents_dir(&map, request.intents_version, dir, true)?;
            Outcome::Written { files, removed }
        }
        Some(dir) => {
            let (files, removed) = outdir::write_intents_dir(&map, request.intents_version, dir, request.prune)?;
            Outcome::Written { files, removed }
        }
        None => {
            let text = render_with(&map, request.format, request.intents_version, &request.graph, request.show_seen);
            write_out(out, &text)?;
            Outcome::Written { files: Vec::new(), removed: Vec::new() }
        }
    };
    if map.is_empty() {
        let removed = match outcome {
            Outcome::Written { removed, .. } => removed,
            _ => Vec::new(),
        };
        outcome = Outcome::Empty { report: empty_report(&report, renamed_skipped), removed };
    }
    Ok(outcome)
}

fn check_request(request: &ReduceRequest) -> Result<()> {
    let usage = |m: &str| Err(ReduceError::Usage(m.to_owned()));
    if request.output_dir.is_some() && request.format != OutputFormat::Intents {
        return usage("--output-dir only goes with --format intents");
    }
    if request.prune && request.output_dir.is_none() {
        return usage("--prune only goes with --output-dir (it removes files an earlier run wrote there)");
    }
    if request.graph.group_by_namespace
        && !matches!(request.format, OutputFormat::Dot | OutputFormat::Mermaid | OutputFormat::Html)
    {
        return usage("--group-by namespace goes with --format dot, mermaid or html");
    }
    Ok(())
}

pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| ReduceError::io("<stdout>", e))
}

/// What was read and what each filter kept, for an empty map: `-n nonexistent` must say why nothing is left.
pub(crate) fn empty_report(report: &model::FilterReport, renamed_skipped: usize) -> String {
    let mut text = format!("read {} edge(s)", report.read);
    if !report.client_namespaces.is_empty() {
        text.push_str(&format!(" from client namespaces {}", report.client_namespaces.join(", ")));
    }
    for (stage, left) in report.stages.iter().filter(|(stage, _)| !stage.is_empty()) {
        text.push_str(&format!("; {stage} kept {left}"));
    }
    if renamed_skipped > 0 {
        text.push_str(&format!("; --skip-renamed left out {renamed_skipped} series"));
    }
    text
}

/// Declared-edges mode: reads ClientIntents and writes the recording rules to `out`. Returns the warnings.
pub fn run_declared(paths: &[PathBuf], out: &mut dyn Write) -> Result<Vec<String>> {
    let declared = declared::read_declared(paths)?;
    let rules = declared::render_rules(&declared);
    write_out(out, &rules)?;
    Ok(declared.warnings)
}
