//! Lexical feature-hashing embedder: no weights, no network, the same vector on every machine.
//!
//! Features are the lowercased alphanumeric runs of the text (words) and the character
//! trigrams of each word, padded with boundary marks so `disk` gives `^di`, `dis`, `isk`,
//! `sk$`. Each feature is hashed with 64-bit FNV-1a into one of `dims` buckets; one hash bit
//! picks the sign, so collisions cancel out on average instead of piling up. The result is
//! L2-normalised, so cosine similarity is a dot product.
//!
//! It is lexical only: "connection refused" does not find "cannot reach the database". It is
//! the fallback provider (`hashing`) and the baseline a learned model has to beat.

use futures::future::{BoxFuture, FutureExt};

use super::{Embedder, EmbedderId, l2_normalise};
use crate::error::{Error, Result};

/// Bumped whenever the features or weights change, because that changes every vector.
const MODEL_NAME: &str = "fnv1a-words-trigrams-v1";

/// A whole word is stronger evidence than one of its trigrams; trigrams carry partial matches
/// (`expir` ~ `expired`) and typos.
const WORD_WEIGHT: f32 = 1.0;
const TRIGRAM_WEIGHT: f32 = 0.5;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    dims: usize,
}

impl HashingEmbedder {
    pub fn new(dims: usize) -> Result<Self> {
        if dims == 0 {
            return Err(Error::Config(
                "hashing embedder dimensions must be at least 1".into(),
            ));
        }
        Ok(Self { dims })
    }

    /// Embeds one text synchronously (about a microsecond for a log line).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; self.dims];
        for word in words(text) {
            // Distinct first bytes keep a one-letter word and a trigram from sharing a hash.
            self.add_feature(&mut vector, b'w', word.as_bytes(), WORD_WEIGHT);
            let padded: Vec<char> = std::iter::once('^')
                .chain(word.chars())
                .chain(std::iter::once('$'))
                .collect();
            let mut buf = [0u8; 12];
            for trigram in padded.windows(3) {
                let mut len = 0;
                for c in trigram {
                    len += c.encode_utf8(&mut buf[len..]).len();
                }
                self.add_feature(&mut vector, b't', &buf[..len], TRIGRAM_WEIGHT);
            }
        }
        l2_normalise(&mut vector);
        vector
    }

    fn add_feature(&self, vector: &mut [f32], namespace: u8, bytes: &[u8], weight: f32) {
        let hash = fnv1a(namespace, bytes);
        // The low bits pick the bucket, the top bit the sign: they are independent enough
        // for FNV-1a that a bucket's sign is not tied to its index.
        let bucket = (hash % self.dims as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[bucket] += sign * weight;
    }
}

impl Embedder for HashingEmbedder {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            provider: "hashing".into(),
            model: MODEL_NAME.into(),
            dims: self.dims,
        }
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>>> {
        let vectors = texts.iter().map(|text| self.embed_one(text)).collect();
        futures::future::ready(Ok(vectors)).boxed()
    }

    fn dimensions(&self) -> usize {
        self.dims
    }
}

/// Lowercased runs of alphanumeric characters (Unicode-aware, so `Größe` is one word).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
        .map(str::to_lowercase)
}

/// FNV-1a is fixed by its spec, unlike `DefaultHasher`, so vectors stay stable across Rust
/// releases and machines.
fn fnv1a(namespace: u8, bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in std::iter::once(&namespace).chain(bytes) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// The published FNV-1a test vector, so a changed constant cannot slip through.
    #[test]
    fn fnv1a_matches_reference() {
        let mut hash = FNV_OFFSET_BASIS;
        for &byte in b"a" {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        assert_eq!(hash, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn vectors_are_deterministic_unit_length_and_sized() {
        let embedder = HashingEmbedder::new(256).unwrap();
        let a = embedder.embed_one("kernel: EXT3-fs error (device sda1)");
        let b = embedder.embed_one("kernel: EXT3-fs error (device sda1)");
        assert_eq!(a, b);
        assert_eq!(a.len(), 256);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }

    #[test]
    fn case_and_punctuation_do_not_matter_but_words_do() {
        let embedder = HashingEmbedder::new(384).unwrap();
        let base = embedder.embed_one("Disk failure on node-12");
        let same = embedder.embed_one("disk FAILURE, on node 12!");
        let near = embedder.embed_one("disk failures detected");
        let far = embedder.embed_one("user login accepted");
        assert!((cosine(&base, &same) - 1.0).abs() < 1e-5);
        let near_score = cosine(&base, &near);
        let far_score = cosine(&base, &far);
        assert!(near_score > far_score + 0.2, "{near_score} vs {far_score}");
    }

    #[test]
    fn empty_text_is_the_zero_vector() {
        let embedder = HashingEmbedder::new(8).unwrap();
        assert!(embedder.embed_one(" -- ").iter().all(|x| *x == 0.0));
    }

    #[test]
    fn zero_dimensions_is_rejected() {
        assert!(matches!(HashingEmbedder::new(0), Err(Error::Config(_))));
    }

    #[tokio::test]
    async fn trait_embeds_in_order() {
        let embedder = HashingEmbedder::new(64).unwrap();
        let texts = vec!["alpha".to_string(), "beta".to_string()];
        let vectors = embedder.embed(&texts).await.unwrap();
        assert_eq!(vectors[0], embedder.embed_one("alpha"));
        assert_eq!(vectors[1], embedder.embed_one("beta"));
        assert_eq!(embedder.id().provider, "hashing");
        assert_eq!(embedder.id().dims, 64);
    }
}
