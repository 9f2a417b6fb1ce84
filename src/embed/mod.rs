//! Embedding providers and the query-embedding cache (plan item SV-1).
//!
//! - [`Embedder`]: the provider trait; every provider names itself with an [`EmbedderId`].
//! - [`HashingEmbedder`]: lexical feature hashing, no weights, deterministic; the fallback
//!   provider and the baseline a learned model must beat.
//! - [`OpenAiEmbedder`]: any OpenAI-compatible `POST /v1/embeddings` server, with batching,
//!   bounded concurrency and retries.
//! - [`QueryEmbeddingCache`]: moka-backed cache in front of any provider; concurrent misses on
//!   one query make one provider call.
//! - [`test_server`]: an OpenAI-compatible stub server for tests and benchmarks.
//!
//! Vectors from different providers, models or dimensions must never mix, which is why the
//! provider id is part of every cache key (and should be part of any index metadata).

mod cache;
mod hashing;
pub mod local;
mod openai;
mod provider;
pub mod test_server;

use std::fmt;

use futures::future::BoxFuture;

use crate::error::Result;

pub use cache::{CacheConfig, CacheStats, QueryEmbeddingCache, normalise_query};
pub use hashing::HashingEmbedder;
pub use local::LocalEmbedder;
pub use openai::{OpenAiConfig, OpenAiEmbedder};
pub use provider::EmbeddingConfig;

/// Which vectors a provider produces: two providers with equal ids are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmbedderId {
    /// `openai`, `hashing`, ... (the family of the provider, not its URL).
    pub provider: String,
    pub model: String,
    pub dims: usize,
}

impl fmt::Display for EmbedderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.provider, self.model, self.dims)
    }
}

/// A text-embedding provider.
///
/// `embed` returns a boxed future rather than being an `async fn` so that the trait stays
/// object-safe: the cache, the test server and the node hold providers as `dyn Embedder`.
pub trait Embedder: Send + Sync {
    fn id(&self) -> EmbedderId;

    /// One vector per input, in input order, each of length [`Embedder::dimensions`].
    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>>>;

    fn dimensions(&self) -> usize;
}

/// Scales `vector` to unit length in place; an all-zero vector is left as it is, since it has
/// no direction to keep (an empty text hashes to nothing).
pub(crate) fn l2_normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in vector.iter_mut() {
            *x /= norm;
        }
    }
}
