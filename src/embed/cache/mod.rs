//! The query-embedding cache (SV-1): a repeated query skips the provider round trip
//! (about 372 ms p50 for OpenAI) and costs a hash lookup instead.
//!
//! Built on `moka::future::Cache`, which gives size-bounded eviction (TinyLFU, not FIFO as in
//! Chronik's hand-rolled map), time-to-live, and coalescing: concurrent misses for one key
//! run one provider call and share its result. Errors are handed to every waiter and are
//! never cached, so the next call tries the provider again.
//!
//! Metrics (names fixed by the plan): counters `chronik_embedding_cache_hits_total`,
//! `_misses_total`, `_evictions_total`; gauges `chronik_embedding_cache_size` and
//! `chronik_embedding_cache_hit_ratio`. The same numbers are kept in plain atomics too, so
//! [`QueryEmbeddingCache::stats`] works without the process-wide recorder.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;
use serde::{Deserialize, Serialize};

use super::{Embedder, EmbedderId};
use crate::error::{Error, Result};

/// Cache settings; each field has a `CHRONIK_EMBEDDING_CACHE_*` environment override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Most vectors kept; at 1536 dims one entry is about 6 KB, so 10,000 is about 60 MB.
    pub max_entries: u64,
    /// Seconds an entry lives after it was inserted; a provider may change its model behind
    /// the same name, so vectors are not kept forever.
    pub ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 10_000,
            ttl_secs: 3_600,
        }
    }
}

impl CacheConfig {
    pub const ENV_ENABLED: &'static str = "CHRONIK_EMBEDDING_CACHE_ENABLED";
    pub const ENV_MAX_ENTRIES: &'static str = "CHRONIK_EMBEDDING_CACHE_MAX_ENTRIES";
    pub const ENV_TTL_SECS: &'static str = "CHRONIK_EMBEDDING_CACHE_TTL_SECS";

    /// Defaults overridden by whichever variables are set. `env` is passed in so tests
    /// control it (callers pass `std::env::vars().collect()`).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self> {
        Self::default().with_env(env)
    }

    /// `self` overridden by whichever variables are set.
    pub fn with_env(self, env: &HashMap<String, String>) -> Result<Self> {
        let mut config = self;
        if let Some(raw) = env.get(Self::ENV_ENABLED) {
            config.enabled = parse_bool(raw).ok_or_else(|| {
                Error::Config(format!(
                    "{}={raw:?} is not a boolean (use true/false, 1/0, yes/no, on/off)",
                    Self::ENV_ENABLED
                ))
            })?;
        }
        if let Some(raw) = env.get(Self::ENV_MAX_ENTRIES) {
            config.max_entries = parse_positive(Self::ENV_MAX_ENTRIES, raw)?;
        }
        if let Some(raw) = env.get(Self::ENV_TTL_SECS) {
            config.ttl_secs = parse_positive(Self::ENV_TTL_SECS, raw)?;
        }
        Ok(config)
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_positive(var: &str, raw: &str) -> Result<u64> {
    match raw.trim().parse::<u64>() {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(Error::Config(format!(
            "{var}={raw:?} is not a positive whole number (to turn the cache off, set {}=false)",
            CacheConfig::ENV_ENABLED
        ))),
    }
}

/// Counters since the cache was built. `size` is moka's entry count, which lags inserts and
/// evictions until its housekeeping runs ([`QueryEmbeddingCache::run_pending_tasks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub size: u64,
}

impl CacheStats {
    /// hits / (hits + misses), 0 before the first lookup.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// Trim, lowercase and collapse inner whitespace: `"  Disk   Failure "` → `"disk failure"`.
pub fn normalise_query(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The provider identity is part of the key so vectors of different models or sizes never
/// mix (Chronik keyed on the text alone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    embedder: EmbedderId,
    text: String,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

pub struct QueryEmbeddingCache {
    /// `None` when disabled: every call then goes to the provider.
    cache: Option<Cache<CacheKey, Arc<Vec<f32>>>>,
    counters: Arc<Counters>,
}

impl QueryEmbeddingCache {
    pub fn new(config: &CacheConfig) -> Self {
        let counters = Arc::new(Counters::default());
        let cache = config.enabled.then(|| {
            let listener_counters = Arc::clone(&counters);
            Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(Duration::from_secs(config.ttl_secs))
                .eviction_listener(move |_key, _value, cause: RemovalCause| {
                    // Only the cache's own decisions count as evictions (size, TTL);
                    // `Explicit` and `Replaced` are the caller's doing.
                    if cause.was_evicted() {
                        listener_counters.evictions.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("chronik_embedding_cache_evictions_total").increment(1);
                    }
                })
                .build()
        });
        // Registered at zero so dashboards see the series before the first query.
        for name in [
            "chronik_embedding_cache_hits_total",
            "chronik_embedding_cache_misses_total",
            "chronik_embedding_cache_evictions_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        metrics::gauge!("chronik_embedding_cache_size").set(0.0);
        metrics::gauge!("chronik_embedding_cache_hit_ratio").set(0.0);
        Self { cache, counters }
    }

    pub fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The query's vector and whether it came from the cache.
    ///
    /// The provider embeds the *normalised* text, so the vector for a key does not depend
    /// on which spelling of the query arrived first, and turning the cache off does not
    /// change results. Callers that join a miss already in flight get `from_cache = true`:
    /// they made no provider call of their own, and only provider calls count as misses.
    pub async fn get_or_embed(
        &self,
        embedder: &dyn Embedder,
        text: &str,
    ) -> Result<(Arc<Vec<f32>>, bool)> {
        let normalised = normalise_query(text);
        let Some(cache) = &self.cache else {
            self.record(false);
            let vector = embed_one(embedder, normalised).await?;
            return Ok((Arc::new(vector), false));
        };
        let key = CacheKey {
            embedder: embedder.id(),
            text: normalised.clone(),
        };
        let result = cache
            .entry(key)
            .or_try_insert_with(async { embed_one(embedder, normalised).await.map(Arc::new) })
            .await;
        let entry = match result {
            Ok(entry) => entry,
            Err(shared) => {
                // The failed call was a provider call; waiters that shared it were not.
                self.record(false);
                return Err(unshare_error(shared));
            }
        };
        let from_cache = !entry.is_fresh();
        self.record(from_cache);
        Ok((entry.into_value(), from_cache))
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            size: self.cache.as_ref().map_or(0, Cache::entry_count),
        }
    }

    /// Runs moka's deferred housekeeping (evictions, expiry, entry count) now instead of on
    /// some later call; tests and a `/metrics` scrape use it for exact numbers.
    pub async fn run_pending_tasks(&self) {
        if let Some(cache) = &self.cache {
            cache.run_pending_tasks().await;
        }
        metrics::gauge!("chronik_embedding_cache_size").set(self.stats().size as f64);
    }

    /// Drops every entry (a benchmark timing misses, or the provider's model changed behind
    /// the same name); returns how many there were.
    pub async fn clear(&self) -> u64 {
        let Some(cache) = &self.cache else {
            return 0;
        };
        // The entry count lags inserts until pending maintenance runs.
        cache.run_pending_tasks().await;
        let entries = cache.entry_count();
        cache.invalidate_all();
        cache.run_pending_tasks().await;
        metrics::gauge!("chronik_embedding_cache_size").set(0.0);
        entries
    }

    fn record(&self, from_cache: bool) {
        if from_cache {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("chronik_embedding_cache_hits_total").increment(1);
        } else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("chronik_embedding_cache_misses_total").increment(1);
        }
        let stats = self.stats();
        metrics::gauge!("chronik_embedding_cache_size").set(stats.size as f64);
        metrics::gauge!("chronik_embedding_cache_hit_ratio").set(stats.hit_ratio());
    }
}

async fn embed_one(embedder: &dyn Embedder, text: String) -> Result<Vec<f32>> {
    let texts = [text];
    let mut vectors = embedder.embed(&texts).await?;
    let id = embedder.id();
    if vectors.len() != 1 {
        return Err(Error::Internal(format!(
            "embedding provider {id} returned {} vectors for 1 input",
            vectors.len()
        )));
    }
    let vector = vectors.pop().unwrap_or_default();
    if vector.len() != id.dims {
        return Err(Error::Internal(format!(
            "embedding provider {id} returned a {}-dimensional vector",
            vector.len()
        )));
    }
    Ok(vector)
}

/// moka hands one `Arc<Error>` to every coalesced caller; `Error` is not `Clone` (it holds an
/// `io::Error`), so the last holder takes it and the others get an equal copy.
fn unshare_error(shared: Arc<Error>) -> Error {
    Arc::try_unwrap(shared).unwrap_or_else(|shared| match &*shared {
        Error::BadRequest(m) => Error::BadRequest(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::Conflict(m) => Error::Conflict(m.clone()),
        Error::TooLarge(m) => Error::TooLarge(m.clone()),
        Error::Config(m) => Error::Config(m.clone()),
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::Timeout(m) => Error::Timeout(m.clone()),
        Error::Unauthorized(m) => Error::Unauthorized(m.clone()),
        Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        Error::Internal(m) => Error::Internal(m.clone()),
    })
}

#[cfg(test)]
mod tests;
