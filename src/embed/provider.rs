//! Which embedding provider a node uses (`[embedding]` in the node config) and building it.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CacheConfig, Embedder, HashingEmbedder, LocalEmbedder, OpenAiConfig, OpenAiEmbedder};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// `local` (the model compiled into the binary), `openai` (any OpenAI-compatible server),
    /// `hashing` (lexical baseline) or `none` (no vector search).
    pub provider: String,
    /// Dimensions of the `hashing` provider.
    #[serde(default = "default_hashing_dims")]
    pub hashing_dims: usize,
    #[serde(default)]
    pub openai: OpenAiConfig,
    #[serde(default)]
    pub cache: CacheConfig,
}

fn default_hashing_dims() -> usize {
    256
}

impl EmbeddingConfig {
    /// Applies the environment a Chronik deployment already sets: `OPENAI_API_KEY`, the
    /// `CHRONIK_EMBEDDING_CACHE_*` variables, and `CHRONIK_EMBEDDING_ENDPOINT` / `_MODEL` /
    /// `_DIMENSIONS` / `_CONCURRENCY` for the OpenAI client.
    pub fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<()> {
        self.cache = self.cache.clone().with_env(env)?;
        if let Some(key) = env.get("OPENAI_API_KEY").filter(|k| !k.trim().is_empty()) {
            self.openai.api_key = Some(key.trim().to_string());
        }
        let defaults = OpenAiConfig::from_env(&HashMap::new())?;
        let from_env = OpenAiConfig::from_env(env)?;
        // Only variables that are set override the file.
        if from_env.base_url != defaults.base_url {
            self.openai.base_url = from_env.base_url;
        }
        if from_env.model != defaults.model {
            self.openai.model = from_env.model;
        }
        if from_env.dimensions != defaults.dimensions {
            self.openai.dimensions = from_env.dimensions;
        }
        if from_env.max_concurrency != defaults.max_concurrency {
            self.openai.max_concurrency = from_env.max_concurrency;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        match self.provider.as_str() {
            "local" | "none" => Ok(()),
            "hashing" if (16..=65_536).contains(&self.hashing_dims) => Ok(()),
            "hashing" => Err(Error::Config(format!(
                "embedding.hashing_dims must be 16..=65536, got {}",
                self.hashing_dims
            ))),
            "openai" => self.openai.validate(),
            other => Err(Error::Config(format!(
                "embedding.provider {other:?} is not one of local, openai, hashing, none"
            ))),
        }
    }

    /// The configured provider, or `None` for `none`.
    pub fn build(&self) -> Result<Option<Arc<dyn Embedder>>> {
        self.validate()?;
        Ok(match self.provider.as_str() {
            "local" => Some(Arc::new(LocalEmbedder::new()?)),
            "hashing" => Some(Arc::new(HashingEmbedder::new(self.hashing_dims)?)),
            "openai" => Some(Arc::new(OpenAiEmbedder::new(self.openai.clone())?)),
            _ => None,
        })
    }
}
