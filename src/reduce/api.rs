//! Responses of the Prometheus HTTP API (`/api/v1/query` vectors and `/api/v1/query_range` matrices), as saved
//! to a file or received from a live server. A matrix contributes the last value of each series: a counter's
//! latest value is its total. `"status":"error"` responses and scalar or string results are reported as such.
//! Pure: bytes in, samples into a [`Snapshot`].

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::exposition::parse_value;
use super::model::{LabelSet, Snapshot};
use super::time::Seen;

/// Why a response gave no samples.
#[derive(Debug, PartialEq)]
pub enum ApiProblem {
    /// The server said `"status":"error"`.
    ErrorStatus { error_type: String, message: String },
    /// The body is not a usable response: malformed JSON, a wrong result type.
    Malformed(String),
    /// The response is fine but a series in it is not a valid edge or workload (bad labels or values).
    BadSeries(String),
}

/// The envelope, read first without the (possibly huge) result so that error responses and wrong result types
/// get a clear message instead of a serde type error.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    data: Option<EnvelopeData>,
}

#[derive(Deserialize)]
struct EnvelopeData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(rename = "result")]
    _result: IgnoredAny,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    result: Vec<Series<'a>>,
}

#[derive(Deserialize)]
struct Series<'a> {
    #[serde(borrow)]
    metric: LabelSet<'a>,
    #[serde(borrow, default)]
    value: Option<(IgnoredAny, Cow<'a, str>)>,
    #[serde(borrow, default)]
    values: Option<Vec<(f64, Cow<'a, str>)>>,
}

/// Parses a Prometheus API response into `snapshot`.
pub fn parse_api_response(bytes: &[u8], snapshot: &mut Snapshot) -> Result<(), ApiProblem> {
    let malformed = |e: serde_json::Error| ApiProblem::Malformed(format!("malformed Prometheus API response: {e}"));
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(malformed)?;
    if envelope.status != "success" {
        return Err(ApiProblem::ErrorStatus {
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
            message: envelope.error.unwrap_or_else(|| format!("status {:?}", envelope.status)),
        });
    }
    let result_type = envelope.data.map(|d| d.result_type).unwrap_or_default();
    if result_type != "vector" && result_type != "matrix" {
        return Err(ApiProblem::Malformed(format!(
            "the result type is {result_type:?}; expected \"vector\" (/api/v1/query) or \"matrix\" (/api/v1/query_range)"
        )));
    }
    let response: Response<'_> = serde_json::from_slice(bytes).map_err(malformed)?;
    for (index, series) in response.data.result.iter().enumerate() {
        add_series(series, snapshot).map_err(|p| ApiProblem::BadSeries(format!("result {index}: {p}")))?;
    }
    Ok(())
}

/// A vector sample is the value; a matrix contributes its last value and when the edge was seen.
fn add_series(series: &Series<'_>, snapshot: &mut Snapshot) -> Result<(), String> {
    match (&series.value, &series.values) {
        (Some((_, v)), _) => snapshot.add_series(&series.metric, parse_value(v)?),
        (None, Some(values)) => {
            let Some((_, last)) = values.last() else { return Ok(()) };
            let samples =
                values.iter().map(|(at, v)| Ok((*at, parse_value(v)?))).collect::<Result<Vec<_>, String>>()?;
            snapshot.add_series_seen(&series.metric, parse_value(last)?, Seen::of_samples(samples))
        }
        (None, None) => Err(format!("series {} has neither \"value\" nor \"values\"", series.metric)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::model::Filter;

    fn parse(json: &str) -> Result<crate::reduce::model::ServiceMap, ApiProblem> {
        let mut snapshot = Snapshot::default();
        parse_api_response(json.as_bytes(), &mut snapshot)?;
        Ok(snapshot.into_map(&Filter::default()))
    }

    #[test]
    fn a_vector_without_metric_names_is_classified_by_labels() {
        let json = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"client":"a","namespace":"s","server":"b","server_namespace":"s","instance":"n1"},"value":[1,"2"]},
            {"metric":{"client":"a","namespace":"s","server":"b","server_namespace":"s","instance":"n2"},"value":[1,"3"]},
            {"metric":{"workload":"b","namespace":"s","kind":"Deployment"},"value":[1,"1"]}]}}"#;
        let map = parse(json).unwrap();
        assert_eq!(map.clients[0].calls[0].count, 5.0);
        assert_eq!(map.clients[0].calls[0].kind.as_deref(), Some("Deployment"));
    }

    #[test]
    fn a_matrix_takes_the_last_value() {
        let json = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"network_mapper_edge_total","client":"a","namespace":"s","server":"b","server_namespace":"s"},
             "values":[[1,"1"],[2,"7"]]}]}}"#;
        let map = parse(json).unwrap();
        assert_eq!(map.clients[0].calls[0].count, 7.0);
        assert_eq!(map.clients[0].calls[0].seen, Some(Seen { first: 1.0, last: 2.0 }));
    }

    #[test]
    fn error_responses_and_wrong_result_types_are_explained() {
        let err = parse(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#).unwrap_err();
        assert_eq!(err, ApiProblem::ErrorStatus { error_type: "bad_data".into(), message: "parse error".into() });
        let err = parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#).unwrap_err();
        assert!(matches!(err, ApiProblem::Malformed(m) if m.contains("\"scalar\"")));
        assert!(matches!(parse("{\"status\":").unwrap_err(), ApiProblem::Malformed(_)));
    }
}
