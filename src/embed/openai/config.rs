//! Settings for the OpenAI-compatible client, with serde defaults and environment overrides.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Scheme, host and port, without `/v1`: `https://api.openai.com`, `http://127.0.0.1:8000`.
    pub base_url: String,
    pub model: String,
    pub dimensions: usize,
    /// Send `dimensions` in the request. Turn off for models that reject it (`ada-002`); the
    /// returned length is checked against `dimensions` either way.
    pub send_dimensions: bool,
    /// Never written back out, so a saved config cannot leak it.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Inputs per request. OpenAI accepts up to 2048; smaller batches retry more cheaply.
    pub max_batch: usize,
    pub max_concurrency: usize,
    /// Per HTTP attempt, not per `embed` call.
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com".into(),
            model: "text-embedding-3-small".into(),
            dimensions: 1536,
            send_dimensions: true,
            api_key: None,
            max_batch: 256,
            max_concurrency: 4,
            timeout_ms: 30_000,
            max_retries: 5,
            backoff_base_ms: 250,
            backoff_max_ms: 20_000,
        }
    }
}

/// Hand-written so the API key never reaches a log line.
impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_batch", &self.max_batch)
            .field("max_concurrency", &self.max_concurrency)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl OpenAiConfig {
    /// Defaults overridden by `OPENAI_API_KEY` and Chronik's `CHRONIK_EMBEDDING_ENDPOINT`
    /// (base URL), `CHRONIK_EMBEDDING_MODEL`, `CHRONIK_EMBEDDING_DIMENSIONS` and
    /// `CHRONIK_EMBEDDING_CONCURRENCY` (1–32).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self> {
        let mut config = Self::default();
        if let Some(key) = env.get("OPENAI_API_KEY").filter(|k| !k.trim().is_empty()) {
            config.api_key = Some(key.trim().to_string());
        }
        if let Some(url) = env.get("CHRONIK_EMBEDDING_ENDPOINT") {
            config.base_url = url.trim().to_string();
        }
        if let Some(model) = env.get("CHRONIK_EMBEDDING_MODEL") {
            config.model = model.trim().to_string();
        }
        let number = |var: &str, range: std::ops::RangeInclusive<usize>| -> Result<Option<usize>> {
            let Some(raw) = env.get(var) else {
                return Ok(None);
            };
            match raw.trim().parse::<usize>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(Error::Config(format!(
                    "{var}={raw:?} must be a whole number in {}..={}",
                    range.start(),
                    range.end()
                ))),
            }
        };
        if let Some(dims) = number("CHRONIK_EMBEDDING_DIMENSIONS", 1..=65_536)? {
            config.dimensions = dims;
        }
        if let Some(concurrency) = number("CHRONIK_EMBEDDING_CONCURRENCY", 1..=32)? {
            config.max_concurrency = concurrency;
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(format!("embedding provider: {msg}")));
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return fail(format!(
                "base_url {:?} must start with http(s)://",
                self.base_url
            ));
        }
        if self.model.is_empty() {
            return fail("model must not be empty".into());
        }
        if self.dimensions == 0 {
            return fail("dimensions must be at least 1".into());
        }
        if !(1..=2048).contains(&self.max_batch) {
            return fail(format!(
                "max_batch must be 1..=2048, got {}",
                self.max_batch
            ));
        }
        if self.max_concurrency == 0 || self.timeout_ms == 0 {
            return fail("max_concurrency and timeout_ms must be at least 1".into());
        }
        Ok(())
    }
}
