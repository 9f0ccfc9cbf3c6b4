//! `netmap-reduce`: the command line of [`network_mapper::reduce`]. Parses arguments (every flag also reads
//! `NETMAP_<FLAG>`), calls the library, maps errors to exit codes: 0 success, 2 bad input or usage, 1 network
//! or I/O failure, and `diff` with new edges (docs/design.md §6).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use network_mapper::reduce::policy::{self, ClusterSource, Direction, PlanOptions, PolicyFormat, PolicyRequest};
use network_mapper::reduce::{
    self, Filter, GraphRequest, IntentsVersion, Outcome, OutputFormat, PrometheusSource, ReduceError, ReduceRequest,
    Source,
};

/// Turn a snapshot of network_mapper_edge_total into "X calls Y", Otterize ClientIntents, JSON or graphs.
///
/// Inputs are Prometheus API responses (/api/v1/query vector or /api/v1/query_range matrix, saved as JSON),
/// text expositions scraped from the exporters, or netmap-reduce's own --format json output; several inputs are
/// summed. Or query a live server with --prometheus. `netmap-reduce diff OLD NEW` lists new and gone edges.
/// With --declared-rules-from, read ClientIntents instead and write Prometheus recording rules of the declared
/// edges.
///
/// Exit codes: 0 success; 2 bad input or usage; 1 network or I/O failure, and `diff` with new edges.
#[derive(Debug, Parser)]
#[command(name = "netmap-reduce", version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Snapshot files (API JSON, exposition text or --format json output); `-` reads stdin.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,

    #[command(flatten)]
    live: LiveArgs,

    /// Output format.
    #[arg(long, env = "NETMAP_FORMAT", value_enum, default_value_t = Format::List)]
    format: Format,

    /// ClientIntents version for --format intents.
    #[arg(long, env = "NETMAP_INTENTS_VERSION", value_enum, default_value_t = Version::V2beta1)]
    intents_version: Version,

    /// With --format intents: write one `<client>.<namespace>.yaml` per client into DIR; with --format
    /// networkpolicy: one `<namespace>.<policy>.yaml` per policy and NOTES.txt.
    #[arg(long, env = "NETMAP_OUTPUT_DIR", value_name = "DIR")]
    output_dir: Option<PathBuf>,

    #[command(flatten)]
    filters: FilterArgs,

    #[command(flatten)]
    views: ViewArgs,

    /// Declared-edges mode: read ClientIntents from these files or directories and write recording rules of
    /// `network_mapper:edge:declared` to stdout.
    #[arg(
        long,
        env = "NETMAP_DECLARED_RULES_FROM",
        value_name = "PATH",
        num_args = 1..,
        value_delimiter = ',',
        conflicts_with_all = ["inputs", "prometheus"]
    )]
    declared_rules_from: Vec<PathBuf>,

    #[command(flatten)]
    policy: PolicyArgs,
}

/// `--format networkpolicy` (docs/policies.md).
#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// Policy API: Kubernetes NetworkPolicy, or CiliumNetworkPolicy (names outside servers with toFQDNs).
    #[arg(long, env = "NETMAP_POLICY_FORMAT", value_enum, default_value_t = PolicyApi::Kubernetes)]
    policy_format: PolicyApi,

    /// Ingress policies per server, egress policies per client, or both.
    #[arg(long, env = "NETMAP_POLICY_DIRECTION", value_enum, default_value_t = PolicyDirection::Ingress)]
    policy_direction: PolicyDirection,

    /// Workload selectors from this `kubectl get deploy,sts,ds,cronjobs,jobs,pods,services -A -o yaml` file
    /// instead of the API.
    #[arg(long, env = "NETMAP_INVENTORY_FILE", value_name = "PATH", conflicts_with = "kubeconfig")]
    inventory_file: Option<PathBuf>,

    /// Workload selectors from the API with this kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long, env = "NETMAP_KUBECONFIG", value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// Address of a node-local DNS cache (e.g. 169.254.20.10), allowed as an ipBlock (repeatable).
    #[arg(long, env = "NETMAP_NODE_LOCAL_DNS", value_name = "IP", value_delimiter = ',')]
    node_local_dns: Vec<std::net::IpAddr>,

    /// Allow everything from this CIDR into every selected pod: node addresses (kubelet probes) or a
    /// hostNetwork ingress controller's range (repeatable).
    #[arg(long, env = "NETMAP_ALLOW_FROM_CIDR", value_name = "CIDR", value_delimiter = ',', value_parser = policy::parse_cidr)]
    allow_from_cidr: Vec<String>,

    /// Do not write a `default-deny` policy in each client namespace.
    #[arg(long, env = "NETMAP_NO_DEFAULT_DENY")]
    no_default_deny: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyApi {
    Kubernetes,
    Cilium,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyDirection {
    Ingress,
    Egress,
    Both,
}

/// Where a live snapshot comes from.
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// Query this Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics) instead of files.
    #[arg(long, env = "NETMAP_PROMETHEUS", value_name = "URL")]
    prometheus: Option<String>,

    /// With --prometheus: how far back edges count.
    #[arg(long, env = "NETMAP_WINDOW", default_value = "7d", value_parser = humantime::parse_duration)]
    window: Duration,

    /// With --prometheus: send `Authorization: Bearer <contents of FILE>`.
    #[arg(long, env = "NETMAP_BEARER_TOKEN_FILE", value_name = "FILE", conflicts_with = "basic_auth_user")]
    bearer_token_file: Option<PathBuf>,

    /// With --prometheus: basic-auth user (the password comes from --basic-auth-password-file).
    #[arg(long, env = "NETMAP_BASIC_AUTH_USER", value_name = "USER", requires = "basic_auth_password_file")]
    basic_auth_user: Option<String>,

    /// With --prometheus: file holding the basic-auth password.
    #[arg(long, env = "NETMAP_BASIC_AUTH_PASSWORD_FILE", value_name = "FILE", requires = "basic_auth_user")]
    basic_auth_password_file: Option<PathBuf>,

    /// With --prometheus: extra request header, e.g. `X-Scope-OrgID: tenant-1` (repeatable; newline-separated
    /// in the environment variable).
    #[arg(long = "header", env = "NETMAP_HEADER", value_name = "NAME: VALUE", value_delimiter = '\n')]
    headers: Vec<String>,

    /// With --prometheus: PEM file of CA certificates to trust in addition to the built-in roots.
    #[arg(long, env = "NETMAP_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// With --prometheus: do not verify the server's TLS certificate.
    #[arg(long, env = "NETMAP_INSECURE_SKIP_VERIFY")]
    insecure_skip_verify: bool,

    /// With --prometheus: give up on a query after this long.
    #[arg(long, env = "NETMAP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// What to keep of the map (every format, and `diff`).
#[derive(Debug, clap::Args)]
struct FilterArgs {
    /// Keep only clients in this namespace (repeatable; comma-separated in the environment variable).
    #[arg(short = 'n', long = "namespace", env = "NETMAP_NAMESPACE", value_name = "NS", value_delimiter = ',')]
    namespaces: Vec<String>,

    /// Drop edges observed fewer than N times in total.
    #[arg(long, env = "NETMAP_MIN_COUNT", value_name = "N", default_value_t = 1)]
    min_count: u64,

    /// Leave out this namespace, as client and as server (repeatable; comma-separated).
    #[arg(long, env = "NETMAP_EXCLUDE_NAMESPACE", value_name = "NS", value_delimiter = ',')]
    exclude_namespace: Vec<String>,

    /// Leave out edges to this server: `name` (any namespace, or a name outside the cluster) or
    /// `name.namespace`, e.g. `kubernetes.default` (repeatable; comma-separated).
    #[arg(long, env = "NETMAP_EXCLUDE_SERVER", value_name = "SERVER", value_delimiter = ',')]
    exclude_server: Vec<String>,

    /// Leave out edge series scraped without `honor_labels: true` (they carry `exported_namespace`) instead of
    /// failing, e.g. while series from before the scrape config was fixed are still inside --window.
    #[arg(long, env = "NETMAP_SKIP_RENAMED")]
    skip_renamed: bool,
}

/// How the map is narrowed, drawn and compared.
#[derive(Debug, clap::Args)]
struct ViewArgs {
    /// Keep only this workload (`name` or `name.namespace`) and its neighbours up to --depth hops away.
    #[arg(long, env = "NETMAP_FOCUS", value_name = "WORKLOAD")]
    focus: Option<String>,

    /// With --focus: how many hops around the workload to keep.
    #[arg(long, env = "NETMAP_DEPTH", value_name = "N", default_value_t = 1, requires = "focus")]
    depth: usize,

    /// With --format dot or mermaid: one node per namespace, edges summed (html: start grouped).
    #[arg(long, env = "NETMAP_GROUP_BY", value_enum, value_name = "BY")]
    group_by: Option<GroupBy>,

    /// With --format list: end each edge with its first and last seen times, where the input has them
    /// (query_range matrices, --prometheus, --format json output).
    #[arg(long, env = "NETMAP_SHOW_SEEN")]
    show_seen: bool,

    /// With --output-dir: remove the files an earlier run wrote there for clients that are gone (only files
    /// that start with netmap-reduce's marker line).
    #[arg(long, env = "NETMAP_PRUNE", requires = "output_dir")]
    prune: bool,

    /// Instead of the map, list the edges declared in these ClientIntents (files or directories) that were not
    /// seen in the input or --window.
    #[arg(long, env = "NETMAP_DECLARED", value_name = "PATH", value_delimiter = ',')]
    declared: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the edges that are new in NEW and gone since OLD, `+ edge` and `- edge` lines; exit 1 when there
    /// are new edges. Two files, or one live server at two times: `diff --prometheus URL --window 1d
    /// --offset 7d` compares the last day with the same day a week earlier.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
struct DiffArgs {
    /// The earlier snapshot (file or `-`).
    #[arg(value_name = "OLD")]
    old: Option<String>,

    /// The later snapshot (file or `-`).
    #[arg(value_name = "NEW")]
    new: Option<String>,

    #[command(flatten)]
    live: LiveArgs,

    /// With --prometheus: OLD is the same --window ending this long ago.
    #[arg(long, env = "NETMAP_OFFSET", value_parser = humantime::parse_duration)]
    offset: Option<Duration>,

    #[command(flatten)]
    filters: FilterArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GroupBy {
    Namespace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    List,
    Intents,
    Json,
    Dot,
    Mermaid,
    Html,
    Networkpolicy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Version {
    V2beta1,
    V1alpha3,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        // `netmap-reduce … | head` closing the pipe early is not a failure.
        Err(ReduceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netmap-reduce: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(args: Args) -> Result<ExitCode, ReduceError> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(Command::Diff(diff)) = args.command {
        return run_diff(diff, &mut stdout);
    }
    if !args.declared_rules_from.is_empty() {
        for warning in reduce::run_declared(&args.declared_rules_from, &mut stdout)? {
            eprintln!("netmap-reduce: warning: {warning}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = if matches!(args.format, Format::Networkpolicy) {
        let request = policy_request_from(args)?;
        policy::run(&request, &mut stdout, &mut |note| eprintln!("netmap-reduce: {note}"))?
    } else {
        reduce::run(&request_from(args)?, &mut stdout)?
    };
    match outcome {
        Outcome::Empty { report, removed } => {
            for file in removed {
                eprintln!("removed {}", file.display());
            }
            eprintln!("No connections found ({report}).");
        }
        Outcome::Written { files, removed } => {
            for file in files {
                eprintln!("wrote {}", file.display());
            }
            for file in removed {
                eprintln!("removed {}", file.display());
            }
        }
        Outcome::Unseen { count, declared, warnings } => {
            for warning in warnings {
                eprintln!("netmap-reduce: warning: {warning}");
            }
            eprintln!("{count} of {declared} declared edge(s) not seen.");
        }
    }
    stdout.flush().map_err(|source| ReduceError::Io { path: "<stdout>".to_owned(), source })?;
    Ok(ExitCode::SUCCESS)
}

fn run_diff(args: DiffArgs, out: &mut dyn Write) -> Result<ExitCode, ReduceError> {
    let filter = filter_from(&args.filters);
    let (old, new) = match (args.old, args.new, &args.live.prometheus) {
        (Some(old), Some(new), None) => (Source::Inputs(vec![old]), Source::Inputs(vec![new])),
        (None, None, Some(_)) => {
            let offset = args.offset.ok_or_else(|| {
                ReduceError::Usage("diff --prometheus needs --offset (e.g. --window 1d --offset 7d)".to_owned())
            })?;
            let new = prometheus_source(&args.live, Duration::ZERO).expect("--prometheus is set");
            let old = PrometheusSource { offset, ..new.clone() };
            (Source::Prometheus(old), Source::Prometheus(new))
        }
        _ => {
            return Err(ReduceError::Usage(
                "diff takes two snapshot files (OLD NEW), or --prometheus URL with --offset".to_owned(),
            ));
        }
    };
    let skip = args.filters.skip_renamed;
    let old = reduce::load_snapshot(&old, skip, false)?;
    let new = reduce::load_snapshot(&new, skip, false)?;
    let diff = reduce::diff::diff(old, new, &filter);
    reduce::diff::write_diff(&diff, out)?;
    eprintln!("{} new, {} gone, {} in both.", diff.new.len(), diff.gone.len(), diff.kept);
    Ok(if diff.new.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn prometheus_source(live: &LiveArgs, offset: Duration) -> Option<PrometheusSource> {
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

fn filter_from(args: &FilterArgs) -> Filter {
    Filter {
        namespaces: args.namespaces.clone(),
        min_count: args.min_count as f64,
        exclude_namespaces: args.exclude_namespace.clone(),
        exclude_servers: args.exclude_server.clone(),
    }
}

fn source_from(args: &mut Args) -> Result<Source, ReduceError> {
    Ok(match prometheus_source(&args.live, Duration::ZERO) {
        Some(_) if !args.inputs.is_empty() => {
            return Err(ReduceError::Usage("give snapshot files or --prometheus URL, not both".to_owned()));
        }
        Some(live) => Source::Prometheus(live),
        None if args.inputs.is_empty() => {
            return Err(ReduceError::Usage(
                "no input: give snapshot files (`-` for stdin), --prometheus URL, or --declared-rules-from PATH"
                    .to_owned(),
            ));
        }
        None => Source::Inputs(std::mem::take(&mut args.inputs)),
    })
}

fn policy_request_from(mut args: Args) -> Result<PolicyRequest, ReduceError> {
    let window = match args.live.prometheus {
        Some(_) => humantime::format_duration(args.live.window).to_string(),
        None => "snapshot".to_owned(),
    };
    let source = source_from(&mut args)?;
    let p = args.policy;
    Ok(PolicyRequest {
        source,
        filter: filter_from(&args.filters),
        cluster: match p.inventory_file {
            Some(path) => ClusterSource::File(path),
            None => ClusterSource::Api(p.kubeconfig),
        },
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
        },
        window,
        output_dir: args.output_dir,
        prune: args.views.prune,
    })
}

fn request_from(mut args: Args) -> Result<ReduceRequest, ReduceError> {
    let source = source_from(&mut args)?;
    Ok(ReduceRequest {
        source,
        filter: filter_from(&args.filters),
        format: match args.format {
            Format::List => OutputFormat::List,
            Format::Intents => OutputFormat::Intents,
            Format::Json => OutputFormat::Json,
            Format::Dot => OutputFormat::Dot,
            Format::Mermaid => OutputFormat::Mermaid,
            Format::Html => OutputFormat::Html,
            Format::Networkpolicy => unreachable!("run() sends --format networkpolicy to policy::run"),
        },
        intents_version: match args.intents_version {
            Version::V2beta1 => IntentsVersion::V2beta1,
            Version::V1alpha3 => IntentsVersion::V1alpha3,
        },
        output_dir: args.output_dir,
        prune: args.views.prune,
        graph: GraphRequest {
            focus: args.views.focus,
            depth: args.views.depth,
            group_by_namespace: matches!(args.views.group_by, Some(GroupBy::Namespace)),
        },
        show_seen: args.views.show_seen,
        declared: args.views.declared,
        skip_renamed: args.filters.skip_renamed,
    })
}
