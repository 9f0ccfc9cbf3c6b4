//! The HTTP endpoints: `/metrics` (OpenMetrics, or the classic text format unless asked for OpenMetrics), `/healthz`, `/readyz` (ready once the inventory has synced)
//! and a landing page on `/`.
//!
//! Encoding reads the registry and never fails on a source's behalf: a failing source shows up in its own
//! self-metrics, and the scrape goes on.
//!
//! With `--web-config-file` ([`crate::exporter::web_config`]) every connection is TLS and `/metrics` and `/` need basic
//! auth; `/healthz` and `/readyz` stay open so that kubelet probes need no credentials.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::exporter::web_config::WebConfig;
use crate::sources::capture::source::Waker;

/// How long a client may take to finish the TLS handshake before its connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The OpenMetrics content type (prometheus-client has no constant for it).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Readiness shared between the inventory sources, `/readyz` and the capture thread, which waits for it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<ReadyState>);

#[derive(Debug, Default)]
struct ReadyState {
    ready: AtomicBool,
    /// Woken when the exporter becomes ready.
    wakers: Mutex<Vec<Waker>>,
}

impl Readiness {
    /// Marks the exporter ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Release);
        if ready {
            self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner).iter().for_each(Waker::wake);
        }
    }

    /// Whether the exporter is ready.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Wakes `waker` whenever the exporter is marked ready.
    pub fn wake_when_ready(&self, waker: Waker) {
        self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner).push(waker);
    }
}

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The metrics registry.
    pub registry: Arc<Registry>,
    /// Inventory readiness.
    pub readiness: Readiness,
    /// TLS and basic auth (`--web-config-file`); [`WebConfig::plain`] for neither.
    pub web: Arc<WebConfig>,
}

/// The two text expositions Prometheus understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0 (what Prometheus asks for first; ends with `# EOF`).
    OpenMetrics,
    /// The classic text format 0.0.4 (for `curl`, older scrapers and `promtool check metrics`).
    Classic,
}

impl Exposition {
    /// Chooses by the `Accept` header, as the Go client does: OpenMetrics only when asked for.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Exposition::OpenMetrics,
            _ => Exposition::Classic,
        }
    }

    /// The response content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Exposition::Classic => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Encodes the registry in the given exposition.
pub fn encode_metrics(registry: &Registry, exposition: Exposition) -> String {
    let mut text = String::new();
    let result = match exposition {
        Exposition::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, registry),
        Exposition::Classic => prometheus_client::encoding::prometheus_text::encode(&mut text, registry),
    };
    // Encoding into a String only fails if a metric's own encoder does; the scrape then returns what it has.
    if let Err(e) = result {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    text
}

/// Serves until `shutdown` completes. Connections already accepted finish on their own tasks.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Accept errors (e.g. EMFILE) are transient; back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            match state.web.current().tls {
                None => serve_connection(stream, peer, state).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(tls, peer, state).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, state: AppState)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, state.clone()));
    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Binds the listen address, with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e} (choose another --listen-address)"))
    })
}

async fn handle(req: Request<Incoming>, state: AppState) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET and HEAD\n".into()));
    }
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    // Per request, not per connection: Prometheus keeps its connection open across scrapes, and a changed
    // user list must apply to it too (TLS settings apply from the next connection).
    if let Some(auth) = state.web.current().auth.filter(|_| !probe) {
        let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
        if !auth.authorize(header).await {
            let mut response = text(StatusCode::UNAUTHORIZED, "text/plain", "unauthorized\n".into());
            let challenge = hyper::header::HeaderValue::from_static("Basic realm=\"network-mapper\"");
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            return Ok(response);
        }
    }
    let response = match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok());
            let exposition = Exposition::negotiate(accept);
            text(StatusCode::OK, exposition.content_type(), encode_metrics(&state.registry, exposition))
        }
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if state.readiness.is_ready() => text(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "inventory not synced\n".into()),
        "/" => text(StatusCode::OK, "text/html; charset=utf-8", LANDING_PAGE.into()),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Ok(response)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

const LANDING_PAGE: &str = concat!(
    "<!doctype html><html><head><title>network-mapper</title></head><body>",
    "<h1>network-mapper ",
    env!("CARGO_PKG_VERSION"),
    "</h1><p>Who calls whom, per node, as Prometheus metrics.</p><ul>",
    "<li><a href=\"/metrics\">/metrics</a>: edges and self-metrics (OpenMetrics)</li>",
    "<li><a href=\"/healthz\">/healthz</a>: liveness</li>",
    "<li><a href=\"/readyz\">/readyz</a>: ready once the inventory has synced</li>",
    "</ul></body></html>\n"
);
