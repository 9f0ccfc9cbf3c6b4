//! HTTP from tests: a GET that tolerates a server not up yet, polling until a condition holds, a free loopback
//! port, a tiny loopback server that records requests, and reading one sample out of a Prometheus exposition.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP GET (no proxy, 3 s timeout) with an optional `Accept` header; `None` when the server does not answer.
pub fn request(url: &str, accept: Option<&str>) -> Option<reqwest::blocking::Response> {
    let client = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(3)).build().ok()?;
    let mut request = client.get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().ok()
}

/// [`request`], as (status, body).
pub fn get_as(url: &str, accept: Option<&str>) -> Option<(u16, String)> {
    let response = request(url, accept)?;
    Some((response.status().as_u16(), response.text().ok()?))
}

/// An HTTP GET without an `Accept` header.
pub fn get(url: &str) -> Option<(u16, String)> {
    get_as(url, None)
}

/// Polls `probe` every 50 ms until it yields a value; fails after `limit` naming `what`.
pub fn until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> io::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("timed out after {limit:?} waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`until`], failing the test on a timeout.
pub fn eventually<T>(what: &str, limit: Duration, probe: impl FnMut() -> Option<T>) -> T {
    crate::cmd::ok(until(what, limit, probe))
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

/// Requests' heads, in arrival order, as a [`serve`]d server recorded them.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Serves `respond(request head)` = (status, content type, body) to every connection on a loopback port, one
/// request per connection; returns the port and the request heads seen so far.
pub fn serve(respond: impl Fn(&str) -> (u16, &'static str, String) + Send + 'static) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let (status, content_type, body) = respond(&head);
            log.lock().unwrap().push(head);
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (port, seen)
}

/// The single value of a Prometheus instant query against the server at `base` (`http://host:port`), if there is
/// one.
pub fn instant_query(base: &str, query: &str) -> Option<f64> {
    let client = reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(3)).build().ok()?;
    let url = format!("{base}/api/v1/query");
    let body: serde_json::Value = client.get(url).query(&[("query", query)]).send().ok()?.json().ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// The value of the first sample whose series is exactly `series` (name and labels, as exposed).
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}
