//! Snapshot inputs: files or `-` for stdin, each either a Prometheus API response (JSON) or a text exposition,
//! told apart by their first byte. All inputs are summed into one [`Snapshot`].

use std::io::Read;
use std::path::Path;

use super::api::{ApiProblem, parse_api_response};
use super::error::{ReduceError, Result};
use super::exposition::parse_exposition;
use super::model::Snapshot;

/// The two input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// A `/api/v1/query` or `/api/v1/query_range` response.
    ApiJson,
    /// OpenMetrics or Prometheus 0.0.4 text, as scraped from an exporter.
    Exposition,
}

/// Tells the format from the content: an API response is a JSON object, an exposition never starts with `{`.
pub fn detect_format(bytes: &[u8]) -> InputFormat {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => InputFormat::ApiJson,
        _ => InputFormat::Exposition,
    }
}

/// Parses one input's bytes into `snapshot`; `name` is how errors refer to the input.
pub fn parse_input(name: &str, bytes: &[u8], snapshot: &mut Snapshot) -> Result<()> {
    match detect_format(bytes) {
        InputFormat::ApiJson => parse_api_response(bytes, snapshot).map_err(|problem| match problem {
            ApiProblem::ErrorStatus { error_type, message } => {
                ReduceError::ApiErrorResponse { input: name.to_owned(), error_type, message }
            }
            ApiProblem::Malformed(problem) => ReduceError::bad_input(name, problem),
        }),
        InputFormat::Exposition => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| ReduceError::bad_input(name, format!("the exposition is not UTF-8: {e}")))?;
            parse_exposition(text, snapshot).map_err(|problem| ReduceError::bad_input(name, problem))
        }
    }
}

/// Reads and sums the given inputs (`-` is stdin).
pub fn read_inputs(paths: &[String]) -> Result<Snapshot> {
    let mut snapshot = Snapshot::default();
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
        _ => ReduceError::io(path, e),
    })?;
    Ok((path.to_owned(), bytes))
}
