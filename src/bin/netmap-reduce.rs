//! `netmap-reduce`: the command line of [`network_mapper::reduce`]. Parses arguments (every flag also reads
//! `NETMAP_<FLAG>`), calls the library, maps errors to exit codes: 0 success, 2 bad input or usage, 1 network
//! or I/O failure (DESIGN §6).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use network_mapper::reduce::policy::{self, ClusterSource, Direction, PlanOptions, PolicyFormat, PolicyRequest};
use network_mapper::reduce::{
    self, Filter, IntentsVersion, Outcome, OutputFormat, PrometheusSource, ReduceError, ReduceRequest, Source,
};

/// Turn a snapshot of network_mapper_edge_total into "X calls Y", Otterize ClientIntents, JSON or graphs.
///
/// Inputs are Prometheus API responses (/api/v1/query vector or /api/v1/query_range matrix, saved as JSON) or
/// text expositions scraped from the exporters; several inputs are summed. Or query a live server with
/// --prometheus. With --declared-rules-from, read ClientIntents instead and write Prometheus recording rules of
/// the declared edges.
#[derive(Debug, Parser)]
#[command(name = "netmap-reduce", version)]
struct Args {
    /// Snapshot files (API JSON or exposition text); `-` reads stdin.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,

    /// Query this Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics) instead of files.
    #[arg(long, env = "NETMAP_PROMETHEUS", value_name = "URL", conflicts_with = "inputs")]
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

    /// Keep only clients in this namespace (repeatable; comma-separated in the environment variable).
    #[arg(short = 'n', long = "namespace", env = "NETMAP_NAMESPACE", value_name = "NS", value_delimiter = ',')]
    namespaces: Vec<String>,

    /// Drop edges observed fewer than N times in total.
    #[arg(long, env = "NETMAP_MIN_COUNT", value_name = "N", default_value_t = 1)]
    min_count: u64,

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

    /// With --output-dir: delete policy files an earlier run wrote there whose policy is gone.
    #[arg(long, env = "NETMAP_PRUNE", requires = "output_dir")]
    prune: bool,
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    List,
    Intents,
    Json,
    Dot,
    Mermaid,
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
        Ok(()) => ExitCode::SUCCESS,
        // `netmap-reduce … | head` closing the pipe early is not a failure.
        Err(ReduceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("netmap-reduce: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(args: Args) -> Result<(), ReduceError> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if !args.declared_rules_from.is_empty() {
        for warning in reduce::run_declared(&args.declared_rules_from, &mut stdout)? {
            eprintln!("netmap-reduce: warning: {warning}");
        }
        return Ok(());
    }
    let outcome = if matches!(args.format, Format::Networkpolicy) {
        let request = policy_request_from(args)?;
        policy::run(&request, &mut stdout, &mut |note| eprintln!("netmap-reduce: {note}"))?
    } else {
        reduce::run(&request_from(args)?, &mut stdout)?
    };
    match outcome {
        Outcome::Empty => eprintln!("No connections found."),
        Outcome::Written { files } => {
            for file in files {
                eprintln!("wrote {}", file.display());
            }
        }
    }
    stdout.flush().map_err(|source| ReduceError::Io { path: "<stdout>".to_owned(), source })
}

fn source_from(args: &mut Args) -> Result<Source, ReduceError> {
    Ok(match args.prometheus.take() {
        Some(url) => Source::Prometheus(PrometheusSource {
            url,
            window: args.window,
            bearer_token_file: args.bearer_token_file.take(),
            basic_auth: args.basic_auth_user.take().zip(args.basic_auth_password_file.take()),
            headers: std::mem::take(&mut args.headers),
            ca_file: args.ca_file.take(),
            insecure_skip_verify: args.insecure_skip_verify,
            timeout: args.timeout,
        }),
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
    let window = match args.prometheus {
        Some(_) => humantime::format_duration(args.window).to_string(),
        None => "snapshot".to_owned(),
    };
    let source = source_from(&mut args)?;
    let p = args.policy;
    Ok(PolicyRequest {
        source,
        filter: Filter { namespaces: args.namespaces, min_count: args.min_count as f64 },
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
        prune: p.prune,
    })
}

fn request_from(mut args: Args) -> Result<ReduceRequest, ReduceError> {
    Ok(ReduceRequest {
        source: source_from(&mut args)?,
        filter: Filter { namespaces: args.namespaces, min_count: args.min_count as f64 },
        format: match args.format {
            Format::List => OutputFormat::List,
            Format::Intents => OutputFormat::Intents,
            Format::Json => OutputFormat::Json,
            Format::Dot => OutputFormat::Dot,
            Format::Mermaid => OutputFormat::Mermaid,
            Format::Networkpolicy => unreachable!("run() sends --format networkpolicy to policy::run"),
        },
        intents_version: match args.intents_version {
            Version::V2beta1 => IntentsVersion::V2beta1,
            Version::V1alpha3 => IntentsVersion::V1alpha3,
        },
        output_dir: args.output_dir,
    })
}
