//! The reducer's one error type. Every variant names the input it came from, so a message is enough to find the
//! bad file, series or server; [`ReduceError::exit_code`] sorts them into "fix your input" (2) and "something
//! outside failed" (1), the contract of docs/design.md §6.

use std::path::PathBuf;

/// Everything that can stop `netmap-reduce`.
#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    /// The command line asks for something impossible (e.g. `--output-dir` with `--format list`).
    #[error("{0}")]
    Usage(String),

    /// An input file named on the command line does not exist.
    #[error("{path}: no such file (check the path)")]
    MissingInput { path: PathBuf },

    /// An input could not be parsed: malformed JSON, exposition or YAML, a wrong result type, bad labels.
    #[error("{input}: {problem}")]
    BadInput { input: String, problem: String },

    /// The Prometheus API answered `"status":"error"` in a file given as input.
    #[error("{input}: the Prometheus API response is an error ({error_type}): {message}")]
    ApiErrorResponse { input: String, error_type: String, message: String },

    /// Reading an input or writing an output failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The Prometheus server could not be reached (connection refused, DNS, TLS, timeout).
    #[error("{url}: cannot query Prometheus: {message}")]
    Unreachable { url: String, message: String },

    /// The Kubernetes API could not be listed (connection, TLS, authorisation, a bad response).
    #[error("{url}: cannot list objects from the Kubernetes API: {message}")]
    KubeApi { url: String, message: String },

    /// The Prometheus server answered, but not with a usable result (HTTP error, error status, bad body).
    #[error("{url}: {message}")]
    ServerError { url: String, message: String },

    /// Doing what was asked would destroy something (a file without the generator's marker in `--output-dir`,
    /// every generated file because the map is empty): nothing was done.
    #[error("{path}: {problem}")]
    Refused { path: String, problem: String },

    /// The generated policies would deny observed edges: nothing was written.
    #[error("{0}")]
    SelfCheck(String),
}

impl ReduceError {
    /// Exit code of `netmap-reduce` for this error: 2 for bad input, usage and refusals, 1 for network and I/O
    /// failures and a failed self-check. (`diff` and `impact` use 1 for their finding: every error is 2 there.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_)
            | Self::MissingInput { .. }
            | Self::BadInput { .. }
            | Self::ApiErrorResponse { .. }
            | Self::Refused { .. } => 2,
            Self::Io { .. }
            | Self::Unreachable { .. }
            | Self::KubeApi { .. }
            | Self::ServerError { .. }
            | Self::SelfCheck(_) => 1,
        }
    }

    /// Short, stable name of the failure class, for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::MissingInput { .. } => "missing_input",
            Self::BadInput { .. } => "bad_input",
            Self::ApiErrorResponse { .. } => "api_error_response",
            Self::Io { .. } => "io",
            Self::Unreachable { .. } => "unreachable",
            Self::KubeApi { .. } => "kube_api",
            Self::ServerError { .. } => "server_error",
            Self::Refused { .. } => "refused",
            Self::SelfCheck(_) => "self_check",
        }
    }

    pub(crate) fn bad_input(input: &str, problem: impl Into<String>) -> Self {
        Self::BadInput { input: input.to_owned(), problem: problem.into() }
    }

    pub(crate) fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Result alias of the reducer.
pub type Result<T, E = ReduceError> = std::result::Result<T, E>;
