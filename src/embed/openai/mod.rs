//! Client for any OpenAI-compatible `POST {base_url}/v1/embeddings` endpoint.
//!
//! Inputs are split into batches of `max_batch`, sent concurrently up to `max_concurrency`
//! requests per embedder (a semaphore shared by all callers, since the provider's rate limit
//! is per key, not per call), and put back in input order by each item's `index`.
//!
//! Retries: 429, 500, 502, 503, 504, timeouts and connection errors are retried up to
//! `max_retries` times with exponential backoff and full jitter (a random wait in
//! `[0, min(cap, base·2^attempt)]`, which spreads out clients that failed together). A
//! `Retry-After` header in seconds replaces the backoff, capped at `backoff_max_ms` so one
//! header cannot stall a query for minutes. Anything else fails at once with a message that
//! says what to fix.

mod config;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::{Embedder, EmbedderId};
use crate::error::{Error, Result};

pub use config::OpenAiConfig;

pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    url: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

/// Why one HTTP attempt failed, and whether another attempt may succeed.
enum Failure {
    Retryable {
        error: Error,
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

impl OpenAiEmbedder {
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| Error::Internal(format!("building the embedding http client: {e}")))?;
        let url = format!("{}/v1/embeddings", config.base_url.trim_end_matches('/'));
        let permits = Arc::new(Semaphore::new(config.max_concurrency));
        Ok(Self {
            config,
            url,
            client,
            permits,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    async fn embed_all(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        // try_join_all polls every batch at once; the semaphore is what bounds concurrency.
        let batches = texts
            .chunks(self.config.max_batch)
            .map(|chunk| self.embed_batch(chunk));
        let results = futures::future::try_join_all(batches).await?;
        Ok(results.into_iter().flatten().collect())
    }

    async fn embed_batch(&self, chunk: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut attempt: u32 = 0;
        loop {
            let outcome = {
                // Held for one attempt only, so a batch sleeping in backoff frees its slot.
                let _permit = self.permits.acquire().await.map_err(Error::internal)?;
                self.send_once(chunk).await
            };
            let (error, retry_after) = match outcome {
                Ok(vectors) => return Ok(vectors),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retryable { error, retry_after }) => (error, retry_after),
            };
            if attempt >= self.config.max_retries {
                return Err(gave_up(error, attempt + 1));
            }
            let delay = self.retry_delay(attempt, retry_after);
            tracing::warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "embedding request failed, retrying");
            metrics::counter!("chronik_embedding_retries_total").increment(1);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, chunk: &[String]) -> std::result::Result<Vec<Vec<f32>>, Failure> {
        let body = EmbeddingRequest {
            model: &self.config.model,
            input: chunk,
            dimensions: self
                .config
                .send_dimensions
                .then_some(self.config.dimensions),
            encoding_format: "float",
        };
        let mut request = self
            .client
            .post(&self.url)
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        metrics::counter!("chronik_embedding_requests_total").increment(1);
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status();
        if status.is_success() {
            let parsed: EmbeddingResponse = response.json().await.map_err(|e| {
                if e.is_timeout() || e.is_body() {
                    self.transport_failure(e)
                } else {
                    Failure::Fatal(Error::Internal(format!(
                        "embedding provider at {} sent an unreadable response: {}",
                        self.url,
                        error_chain(&e)
                    )))
                }
            })?;
            metrics::histogram!("chronik_embedding_request_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            return self.check(parsed, chunk.len()).map_err(Failure::Fatal);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = provider_message(&response.text().await.unwrap_or_default());
        Err(classify_status(status, &message, &self.url, retry_after))
    }

    fn transport_failure(&self, e: reqwest::Error) -> Failure {
        let error = if e.is_timeout() {
            Error::Timeout(format!(
                "embedding provider at {} did not answer within {} ms",
                self.url, self.config.timeout_ms
            ))
        } else {
            Error::Unavailable(format!(
                "cannot reach embedding provider at {}: {}",
                self.url,
                error_chain(&e)
            ))
        };
        Failure::Retryable {
            error,
            retry_after: None,
        }
    }

    /// Puts vectors in input order and checks the count and length of each.
    fn check(&self, response: EmbeddingResponse, expected: usize) -> Result<Vec<Vec<f32>>> {
        let bad = |msg: String| Err(Error::Internal(format!("embedding provider: {msg}")));
        if response.data.len() != expected {
            return bad(format!(
                "sent {expected} inputs, got {} vectors back",
                response.data.len()
            ));
        }
        let mut ordered: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in response.data {
            if item.embedding.len() != self.config.dimensions {
                return bad(format!(
                    "returned {}-dimensional vectors, expected {}: check the model ({}) and \
                     dimensions settings",
                    item.embedding.len(),
                    self.config.dimensions,
                    self.config.model
                ));
            }
            match ordered.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => return bad(format!("index {} is out of range or repeated", item.index)),
            }
        }
        // Every slot is filled: `expected` distinct in-range indexes were seen.
        Ok(ordered.into_iter().flatten().collect())
    }

    fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cap = Duration::from_millis(self.config.backoff_max_ms);
        if let Some(wait) = retry_after {
            return wait.min(cap);
        }
        let ceiling_ms = self
            .config
            .backoff_base_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.config.backoff_max_ms);
        Duration::from_millis(random_u64() % (ceiling_ms + 1))
    }
}

impl Embedder for OpenAiEmbedder {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            provider: "openai".into(),
            model: self.config.model.clone(),
            dims: self.config.dimensions,
        }
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>>> {
        self.embed_all(texts).boxed()
    }

    fn dimensions(&self) -> usize {
        self.config.dimensions
    }
}

fn classify_status(
    status: StatusCode,
    message: &str,
    url: &str,
    retry_after: Option<Duration>,
) -> Failure {
    let code = status.as_u16();
    match code {
        429 | 500 | 502 | 503 | 504 => Failure::Retryable {
            error: Error::Unavailable(format!("embedding provider returned {status}: {message}")),
            retry_after,
        },
        401 => Failure::Fatal(Error::Unavailable(format!(
            "embedding provider rejected the API key (401): set OPENAI_API_KEY to a valid key \
             ({message})"
        ))),
        403 => Failure::Fatal(Error::Unavailable(format!(
            "embedding provider refused access (403): the API key lacks access to this model \
             ({message})"
        ))),
        400 | 422 => Failure::Fatal(Error::BadRequest(format!(
            "embedding provider rejected the request ({code}): {message}"
        ))),
        404 => Failure::Fatal(Error::Unavailable(format!(
            "embedding endpoint {url} answered 404: check base_url and model ({message})"
        ))),
        _ => Failure::Fatal(Error::Unavailable(format!(
            "embedding provider returned {status}: {message}"
        ))),
    }
}

fn gave_up(error: Error, attempts: u32) -> Error {
    let note = |m: String| format!("{m} (gave up after {attempts} attempts)");
    match error {
        Error::Timeout(m) => Error::Timeout(note(m)),
        Error::Unavailable(m) => Error::Unavailable(note(m)),
        other => other,
    }
}

/// OpenAI errors look like `{"error": {"message": ...}}`; other servers send text.
fn provider_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    if message.is_empty() {
        return "no message".into();
    }
    message.chars().take(500).collect()
}

/// reqwest's `Display` hides the cause ("error sending request"); the chain names it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Jitter only needs to differ between callers, not be unpredictable; `RandomState` is
/// randomly seeded per instance, which avoids a dependency on `rand`.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

#[cfg(test)]
mod tests;
