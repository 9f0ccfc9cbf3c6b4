//! The server side: shared state, the accept loop, and one request from its head to its answer — injected
//! faults and refusals first, then a get, a list page or a watch — recorded in the client's account.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use super::accounting::{ANONYMOUS, Accounting, Meter, RequestRecord, Sent, Verb};
use super::responses::{Body, failure, list_chunks, metered, single};
use super::routes::{Params, RESOURCES, Route, Served, classify, route};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Filter, Key, Store};
use super::watch::{WatchRequest, watch};

/// How open watch streams end when a fault is injected.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamFault {
    /// Aborted mid-stream, without the final chunk.
    Drop,
    /// An ERROR event with code 410, then a clean end.
    Expire,
}

/// An injected failure of the next request.
#[derive(Clone, Copy)]
pub(super) struct Injected {
    pub code: u16,
    pub retry_after: Option<u32>,
}

pub(super) struct State {
    pub store: Store,
    pub fail_next: VecDeque<Injected>,
    /// Every request fails so until then.
    pub fail_until: Option<(std::time::Instant, Injected)>,
    pub down: bool,
    pub fault_generation: u64,
    pub fault: Option<StreamFault>,
    /// `PATH?QUERY[ [metadata]]` of every request, for `FakeApi::requests`.
    pub requests: Vec<String>,
    pub refuse_streaming_lists: bool,
    pub refuse_field_selectors: bool,
    pub bookmark_interval: Duration,
}

pub(super) struct Shared {
    state: Mutex<State>,
    /// One per served kind: a change wakes only the watches of its kind.
    pub notifies: Vec<Notify>,
    pub accounting: Arc<Accounting>,
}

impl Shared {
    pub fn new() -> Shared {
        let state = State {
            store: Store::new(),
            fail_next: VecDeque::new(),
            fail_until: None,
            down: false,
            fault_generation: 0,
            fault: None,
            requests: Vec::new(),
            refuse_streaming_lists: false,
            refuse_field_selectors: false,
            // The real watch cache sends a bookmark about every minute.
            bookmark_interval: Duration::from_secs(60),
        };
        let notifies = RESOURCES.iter().map(|_| Notify::new()).collect();
        Shared { state: Mutex::new(state), notifies, accounting: Arc::new(Accounting::new()) }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wake_all(&self) {
        self.notifies.iter().for_each(Notify::notify_waiters);
    }
}

pub(super) async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted { Ok((stream, _)) => stream, Err(_) => continue },
        };
        if shared.lock().down {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// A request as the server understood it.
struct Call {
    client: Arc<str>,
    query: String,
    metadata_only: bool,
    route: Option<Route>,
    params: Params,
    verb: Verb,
    token: Option<Token>,
    served: Served,
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> io::Result<Response<Body>> {
    let at = shared.accounting.since_start();
    let call = understand(&req);
    let injected = {
        let mut state = shared.lock();
        if state.down {
            // Closes the connection unanswered, as a dead server would (the client may hold a pooled one).
            return Err(io::Error::other("apiserver down"));
        }
        let form = if call.metadata_only { " [metadata]" } else { "" };
        state.requests.push(format!("{}?{}{form}", req.uri().path(), call.query));
        let shedding = state.fail_until.filter(|(until, _)| std::time::Instant::now() < *until).map(|(_, i)| i);
        shedding.or_else(|| state.fail_next.pop_front())
    };
    let response = respond(&shared, &call, injected);
    shared.accounting.record(&call.client, record(&call, at, response.status().as_u16()));
    Ok(response)
}

fn understand(req: &Request<Incoming>) -> Call {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let client = header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or(ANONYMOUS);
    let query = req.uri().query().unwrap_or_default().to_owned();
    let params = Params::parse(&query);
    let route = route(req.uri().path());
    let verb = match (&route, params.watch) {
        (Some(Route { name: Some(_), .. }), _) => Verb::Get,
        (_, true) => Verb::Watch,
        (_, false) => Verb::List,
    };
    let token = params.continue_token.as_deref().and_then(Token::decode);
    let served = classify(&params, verb == Verb::Get, token.as_ref().map(|t| t.quorum));
    Call {
        client: Arc::from(client.trim()),
        query,
        metadata_only: header("accept").is_some_and(|a| a.contains("as=PartialObjectMeta")),
        route,
        params,
        verb,
        token,
        served,
    }
}

fn record(call: &Call, at: Duration, status: u16) -> RequestRecord {
    let route = call.route.as_ref();
    RequestRecord {
        at,
        verb: call.verb,
        kind: route.map_or("", |r| r.resource().kind),
        namespace: route.and_then(|r| r.namespace.clone()),
        name: route.and_then(|r| r.name.clone()),
        query: call.query.clone(),
        metadata_only: call.metadata_only,
        quorum: call.served.quorum,
        streaming: call.served.streaming,
        continuation: call.verb == Verb::List && call.params.continue_token.is_some(),
        field_selector: call.params.field_selector.clone(),
        label_selector: call.params.label_selector.clone(),
        status,
    }
}

fn respond(shared: &Arc<Shared>, call: &Call, injected: Option<Injected>) -> Response<Body> {
    let kind = call.route.as_ref().map_or("", |r| r.resource().kind);
    let meter = Meter { accounting: shared.accounting.clone(), client: call.client.clone(), kind };
    if let Some(Injected { code, retry_after }) = injected {
        let message = if code == 429 { "Too many requests, please try again later." } else { "injected fault" };
        return failure(code, message, None, retry_after, &meter);
    }
    let Some(route) = &call.route else {
        return failure(404, "the server could not find the requested resource", None, None, &meter);
    };
    if let Some((code, message, details)) = refusal(&shared.lock(), call) {
        return failure(code, &message, details, None, &meter);
    }
    if call.verb == Verb::Get {
        return get(&shared.lock(), route, call.metadata_only, &meter);
    }
    let filter = match filter(route, &call.params) {
        Ok(filter) => filter,
        Err(message) => return failure(400, &message, None, None, &meter),
    };
    match call.verb {
        Verb::Watch => watch_call(shared, call, route, filter, meter),
        _ => list(shared, call, route, &filter, meter),
    }
}

/// What a server configured to refuse field selectors or streaming lists answers: code, message, details.
fn refusal(state: &State, call: &Call) -> Option<(u16, String, Option<Value>)> {
    let selector = call.params.field_selector.as_deref().filter(|_| state.refuse_field_selectors);
    if let Some(selector) = selector {
        let field = selector.split([',', '=', '!']).next().unwrap_or_default();
        return Some((400, format!("field label not supported: {field}"), None));
    }
    if call.served.streaming && state.refuse_streaming_lists {
        // apimachinery's ValidateListOptions with the WatchList feature gate off.
        let cause = "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";
        let message = format!("ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: {cause}");
        let details = json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": [
            {"reason": "FieldValueForbidden", "message": format!("Forbidden: {cause}"), "field": "sendInitialEvents"}]});
        return Some((422, message, Some(details)));
    }
    None
}

fn filter(route: &Route, params: &Params) -> Result<Filter, String> {
    let kind = route.resource().kind;
    let fields = params.field_selector.as_deref().map(|s| FieldSelector::parse(kind, s)).transpose()?;
    let labels = params.label_selector.as_deref().map(LabelSelector::parse);
    Ok(Filter {
        namespace: route.namespace.clone(),
        fields: fields.unwrap_or_default(),
        labels: labels.unwrap_or_default(),
    })
}

/// One object. A get ignores selectors, as the real server does (they are not among its options).
fn get(state: &State, route: &Route, metadata_only: bool, meter: &Meter) -> Response<Body> {
    let name = route.name.clone().unwrap_or_default();
    let key: Key = (route.namespace.clone().unwrap_or_default(), name.clone());
    if let Some(stored) = state.store.get(route.index, &key) {
        return single(200, stored.form(metadata_only).clone(), Sent { objects: 1, ..Sent::default() }, meter);
    }
    let resource = route.resource();
    let group = resource.api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let qualified = if group.is_empty() { resource.plural.to_owned() } else { format!("{}.{group}", resource.plural) };
    let mut details = json!({"name": name, "kind": resource.plural});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    failure(404, &format!("{qualified} \"{name}\" not found"), Some(details), None, meter)
}

/// One page of a list, streamed; the continue token carries the list's version, its class and the last key.
fn list(shared: &Arc<Shared>, call: &Call, route: &Route, filter: &Filter, meter: Meter) -> Response<Body> {
    let guard = shared.accounting.list_started(&call.client);
    let limit = call.params.limit.unwrap_or(usize::MAX);
    let (rv, items, next) = {
        let state = shared.lock();
        let rv = call.token.as_ref().map_or(state.store.rv, |t| t.rv);
        let (items, next) = state.store.page(route.index, filter, call.token.as_ref().map(|t| &t.after), limit);
        let items: Vec<_> = items.iter().map(|s| s.form(call.metadata_only).clone()).collect();
        (rv, items, next)
    };
    let next = next.map(|after| Token { rv, quorum: call.served.quorum, after }.encode());
    let resource = route.resource();
    let (list_kind, api_version) = match call.metadata_only {
        true => ("PartialObjectMetadataList".to_owned(), "meta.k8s.io/v1"),
        false => (format!("{}List", resource.kind), resource.api_version),
    };
    let more = next.map(|token| format!(",\"continue\":\"{token}\"")).unwrap_or_default();
    let head = format!(
        "{{\"kind\":\"{list_kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{\"resourceVersion\":\"{rv}\"{more}}},\"items\":["
    );
    // Yielding after each piece lets concurrent lists progress side by side, as on a real server, instead of
    // one filling the socket buffers while the others wait unanswered.
    let chunks = futures_util::stream::iter(list_chunks(head, items)).then(|chunk| async {
        tokio::task::yield_now().await;
        Ok(chunk)
    });
    metered(200, chunks, meter, Some(guard))
}

fn watch_call(shared: &Arc<Shared>, call: &Call, route: &Route, filter: Filter, meter: Meter) -> Response<Body> {
    let streaming = call.served.streaming;
    let request = WatchRequest {
        index: route.index,
        filter,
        metadata_only: call.metadata_only,
        from: call.params.watch_from().filter(|_| !streaming),
        initial_events_end: streaming,
        bookmarks: call.params.allow_bookmarks,
        timeout: call.params.timeout,
    };
    let guard = streaming.then(|| shared.accounting.list_started(&call.client));
    watch(shared.clone(), request, meter, guard)
}

/// A continue token: the list's version, whether its first page was a quorum read, and the last key sent.
struct Token {
    rv: u64,
    quorum: bool,
    after: Key,
}

impl Token {
    fn encode(&self) -> String {
        let class = if self.quorum { 'q' } else { 'c' };
        let key: String = format!("{}/{}", self.after.0, self.after.1).bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.{class}.{key}", self.rv)
    }

    fn decode(text: &str) -> Option<Token> {
        let mut parts = text.splitn(3, '.');
        let rv = parts.next()?.parse().ok()?;
        let quorum = parts.next()? == "q";
        let hex = parts.next()?;
        let bytes: Option<Vec<u8>> =
            (0..hex.len() / 2).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
        let joined = String::from_utf8(bytes?).ok()?;
        let (ns, name) = joined.split_once('/')?;
        Some(Token { rv, quorum, after: (ns.to_owned(), name.to_owned()) })
    }
}
