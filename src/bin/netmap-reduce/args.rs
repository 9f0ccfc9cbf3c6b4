//! The command line of `netmap-reduce`, as clap derives it: the doc comments are the help, every flag also
//! reads `NETMAP_<FLAG>`. Which flag applies where is checked after parsing (`network_mapper::reduce::flags`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use network_mapper::reduce::policy;

/// Turn a snapshot of network_mapper_edge_total into "X calls Y", Otterize ClientIntents, JSON or graphs.
///
/// Inputs are Prometheus API responses (/api/v1/query vector or /api/v1/query_range matrix, saved as JSON),
/// text expositions scraped from the exporters, or netmap-reduce's own --format json output; several inputs are
/// summed. Or query a live server with --prometheus. `netmap-reduce diff OLD NEW` lists new and gone edges.
/// With --declared-rules-from, read ClientIntents instead and write Prometheus recording rules of the declared
/// edges.
///
/// `netmap-reduce impact --policies DIR` lists the observed edges a policy set would deny.
///
/// Exit codes: 0 success; 2 bad input or usage; 1 network or I/O failure. `diff` and `impact`: 0 nothing found,
/// 1 new edges / denied edges, 2 any trouble.
#[derive(Debug, Parser)]
#[command(name = "netmap-reduce", version, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Snapshot files (API JSON, exposition text or --format json output); `-` reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub live: LiveArgs,

    /// Output format.
    #[arg(long, env = "NETMAP_FORMAT", value_enum, default_value_t = Format::List)]
    pub format: Format,

    /// ClientIntents version for --format intents.
    #[arg(long, env = "NETMAP_INTENTS_VERSION", value_enum, default_value_t = Version::V2beta1)]
    pub intents_version: Version,

    /// With --format intents: write one `<client>.<namespace>.yaml` per client into DIR; with --format
    /// networkpolicy: one `<namespace>.<policy>.yaml` per policy and NOTES.txt. A file in the way without
    /// netmap-reduce's marker line stops the run: nothing is written.
    #[arg(long, env = "NETMAP_OUTPUT_DIR", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    #[command(flatten)]
    pub filters: FilterArgs,

    #[command(flatten)]
    pub views: ViewArgs,

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
    pub declared_rules_from: Vec<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Where the workloads' labels and selectors come from (`--format networkpolicy`, `impact`).
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Workloads from this file instead of the API.
    #[arg(
        long,
        env = "NETMAP_INVENTORY_FILE",
        value_name = "PATH",
        conflicts_with = "kubeconfig",
        help = format!("Workloads from this file instead of the API, as `{}` writes it", network_mapper::sources::inventory::naming::KUBECTL_GET)
    )]
    pub inventory_file: Option<PathBuf>,

    /// Workloads from the API with this kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config).
    #[arg(long, env = "NETMAP_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// `--format networkpolicy` (docs/policies.md).
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Policy API: Kubernetes NetworkPolicy, or CiliumNetworkPolicy (names outside servers with toFQDNs).
    #[arg(long, env = "NETMAP_POLICY_FORMAT", value_enum, default_value_t = PolicyApi::Kubernetes)]
    pub policy_format: PolicyApi,

    /// Ingress policies per server, egress policies per client, or both.
    #[arg(long, env = "NETMAP_POLICY_DIRECTION", value_enum, default_value_t = PolicyDirection::Ingress)]
    pub policy_direction: PolicyDirection,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Address of a node-local DNS cache (e.g. 169.254.20.10), allowed as an ipBlock (repeatable).
    #[arg(long, env = "NETMAP_NODE_LOCAL_DNS", value_name = "IP", value_delimiter = ',')]
    pub node_local_dns: Vec<std::net::IpAddr>,

    /// Allow everything from this CIDR into every selected pod: node addresses (kubelet probes) or a
    /// hostNetwork ingress controller's range (repeatable).
    #[arg(long, env = "NETMAP_ALLOW_FROM_CIDR", value_name = "CIDR", value_delimiter = ',', value_parser = policy::parse_cidr)]
    pub allow_from_cidr: Vec<String>,

    /// Do not write a `default-deny` policy in each client namespace.
    #[arg(long, env = "NETMAP_NO_DEFAULT_DENY")]
    pub no_default_deny: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyApi {
    Kubernetes,
    Cilium,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyDirection {
    Ingress,
    Egress,
    Both,
}

/// Where a live snapshot comes from.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Query this Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics) instead of files.
    #[arg(long, env = "NETMAP_PROMETHEUS", value_name = "URL")]
    pub prometheus: Option<String>,

    /// With --prometheus: how far back edges count.
    #[arg(long, env = "NETMAP_WINDOW", default_value = "7d", value_parser = humantime::parse_duration)]
    pub window: Duration,

    /// With --prometheus: send `Authorization: Bearer <contents of FILE>`.
    #[arg(long, env = "NETMAP_BEARER_TOKEN_FILE", value_name = "FILE", conflicts_with = "basic_auth_user")]
    pub bearer_token_file: Option<PathBuf>,

    /// With --prometheus: basic-auth user (the password comes from --basic-auth-password-file).
    #[arg(long, env = "NETMAP_BASIC_AUTH_USER", value_name = "USER", requires = "basic_auth_password_file")]
    pub basic_auth_user: Option<String>,

    /// With --prometheus: file holding the basic-auth password.
    #[arg(long, env = "NETMAP_BASIC_AUTH_PASSWORD_FILE", value_name = "FILE", requires = "basic_auth_user")]
    pub basic_auth_password_file: Option<PathBuf>,

    /// With --prometheus: extra request header, e.g. `X-Scope-OrgID: tenant-1` (repeatable; newline-separated
    /// in the environment variable).
    #[arg(long = "header", env = "NETMAP_HEADER", value_name = "NAME: VALUE", value_delimiter = '\n')]
    pub headers: Vec<String>,

    /// With --prometheus: PEM file of CA certificates to trust in addition to the built-in roots.
    #[arg(long, env = "NETMAP_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// With --prometheus: do not verify the server's TLS certificate.
    #[arg(long, env = "NETMAP_INSECURE_SKIP_VERIFY")]
    pub insecure_skip_verify: bool,

    /// With --prometheus: give up on a query after this long.
    #[arg(long, env = "NETMAP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What to keep of the map (every format, and `diff`).
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Keep only clients in this namespace (repeatable; comma-separated in the environment variable).
    #[arg(short = 'n', long = "namespace", env = "NETMAP_NAMESPACE", value_name = "NS", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Drop edges observed fewer than N times in total.
    #[arg(long, env = "NETMAP_MIN_COUNT", value_name = "N", default_value_t = 1)]
    pub min_count: u64,

    /// Leave out this namespace, as client and as server (repeatable; comma-separated).
    #[arg(long, env = "NETMAP_EXCLUDE_NAMESPACE", value_name = "NS", value_delimiter = ',')]
    pub exclude_namespace: Vec<String>,

    /// Leave out edges to this server: `name` (any namespace, or a name outside the cluster) or
    /// `name.namespace`, e.g. `kubernetes.default` (repeatable; comma-separated).
    #[arg(long, env = "NETMAP_EXCLUDE_SERVER", value_name = "SERVER", value_delimiter = ',')]
    pub exclude_server: Vec<String>,

    /// Leave out edge series scraped without `honor_labels: true` (they carry `exported_namespace`) instead of
    /// failing, e.g. while series from before the scrape config was fixed are still inside --window.
    #[arg(long, env = "NETMAP_SKIP_RENAMED")]
    pub skip_renamed: bool,
}

/// How the map is narrowed, drawn and compared.
#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    /// Keep only this workload (`name` or `name.namespace`) and its neighbours up to --depth hops away.
    #[arg(long, env = "NETMAP_FOCUS", value_name = "WORKLOAD")]
    pub focus: Option<String>,

    /// With --focus: how many hops around the workload to keep.
    #[arg(long, env = "NETMAP_DEPTH", value_name = "N", default_value_t = 1, requires = "focus")]
    pub depth: usize,

    /// With --format dot or mermaid: one node per namespace, edges summed (html: start grouped).
    #[arg(long, env = "NETMAP_GROUP_BY", value_enum, value_name = "BY")]
    pub group_by: Option<GroupBy>,

    /// With --format list: end each edge with its first and last seen times, where the input has them
    /// (query_range matrices, --prometheus, --format json output).
    #[arg(long, env = "NETMAP_SHOW_SEEN")]
    pub show_seen: bool,

    /// With --format list or intents: keep the calls of mesh proxies to their control plane (every connection to
    /// istiod's 15010 or 15012), which are left out by default: every meshed workload "calls" istiod.
    #[arg(long, env = "NETMAP_SHOW_CONTROL_PLANE")]
    pub show_control_plane: bool,

    /// With --output-dir: remove the files an earlier run wrote there for clients that are gone (only files
    /// that start with netmap-reduce's marker line). An empty map prunes nothing without --allow-empty.
    #[arg(long, env = "NETMAP_PRUNE", requires = "output_dir")]
    pub prune: bool,

    /// With --prune: the map is meant to be empty, so remove every file an earlier run wrote.
    #[arg(long, env = "NETMAP_ALLOW_EMPTY", requires = "prune")]
    pub allow_empty: bool,

    /// Instead of the map, list the edges declared in these ClientIntents (files or directories) that were not
    /// seen in the input or --window.
    #[arg(long, env = "NETMAP_DECLARED", value_name = "PATH", value_delimiter = ',')]
    pub declared: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the edges that are new in NEW and gone since OLD, `+ edge` and `- edge` lines; exit 0 when there
    /// are none, 1 when there are new edges, 2 on bad input or an unreachable source. Two files, or one live
    /// server at two times: `diff --prometheus URL --window 1d --offset 7d` compares the last day with the
    /// same day a week earlier.
    Diff(DiffArgs),
    /// List every observed edge that a set of NetworkPolicies or CiliumNetworkPolicies would deny, with its
    /// port, count and last seen; exit 0 when none, 1 when some, 2 on bad input or an unreachable source.
    Impact(ImpactArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImpactArgs {
    /// Policy files or directories (repeatable; comma-separated in the environment variable): NetworkPolicy,
    /// CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, one or many per file, Lists (`kubectl get
    /// networkpolicy -A -o yaml`); other kinds are skipped.
    #[arg(long, env = "NETMAP_POLICIES", value_name = "PATH", required = true, value_delimiter = ',')]
    pub policies: Vec<PathBuf>,

    /// The map: snapshot files (API JSON, exposition text or --format json output); `-` reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub live: LiveArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Output: one line per denied edge port, or JSON.
    #[arg(long, env = "NETMAP_IMPACT_FORMAT", value_enum, default_value_t = ImpactFormat::Text)]
    pub format: ImpactFormat,

    #[command(flatten)]
    pub filters: FilterArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImpactFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot (file or `-`).
    #[arg(value_name = "OLD")]
    pub old: Option<String>,

    /// The later snapshot (file or `-`).
    #[arg(value_name = "NEW")]
    pub new: Option<String>,

    #[command(flatten)]
    pub live: LiveArgs,

    /// With --prometheus: OLD is the same --window ending this long ago.
    #[arg(long, env = "NETMAP_OFFSET", value_parser = humantime::parse_duration)]
    pub offset: Option<Duration>,

    #[command(flatten)]
    pub filters: FilterArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GroupBy {
    Namespace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    List,
    Intents,
    Json,
    Dot,
    Mermaid,
    Html,
    Networkpolicy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Version {
    V2beta1,
    V1alpha3,
}
