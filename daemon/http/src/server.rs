//! The HTTP/1.1 server (hyper 1): four read-only routes, one task per
//! connection on the daemon's tracker.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /healthz` | none | 200 `{"status":"ok"}`, or 503 with the reasons |
//! | `GET /metrics` | none | OpenMetrics text |
//! | `GET /tickets/{id}` | `Authorization: Bearer` | the ticket JSON; 401, 404 |
//! | `GET /report`, `/report.json` | none | the last 24 h as HTML or JSON |
//!
//! Limits: at most [`MAX_CONNECTIONS`] connections at once (more wait in the
//! kernel's backlog), request headers must arrive within [`HEADER_TIMEOUT`],
//! bodies are never read. Blocking work (SQLite) runs on blocking threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Token;
use crate::metrics::{BoxGauges, CONTENT_TYPE, Metrics, SipCounters};
use crate::report::{DailyReport, ReportStore, html, window_before};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server asks of the daemon.
pub trait Backend: Send + Sync + 'static {
    /// Why the daemon is unhealthy; empty when healthy. Cheap, non-blocking.
    fn health(&self) -> Vec<String>;
    /// Calls in progress. Cheap, non-blocking.
    fn active_calls(&self) -> u64;
    /// The SIP user agent's counters; `None` when SIP is off. Cheap, non-blocking.
    fn sip(&self) -> Option<SipCounters> {
        None
    }
    /// Tickets not yet acknowledged by the broker; `None` if unreadable. May block.
    fn outbox_backlog(&self) -> Option<u64>;
    /// A ticket's JSON by id; `Ok(None)` for an unknown id. May block.
    ///
    /// # Errors
    /// The outbox could not be read.
    fn ticket(&self, id: &str) -> Result<Option<Vec<u8>>, String>;
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for HTTP on {addr}: {source} (is another process on that port? set [http] listen, or \"\" to turn HTTP off)"
)]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Everything the routes need.
pub struct Service {
    pub metrics: Arc<Metrics>,
    /// `None`: no report store (`/report` answers 404).
    pub report: Option<Arc<Mutex<ReportStore>>>,
    /// `None`: no token configured; `/tickets` refuses everyone.
    pub token: Option<Token>,
    pub backend: Arc<dyn Backend>,
    /// Shown on the report page.
    pub box_name: String,
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
}

impl Bound {
    /// Binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// The address is in use or not ours.
    pub async fn bind(addr: SocketAddr) -> Result<Bound, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })?;
        Ok(Bound { listener })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves on `tracker` until `cancel`; connections in progress are closed gracefully.
    pub fn serve(self, service: Arc<Service>, tracker: &TaskTracker, cancel: CancellationToken) {
        let connections = tracker.clone();
        tracker.spawn(accept_loop(self.listener, service, connections, cancel));
    }
}

/// # Cancel safety
/// Stops accepting when `cancel` fires; each connection task finishes its
/// request in flight and closes.
async fn accept_loop(
    listener: TcpListener,
    service: Arc<Service>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            () = cancel.cancelled() => return,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        let service = Arc::clone(&service);
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let handler = service_fn(move |request| handle(Arc::clone(&service), request));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => if let Err(e) = result {
                    tracing::debug!(error = %e, "http: connection ended with an error");
                },
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), connection).await;
                }
            }
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_reply(status: StatusCode, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", serde_json::to_vec(value).unwrap_or_default())
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// A ticket id as the outbox writes them (a ULID); anything else is unknown.
fn plausible_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn handle(service: Arc<Service>, request: Request<Incoming>) -> Result<Reply, Infallible> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = json_reply(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "only GET"}));
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let path = request.uri().path().to_owned();
    let mut response = match path.as_str() {
        "/healthz" => health(&service),
        "/metrics" => metrics(&service).await,
        "/report" | "/report.json" => report(&service, path == "/report.json").await,
        _ => match path.strip_prefix("/tickets/") {
            Some(id) => {
                let authorization = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
                ticket(&service, id, authorization).await
            }
            None => json_reply(StatusCode::NOT_FOUND, &json!({"error": "no such route"})),
        },
    };
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    Ok(response)
}

fn health(service: &Service) -> Reply {
    let reasons = service.backend.health();
    if reasons.is_empty() {
        json_reply(StatusCode::OK, &json!({"status": "ok"}))
    } else {
        json_reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "unhealthy", "reasons": reasons}))
    }
}

async fn metrics(service: &Service) -> Reply {
    let backend = Arc::clone(&service.backend);
    let backlog = blocking(move || backend.outbox_backlog()).await.flatten();
    let gauges = BoxGauges {
        outbox_backlog: backlog,
        healthy: service.backend.health().is_empty(),
        active_calls: service.backend.active_calls(),
        sip: service.backend.sip(),
    };
    reply(StatusCode::OK, CONTENT_TYPE, service.metrics.render(gauges))
}

async fn ticket(service: &Service, id: &str, authorization: Option<&[u8]>) -> Reply {
    let authorised = service.token.as_ref().is_some_and(|t| t.accepts(authorization));
    if !authorised {
        let why = if service.token.is_some() {
            "a valid bearer token is required"
        } else {
            "tickets are not served: no token is configured ([http] token_file)"
        };
        let mut response = json_reply(StatusCode::UNAUTHORIZED, &json!({"error": why}));
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"voicebotd\""));
        return response;
    }
    if !plausible_id(id) {
        return json_reply(StatusCode::NOT_FOUND, &json!({"error": "no such ticket"}));
    }
    let backend = Arc::clone(&service.backend);
    let id = id.to_owned();
    match blocking(move || backend.ticket(&id)).await {
        Some(Ok(Some(json))) => reply(StatusCode::OK, "application/json", json),
        Some(Ok(None)) => json_reply(StatusCode::NOT_FOUND, &json!({"error": "no such ticket"})),
        Some(Err(e)) => {
            tracing::error!(error = %e, "http: the outbox could not be read for a ticket");
            json_reply(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "the outbox could not be read"}))
        }
        None => json_reply(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "internal error"})),
    }
}

async fn report(service: &Service, as_json: bool) -> Reply {
    let Some(store) = service.report.clone() else {
        return json_reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "the service report is off ([report] store)"}),
        );
    };
    let (from, to) = window_before(crate::now_ms());
    let calls =
        blocking(move || store.lock().unwrap_or_else(|p| p.into_inner()).calls_between(from, to)).await;
    let report = match calls {
        Some(Ok(calls)) => DailyReport::compute(from, to, &calls),
        Some(Err(e)) => {
            tracing::error!(error = %e, "http: the report store could not be read");
            return json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "the report store could not be read"}),
            );
        }
        None => return json_reply(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "internal error"})),
    };
    if as_json {
        json_reply(StatusCode::OK, &serde_json::to_value(&report).unwrap_or_default())
    } else {
        reply(StatusCode::OK, "text/html; charset=utf-8", html::page(&report, &service.box_name))
    }
}
