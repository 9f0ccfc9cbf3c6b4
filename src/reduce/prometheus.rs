//! The live source: instant queries against any Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir,
//! VictoriaMetrics) over reqwest with rustls, so no OpenSSL is needed. Authentication by bearer token file or
//! basic auth, extra headers (e.g. `X-Scope-OrgID` for Mimir tenants), a custom CA.
//!
//! Why `max_over_time` and not `increase`: the exporter creates an edge's series at its first observation, so
//! the first sample Prometheus ever scrapes is already 1 or more. `increase()` counts only growth *between*
//! samples, so an edge observed once (a long-lived connection, a client that resolved once) would have an
//! increase of 0 and vanish from the map, and the extrapolated values are fractional. `max_over_time` keeps
//! every series that had a sample in the window and survives counter resets by taking the peak; summed across
//! series (nodes, exporter restarts) it counts the observations each exporter made up to the window's end.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::api::{ApiProblem, parse_api_response};
use super::error::{ReduceError, Result};
use super::model::{CONNECTIONS_METRIC, EDGE_METRIC, INFO_METRIC, Snapshot};
use super::time::unix_seconds;

/// How to reach the server and what to ask it.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    /// Base URL, e.g. `http://prometheus:9090` or `https://mimir/prometheus`; `/api/v1/query` is appended.
    pub url: String,
    /// How far back edges count (`--window`, default 7 days).
    pub window: Duration,
    pub bearer_token_file: Option<PathBuf>,
    /// Basic-auth user and the file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// Extra headers as `Name: value`.
    pub headers: Vec<String>,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub timeout: Duration,
    /// Evaluate as of this long ago (`diff --offset`): the window ends `offset` before now.
    pub offset: Duration,
}

/// Steps of the range query behind first/last seen: the times are exact to `window / RANGE_STEPS`.
pub const RANGE_STEPS: u64 = 1000;

/// The PromQL whose range gives each edge's first and last seen (summed across nodes, like the counts).
pub const SEEN_QUERY: &str = "sum by (client, namespace, server, server_namespace) (network_mapper_edge_total)";

/// Checks `--prometheus` before any request, so that `127.0.0.1:9090` gets the fix instead of a client error.
pub fn check_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(ReduceError::Usage(format!(
            "--prometheus {url:?}: the URL has no scheme; write it with http:// or https://, e.g. --prometheus \
             http://{}",
            url.split("://").last().unwrap_or(url)
        )));
    }
    reqwest::Url::parse(url).map(|_| ()).map_err(|e| {
        ReduceError::Usage(format!("--prometheus {url:?}: not a valid URL ({e}); e.g. http://prometheus:9090"))
    })
}

/// The PromQL for the edges over `window`. `exported_namespace` is kept so that a scrape without
/// `honor_labels: true` is reported instead of silently mislabelled.
pub fn edge_query(window: Duration) -> String {
    format!(
        "sum by (client, namespace, exported_namespace, server, server_namespace) \
         (max_over_time({EDGE_METRIC}[{}]))",
        promql_duration(window)
    )
}

/// The PromQL for the server ports of the edges' TCP connections over `window` (NetworkPolicy ports).
pub fn connections_query(window: Duration) -> String {
    format!(
        "sum by (client, namespace, exported_namespace, server, server_namespace, port) \
         (max_over_time({CONNECTIONS_METRIC}[{}]))",
        promql_duration(window)
    )
}

/// The PromQL for the workload kinds seen during `window`.
pub fn kind_query(window: Duration) -> String {
    format!("max by (workload, namespace, kind) (max_over_time({INFO_METRIC}[{}]))", promql_duration(window))
}

fn promql_duration(window: Duration) -> String {
    format!("{}s", window.as_secs().max(1))
}

/// Queries the edges and the kinds and returns them summed across nodes.
pub fn query_snapshot(source: &PrometheusSource) -> Result<Snapshot> {
    query_snapshot_with(source, Snapshot::default(), false)
}

/// [`query_snapshot`] into a prepared snapshot; `with_times` adds a range query for first/last seen.
pub fn query_snapshot_with(source: &PrometheusSource, snapshot: Snapshot, with_times: bool) -> Result<Snapshot> {
    query_live(source, snapshot, with_times, false)
}

/// [`query_snapshot_with`]; `with_ports` adds the per-port connections (policies, `json`, `impact`).
pub fn query_live(
    source: &PrometheusSource,
    mut snapshot: Snapshot,
    with_times: bool,
    with_ports: bool,
) -> Result<Snapshot> {
    check_url(&source.url)?;
    let client = build_client(source)?;
    let auth = Auth::load(source)?;
    let end = unix_seconds(SystemTime::now()) - source.offset.as_secs_f64();
    let at = format!("{end:.3}");
    let mut queries = vec![edge_query(source.window), kind_query(source.window)];
    if with_ports {
        queries.push(connections_query(source.window));
    }
    for query in &queries {
        let body = fetch(&client, &auth, source, "query", &[("query", query.as_str()), ("time", &at)])?;
        parse_api_response(&body, &mut snapshot).map_err(|problem| server_error(source, query, problem))?;
    }
    if with_times {
        let step = source.window.as_secs().div_ceil(RANGE_STEPS).max(1);
        let start = format!("{:.3}", end - source.window.as_secs_f64());
        let params = [("query", SEEN_QUERY), ("start", &start), ("end", &at), ("step", &format!("{step}s"))];
        let body = fetch(&client, &auth, source, "query_range", &params)?;
        let mut times = Snapshot::default();
        parse_api_response(&body, &mut times).map_err(|problem| server_error(source, SEEN_QUERY, problem))?;
        snapshot.merge_times(times);
    }
    Ok(snapshot)
}

/// A series that is no valid edge (e.g. renamed labels without `honor_labels: true`) is bad input, exit 2, as
/// it would be in a file; a server that fails or answers nonsense is exit 1.
fn server_error(source: &PrometheusSource, query: &str, problem: ApiProblem) -> ReduceError {
    let message = match problem {
        ApiProblem::ErrorStatus { error_type, message } => {
            format!("query {query:?} failed: {error_type}: {message}")
        }
        ApiProblem::Malformed(problem) => format!("query {query:?}: {problem}"),
        ApiProblem::BadSeries(problem) => {
            return ReduceError::BadInput { input: source.url.clone(), problem: format!("query {query:?}: {problem}") };
        }
    };
    ReduceError::ServerError { url: source.url.clone(), message }
}

fn build_client(source: &PrometheusSource) -> Result<Client> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .timeout(source.timeout)
        .default_headers(parse_headers(&source.headers)?)
        .danger_accept_invalid_certs(source.insecure_skip_verify)
        .user_agent(concat!("netmap-reduce/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &source.ca_file {
        let pem = read_secret_file(path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ReduceError::bad_input(&path.display().to_string(), format!("not a PEM CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(ReduceError::bad_input(&path.display().to_string(), "no PEM certificate in the CA file"));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ReduceError::Usage(format!("cannot set up the HTTP client: {e}")))
}

fn parse_headers(headers: &[String]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for header in headers {
        let bad = |why: &str| ReduceError::Usage(format!("--header {header:?}: {why} (expected \"Name: value\")"));
        let (name, value) = header.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad("invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Credentials, read once from their files.
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    fn load(source: &PrometheusSource) -> Result<Self> {
        if let Some(path) = &source.bearer_token_file {
            return Ok(Self::Bearer(read_trimmed(path)?));
        }
        if let Some((user, path)) = &source.basic_auth {
            return Ok(Self::Basic(user.clone(), read_trimmed(path)?));
        }
        Ok(Self::None)
    }

    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::None => request,
            Self::Bearer(token) => request.bearer_auth(token),
            Self::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }
}

fn read_secret_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReduceError::MissingInput { path: path.to_owned() },
        _ => ReduceError::io(path.display().to_string(), e),
    })
}

/// Token and password files usually end in a newline that is not part of the secret.
fn read_trimmed(path: &Path) -> Result<String> {
    let bytes = read_secret_file(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ReduceError::bad_input(&path.display().to_string(), "the file is not UTF-8 text"))?;
    Ok(text.trim().to_owned())
}

fn fetch(
    client: &Client,
    auth: &Auth,
    source: &PrometheusSource,
    api: &str,
    params: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let endpoint = format!("{}/api/v1/{api}", source.url.trim_end_matches('/'));
    let request = auth.apply(client.get(&endpoint).query(params));
    let response = request
        .send()
        .map_err(|e| ReduceError::Unreachable { url: source.url.clone(), message: error_chain(&e.without_url()) })?;
    let status = response.status();
    let body = response.bytes().map_err(|e| ReduceError::Unreachable {
        url: source.url.clone(),
        message: format!("reading the response: {}", error_chain(&e.without_url())),
    })?;
    if !status.is_success() {
        return Err(ReduceError::ServerError { url: source.url.clone(), message: http_error_message(status, &body) });
    }
    Ok(body.to_vec())
}

/// The Prometheus API puts its reason into a JSON body even on HTTP errors; proxies send text or HTML.
fn http_error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let mut scratch = Snapshot::default();
    let detail = match parse_api_response(body, &mut scratch) {
        Err(ApiProblem::ErrorStatus { error_type, message }) => format!("{error_type}: {message}"),
        _ => String::from_utf8_lossy(body).chars().take(200).collect::<String>().trim().to_owned(),
    };
    let hint = match status.as_u16() {
        401 | 403 => " (check --bearer-token-file, --basic-auth-user/--basic-auth-password-file or --header)",
        404 => " (is the URL the API root, e.g. http://prometheus:9090 or https://mimir/prometheus?)",
        _ => "",
    };
    format!("HTTP {status}{hint}: {detail}")
}

/// reqwest's top-level message ("error sending request") hides the cause (connection refused, certificate…).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_use_the_window_in_seconds() {
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(
            edge_query(week),
            "sum by (client, namespace, exported_namespace, server, server_namespace) \
             (max_over_time(network_mapper_edge_total[604800s]))"
        );
        assert_eq!(
            connections_query(week),
            "sum by (client, namespace, exported_namespace, server, server_namespace, port) \
             (max_over_time(network_mapper_edge_connections_total[604800s]))"
        );
        assert_eq!(
            kind_query(week),
            "max by (workload, namespace, kind) (max_over_time(network_mapper_workload_info[604800s]))"
        );
    }

    #[test]
    fn a_url_without_a_scheme_gets_the_fix() {
        let err = check_url("127.0.0.1:9090").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--prometheus http://127.0.0.1:9090"), "{err}");
        assert!(check_url("https://mimir/prometheus").is_ok());
    }

    #[test]
    fn headers_need_a_name_and_a_colon() {
        let map = parse_headers(&["X-Scope-OrgID: tenant-1".to_owned()]).unwrap();
        assert_eq!(map["x-scope-orgid"], "tenant-1");
        assert!(matches!(parse_headers(&["nocolon".to_owned()]), Err(ReduceError::Usage(_))));
        assert!(matches!(parse_headers(&["bad name: x".to_owned()]), Err(ReduceError::Usage(_))));
    }
}
