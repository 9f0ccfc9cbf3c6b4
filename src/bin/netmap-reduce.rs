//! `netmap-reduce`: the command line of [`network_mapper::reduce`]. Parses arguments (every flag also reads
//! `NETMAP_<FLAG>`), calls the library, maps errors to exit codes: 0 success, 2 bad input or usage, 1 network
//! or I/O failure (docs/design.md §6).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
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

    /// With --format intents: write one `<client>.<namespace>.yaml` per client into DIR.
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    List,
    Intents,
    Json,
    Dot,
    Mermaid,
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
    let request = request_from(args)?;
    match reduce::run(&request, &mut stdout)? {
        Outcome::Empty => eprintln!("No connections found."),
        Outcome::Written { files } => {
            for file in files {
                eprintln!("wrote {}", file.display());
            }
        }
    }
    stdout.flush().map_err(|source| ReduceError::Io { path: "<stdout>".to_owned(), source })
}

fn request_from(args: Args) -> Result<ReduceRequest, ReduceError> {
    let source = match args.prometheus {
        Some(url) => Source::Prometheus(PrometheusSource {
            url,
            window: args.window,
            bearer_token_file: args.bearer_token_file,
            basic_auth: args.basic_auth_user.zip(args.basic_auth_password_file),
            headers: args.headers,
            ca_file: args.ca_file,
            insecure_skip_verify: args.insecure_skip_verify,
            timeout: args.timeout,
        }),
        None if args.inputs.is_empty() => {
            return Err(ReduceError::Usage(
                "no input: give snapshot files (`-` for stdin), --prometheus URL, or --declared-rules-from PATH"
                    .to_owned(),
            ));
        }
        None => Source::Inputs(args.inputs),
    };
    Ok(ReduceRequest {
        source,
        filter: Filter { namespaces: args.namespaces, min_count: args.min_count as f64 },
        format: match args.format {
            Format::List => OutputFormat::List,
            Format::Intents => OutputFormat::Intents,
            Format::Json => OutputFormat::Json,
            Format::Dot => OutputFormat::Dot,
            Format::Mermaid => OutputFormat::Mermaid,
        },
        intents_version: match args.intents_version {
            Version::V2beta1 => IntentsVersion::V2beta1,
            Version::V1alpha3 => IntentsVersion::V1alpha3,
        },
        output_dir: args.output_dir,
    })
}
