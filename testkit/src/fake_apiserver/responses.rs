//! Response bodies: `Status` failures as the real server words them, lists streamed in chunks built from the
//! stored serializations (a 20,000-pod list is never one 140 MB string), and every body metered as it goes out.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::accounting::{Chunk, ListGuard, Meter, Sent};

pub(super) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Lists and initial watch events go out in pieces of about this size.
pub(super) const CHUNK_BYTES: usize = 64 * 1024;

/// A `Status` object.
pub(super) fn status_json(code: u16, reason: &str, message: &str, details: Option<Value>) -> String {
    let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code});
    if let Some(details) = details {
        status["details"] = details;
    }
    status.to_string()
}

/// The `reason` the real server gives with an HTTP status.
pub(super) fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A failure with a `Status` body; `retry_after` adds the header priority-and-fairness sends with 429.
pub(super) fn failure(
    code: u16,
    message: &str,
    details: Option<Value>,
    retry_after: Option<u32>,
    meter: &Meter,
) -> Response<Body> {
    let body = Bytes::from(status_json(code, reason(code), message, details));
    let mut response = single(code, body, Sent::default(), meter);
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

/// A response of one piece carrying `sent`.
pub(super) fn single(code: u16, body: Bytes, sent: Sent, meter: &Meter) -> Response<Body> {
    let chunk = Chunk { bytes: body, sent, ends_list: false };
    metered(code, futures_util::stream::iter([Ok(chunk)]), meter.clone(), None)
}

/// A response streaming `chunks`, each counted as hyper takes it; `guard` (a list in flight) is released with
/// the chunk that ends the list, or when the client goes away.
pub(super) fn metered(
    code: u16,
    chunks: impl Stream<Item = io::Result<Chunk>> + Send + 'static,
    meter: Meter,
    guard: Option<ListGuard>,
) -> Response<Body> {
    let mut guard = guard;
    let frames = chunks.map(move |chunk| {
        let chunk = chunk?;
        meter.count(&chunk);
        if chunk.ends_list {
            guard.take();
        }
        Ok(Frame::data(chunk.bytes))
    });
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = StreamBody::new(frames).boxed_unsync();
    Response::builder().status(status).header("content-type", "application/json").body(body).unwrap()
}

/// The pieces of a list body: `head` (up to `"items":[`), the items, the closing brackets. The last piece ends
/// the list.
pub(super) fn list_chunks(head: String, items: Vec<Bytes>) -> impl Iterator<Item = Chunk> + Send {
    let mut head = Some(head);
    let mut items = items.into_iter().peekable();
    let mut first = true;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES + 8 * 1024);
        buf.put_slice(head.take().unwrap_or_default().as_bytes());
        let mut objects = 0;
        while buf.len() < CHUNK_BYTES {
            let Some(item) = items.next() else { break };
            if !std::mem::take(&mut first) {
                buf.put_u8(b',');
            }
            buf.put_slice(&item);
            objects += 1;
        }
        done = items.peek().is_none();
        if done {
            buf.put_slice(b"]}");
        }
        Some(Chunk { bytes: buf.freeze(), sent: Sent { objects, ..Sent::default() }, ends_list: done })
    })
}

/// Watch events as newline-delimited JSON, in pieces of about [`CHUNK_BYTES`] built as they are asked for (a
/// streaming list of 20,000 pods is never in memory twice); `initial` marks the synthetic ADDED events of a
/// state being sent.
pub(super) fn event_chunks<'a>(
    events: impl IntoIterator<Item = (&'static str, &'a Bytes)> + 'a,
    initial: bool,
) -> impl Iterator<Item = Chunk> + 'a {
    let mut events = events.into_iter().peekable();
    std::iter::from_fn(move || {
        events.peek()?;
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES + 8 * 1024);
        let mut sent = Sent::default();
        while buf.len() < CHUNK_BYTES {
            let Some((ty, object)) = events.next() else { break };
            buf.put_slice(b"{\"type\":\"");
            buf.put_slice(ty.as_bytes());
            buf.put_slice(b"\",\"object\":");
            buf.put_slice(object);
            buf.put_slice(b"}\n");
            sent.objects += 1;
            sent.watch_events += 1;
            sent.initial_events += u64::from(initial);
        }
        Some(Chunk { bytes: buf.freeze(), sent, ends_list: false })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_chunks_join_into_the_list() {
        let items: Vec<Bytes> =
            (0..5000).map(|i| Bytes::from(format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(40)))).collect();
        let chunks: Vec<Chunk> = list_chunks("{\"items\":[".into(), items).collect();
        assert!(chunks.len() > 1);
        assert!(chunks.last().unwrap().ends_list && chunks.iter().filter(|c| c.ends_list).count() == 1);
        assert_eq!(chunks.iter().map(|c| c.sent.objects).sum::<u64>(), 5000);
        let body: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.to_vec()).collect();
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["items"][4999]["i"], json!(4999));
        let empty: Vec<Chunk> = list_chunks("{\"items\":[".into(), Vec::new()).collect();
        assert_eq!(empty[0].bytes, Bytes::from("{\"items\":[]}"));
    }
}
