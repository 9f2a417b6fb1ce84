//! Test support, not product: an OpenAI-compatible embeddings server for tests and benchmarks.
//!
//! It serves `POST /v1/embeddings` in OpenAI's exact shape from any [`Embedder`] (the built-in
//! local model in the benchmarks' emulated provider, the hashing embedder in tests), so the real HTTP client, batching, retries and the
//! cache run unchanged with no network and no API key. Vectors are cut or zero-padded to the
//! requested `dimensions` and re-normalised, which keeps cosine similarity meaningful.
//!
//! Knobs: a fixed latency per request (372 ms is OpenAI's p50), a queue of faults consumed by
//! the next requests (429 with `Retry-After`, any status, a hang past the client's timeout,
//! wrong-sized vectors), a required API key, and items returned in reverse order to prove the
//! client reorders by `index`. `GET /stats` and [`TestServerHandle::stats`] count requests
//! and inputs, so a test can assert how many provider calls a cache or a retry made.
//!
//! It is a normal public module rather than `cfg(test)` because integration tests and the
//! bench command need it too. Start it on a `127.0.0.1:0` listener so ports never race.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Embedder, l2_normalise};

/// OpenAI's limit on inputs per request.
const MAX_INPUTS: usize = 2048;

#[derive(Clone)]
pub struct TestServerOptions {
    pub embedder: Arc<dyn Embedder>,
    /// Added to every request that is answered normally (faults answer at once).
    pub latency: Duration,
    /// When set, requests without `Authorization: Bearer <key>` get 401.
    pub api_key: Option<String>,
    /// Return `data` items last-to-first; their `index` fields stay right.
    pub reverse_order: bool,
}

impl TestServerOptions {
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Self {
            embedder,
            latency: Duration::ZERO,
            api_key: None,
            reverse_order: false,
        }
    }

    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency = Duration::from_millis(ms);
        self
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn reverse_order(mut self, reverse: bool) -> Self {
        self.reverse_order = reverse;
        self
    }
}

/// What the next request gets instead of a normal answer; one fault per request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>` when given.
    RateLimited { retry_after_secs: Option<u64> },
    /// Any status with an OpenAI-style error body (500, 503, 400...).
    Status(u16),
    /// Waits this long, then answers normally: past a client's timeout, it looks like a hang.
    Hang(Duration),
    /// Answers with vectors of this length, whatever was asked.
    WrongDimensions(usize),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TestServerStats {
    /// Every `POST /v1/embeddings`, including rejected and faulted ones.
    pub requests: u64,
    /// Inputs in requests that passed authentication and parsed.
    pub inputs: u64,
    pub faults_served: u64,
}

struct Shared {
    options: TestServerOptions,
    faults: Mutex<VecDeque<Fault>>,
    requests: AtomicU64,
    inputs: AtomicU64,
    faults_served: AtomicU64,
}

pub struct TestServerHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Serves on `listener` until [`TestServerHandle::shutdown`] or the handle is dropped.
pub async fn start(
    listener: tokio::net::TcpListener,
    options: TestServerOptions,
) -> TestServerHandle {
    let addr = listener
        .local_addr()
        .expect("a bound listener has a local address");
    let shared = Arc::new(Shared {
        options,
        faults: Mutex::new(VecDeque::new()),
        requests: AtomicU64::new(0),
        inputs: AtomicU64::new(0),
        faults_served: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/stats", get(stats))
        .with_state(Arc::clone(&shared));
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "embedding test server stopped");
        }
    });
    TestServerHandle {
        addr,
        shared,
        shutdown_tx: Some(shutdown_tx),
        task: Some(task),
    }
}

impl TestServerHandle {
    /// The `base_url` for [`super::OpenAiConfig`].
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> TestServerStats {
        read_stats(&self.shared)
    }

    pub fn reset_stats(&self) {
        self.shared.requests.store(0, Ordering::Relaxed);
        self.shared.inputs.store(0, Ordering::Relaxed);
        self.shared.faults_served.store(0, Ordering::Relaxed);
    }

    /// Replaces the queue of pending faults.
    pub fn set_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        *self.shared.faults.lock() = faults.into_iter().collect();
    }

    /// Stops accepting, lets in-flight requests finish for up to a second, then aborts the
    /// rest (a hanging fault could otherwise hold shutdown for as long as it hangs).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for TestServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn read_stats(shared: &Shared) -> TestServerStats {
    TestServerStats {
        requests: shared.requests.load(Ordering::Relaxed),
        inputs: shared.inputs.load(Ordering::Relaxed),
        faults_served: shared.faults_served.load(Ordering::Relaxed),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(read_stats(&shared)).into_response()
}

#[derive(Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: Input,
    dimensions: Option<usize>,
    encoding_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(key) = &shared.options.api_key {
        let expected = format!("Bearer {key}");
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return error_response(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
        }
    }
    let request: EmbeddingRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        let msg = format!(
            "input must hold 1 to {MAX_INPUTS} items, got {}",
            texts.len()
        );
        return error_response(StatusCode::BAD_REQUEST, &msg);
    }
    if request
        .encoding_format
        .as_deref()
        .is_some_and(|f| f != "float")
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            "only encoding_format float is served",
        );
    }
    if request.dimensions == Some(0) {
        return error_response(StatusCode::BAD_REQUEST, "dimensions must be at least 1");
    }
    shared
        .inputs
        .fetch_add(texts.len() as u64, Ordering::Relaxed);

    let fault = shared.faults.lock().pop_front();
    if fault.is_some() {
        shared.faults_served.fetch_add(1, Ordering::Relaxed);
    }
    let mut dims = request
        .dimensions
        .unwrap_or_else(|| shared.options.embedder.dimensions());
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    secs.to_string().parse().expect("digits"),
                );
            }
            return response;
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_response(status, "injected fault");
        }
        Some(Fault::Hang(duration)) => tokio::time::sleep(duration).await,
        Some(Fault::WrongDimensions(wrong)) => dims = wrong,
        None => {}
    }

    tokio::time::sleep(shared.options.latency).await;
    let vectors = match shared.options.embedder.embed(&texts).await {
        Ok(vectors) => vectors,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut data: Vec<_> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, mut vector)| {
            vector.resize(dims, 0.0);
            l2_normalise(&mut vector);
            json!({ "object": "embedding", "index": index, "embedding": vector })
        })
        .collect();
    if shared.options.reverse_order {
        data.reverse();
    }
    // A rough token count: OpenAI's usage field is informational for clients.
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let body = json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    axum::Json(body).into_response()
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_error"
    } else if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
    (status, axum::Json(body)).into_response()
}
