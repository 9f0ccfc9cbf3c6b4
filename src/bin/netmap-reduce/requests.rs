//! From parsed arguments to the library's requests: the source of the map, the filters, the options of each
//! format, and the [`flags::Run`] the flags are checked against.

use std::time::Duration;

use network_mapper::reduce::flags::{self, Mode};
use network_mapper::reduce::impact::ImpactRequest;
use network_mapper::reduce::policy::{ClusterSource, Direction, PlanOptions, PolicyFormat, PolicyRequest};
use network_mapper::reduce::{
    Filter, GraphRequest, IntentsVersion, OutputFormat, PrometheusSource, ReduceError, ReduceRequest, Source,
};

use crate::args::{
    Args, ClusterArgs, Command, DiffArgs, FilterArgs, Format, GroupBy, ImpactArgs, LiveArgs, PolicyApi,
    PolicyDirection, Version,
};

/// What the arguments ask for, for [`flags::check_flags`].
pub fn run_of(args: &Args) -> flags::Run {
    let (mode, live) = match &args.command {
        Some(Command::Diff(diff)) => (Mode::Diff, diff.live.prometheus.is_some()),
        Some(Command::Impact(impact)) => (Mode::Impact, impact.live.prometheus.is_some()),
        None if !args.declared_rules_from.is_empty() => (Mode::DeclaredRules, false),
        None => (map_mode(args), args.live.prometheus.is_some()),
    };
    let direction = args.policy.policy_direction;
    let ingress = !matches!(direction, PolicyDirection::Egress);
    let egress = !matches!(direction, PolicyDirection::Ingress);
    flags::Run { mode, live, ingress, egress }
}

fn map_mode(args: &Args) -> Mode {
    match output_format(args.format) {
        None => Mode::NetworkPolicy,
        Some(OutputFormat::List) if !args.views.declared.is_empty() => Mode::Declared,
        Some(format) => Mode::Render(format),
    }
}

/// The rendering of `--format`; `None` for `networkpolicy`, which is not a rendering of the map.
fn output_format(format: Format) -> Option<OutputFormat> {
    Some(match format {
        Format::List => OutputFormat::List,
        Format::Intents => OutputFormat::Intents,
        Format::Json => OutputFormat::Json,
        Format::Dot => OutputFormat::Dot,
        Format::Mermaid => OutputFormat::Mermaid,
        Format::Html => OutputFormat::Html,
        Format::Networkpolicy => return None,
    })
}

pub fn prometheus_source(live: &LiveArgs, offset: Duration) -> Option<PrometheusSource> {
    Some(PrometheusSource {
        url: live.prometheus.clone()?,
        window: live.window,
        bearer_token_file: live.bearer_token_file.clone(),
        basic_auth: live.basic_auth_user.clone().zip(live.basic_auth_password_file.clone()),
        headers: live.headers.clone(),
        ca_file: live.ca_file.clone(),
        insecure_skip_verify: live.insecure_skip_verify,
        timeout: live.timeout,
        offset,
    })
}

pub fn filter_from(args: &FilterArgs) -> Filter {
    Filter {
        namespaces: args.namespaces.clone(),
        min_count: args.min_count as f64,
        exclude_namespaces: args.exclude_namespace.clone(),
        exclude_servers: args.exclude_server.clone(),
    }
}

/// Files or `--prometheus`, never both, never neither.
fn source_from(inputs: Vec<String>, live: &LiveArgs) -> Result<Source, ReduceError> {
    match prometheus_source(live, Duration::ZERO) {
        Some(_) if !inputs.is_empty() => {
            Err(ReduceError::Usage("give snapshot files or --prometheus URL, not both".to_owned()))
        }
        Some(live) => Ok(Source::Prometheus(live)),
        None if inputs.is_empty() => Err(ReduceError::Usage(
            "no input: give snapshot files (`-` for stdin), --prometheus URL, or --declared-rules-from PATH".to_owned(),
        )),
        None => Ok(Source::Inputs(inputs)),
    }
}

/// The two sides of `diff`: two files, or one server at two times.
pub fn diff_sources(args: &DiffArgs) -> Result<(Source, Source), ReduceError> {
    match (&args.old, &args.new, prometheus_source(&args.live, Duration::ZERO)) {
        (Some(old), Some(new), None) => Ok((Source::Inputs(vec![old.clone()]), Source::Inputs(vec![new.clone()]))),
        (None, None, Some(new)) => {
            let offset = args.offset.ok_or_else(|| {
                ReduceError::Usage("diff --prometheus needs --offset (e.g. --window 1d --offset 7d)".to_owned())
            })?;
            let old = PrometheusSource { offset, ..new.clone() };
            Ok((Source::Prometheus(old), Source::Prometheus(new)))
        }
        _ => Err(ReduceError::Usage(
            "diff takes two snapshot files (OLD NEW), or --prometheus URL with --offset".to_owned(),
        )),
    }
}

fn cluster_from(args: ClusterArgs) -> ClusterSource {
    match args.inventory_file {
        Some(path) => ClusterSource::File(path),
        None => ClusterSource::Api(args.kubeconfig),
    }
}

pub fn policy_request_from(args: Args) -> Result<PolicyRequest, ReduceError> {
    let window = match args.live.prometheus {
        Some(_) => humantime::format_duration(args.live.window).to_string(),
        None => "snapshot".to_owned(),
    };
    let source = source_from(args.inputs, &args.live)?;
    let p = args.policy;
    Ok(PolicyRequest {
        source,
        filter: filter_from(&args.filters),
        cluster: cluster_from(p.cluster),
        format: match p.policy_format {
            PolicyApi::Kubernetes => PolicyFormat::Kubernetes,
            PolicyApi::Cilium => PolicyFormat::Cilium,
        },
        options: PlanOptions {
            direction: match p.policy_direction {
                PolicyDirection::Ingress => Direction::Ingress,
                PolicyDirection::Egress => Direction::Egress,
                PolicyDirection::Both => Direction::Both,
            },
            node_local_dns: p.node_local_dns,
            allow_from_cidrs: p.allow_from_cidr,
            default_deny: !p.no_default_deny,
            fqdn: false,
            scope: None,
        },
        window,
        output_dir: args.output_dir,
        prune: args.views.prune,
        allow_empty: args.views.allow_empty,
        skip_renamed: args.filters.skip_renamed,
    })
}

pub fn impact_request_from(args: ImpactArgs, json: bool) -> Result<ImpactRequest, ReduceError> {
    Ok(ImpactRequest {
        policies: args.policies,
        source: source_from(args.inputs, &args.live)?,
        filter: filter_from(&args.filters),
        cluster: cluster_from(args.cluster),
        json,
        skip_renamed: args.filters.skip_renamed,
    })
}

pub fn request_from(args: Args) -> Result<ReduceRequest, ReduceError> {
    let source = source_from(args.inputs, &args.live)?;
    Ok(ReduceRequest {
        source,
        filter: filter_from(&args.filters),
        format: output_format(args.format)
            .ok_or_else(|| ReduceError::Usage("--format networkpolicy is not a rendering of the map".to_owned()))?,
        intents_version: match args.intents_version {
            Version::V2beta1 => IntentsVersion::V2beta1,
            Version::V1alpha3 => IntentsVersion::V1alpha3,
        },
        output_dir: args.output_dir,
        prune: args.views.prune,
        allow_empty: args.views.allow_empty,
        graph: GraphRequest {
            focus: args.views.focus,
            depth: args.views.depth,
            group_by_namespace: matches!(args.views.group_by, Some(GroupBy::Namespace)),
        },
        show_seen: args.views.show_seen,
        declared: args.views.declared,
        skip_renamed: args.filters.skip_renamed,
        show_control_plane: args.views.show_control_plane,
    })
}
