//! Tests for the query-embedding cache.

use std::sync::atomic::{AtomicBool, AtomicUsize};

use futures::future::{BoxFuture, FutureExt};

use super::*;
use crate::embed::test_server::{self, TestServerOptions};
use crate::embed::{HashingEmbedder, OpenAiConfig, OpenAiEmbedder};

/// A hashing embedder that counts its calls and can be told to fail once.
struct CountingEmbedder {
    inner: HashingEmbedder,
    model: String,
    calls: AtomicUsize,
    fail_next: AtomicBool,
}

impl CountingEmbedder {
    fn new(model: &str, dims: usize) -> Self {
        Self {
            inner: HashingEmbedder::new(dims).unwrap(),
            model: model.into(),
            calls: AtomicUsize::new(0),
            fail_next: AtomicBool::new(false),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Embedder for CountingEmbedder {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            provider: "counting".into(),
            model: self.model.clone(),
            dims: self.inner.dimensions(),
        }
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return futures::future::ready(Err(Error::Unavailable("provider down".into()))).boxed();
        }
        self.inner.embed(texts)
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
}

fn config(max_entries: u64, ttl_secs: u64) -> CacheConfig {
    CacheConfig {
        enabled: true,
        max_entries,
        ttl_secs,
    }
}

/// A second lookup of the same text is served from the cache without a provider call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit() {
    let cache = QueryEmbeddingCache::new(&CacheConfig::default());
    let embedder = CountingEmbedder::new("m", 64);
    let (first, first_cached) = cache.get_or_embed(&embedder, "disk failure").await.unwrap();
    let (second, second_cached) = cache.get_or_embed(&embedder, "disk failure").await.unwrap();
    assert!(!first_cached);
    assert!(second_cached);
    assert_eq!(first, second);
    assert_eq!(first.len(), 64);
    assert_eq!(embedder.calls(), 1);
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.size), (1, 1, 1));
    assert_eq!(stats.hit_ratio(), 0.5);
}

/// Spacing and case do not make a new key, and the cached vector is the normalised text's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_is_normalised() {
    assert_eq!(normalise_query("  Disk \t  Failure \n"), "disk failure");
    let cache = QueryEmbeddingCache::new(&CacheConfig::default());
    let embedder = CountingEmbedder::new("m", 64);
    let (a, _) = cache
        .get_or_embed(&embedder, "  Disk   Failure ")
        .await
        .unwrap();
    let (b, from_cache) = cache.get_or_embed(&embedder, "disk failure").await.unwrap();
    assert!(from_cache);
    assert_eq!(a, b);
    assert_eq!(*a, embedder.inner.embed_one("disk failure"));
    assert_eq!(embedder.calls(), 1);
}

/// The same text under another model or another size is a different entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_dims_are_part_of_the_key() {
    let cache = QueryEmbeddingCache::new(&CacheConfig::default());
    let a64 = CountingEmbedder::new("a", 64);
    let b64 = CountingEmbedder::new("b", 64);
    let a32 = CountingEmbedder::new("a", 32);
    for embedder in [&a64, &b64, &a32] {
        let (_, from_cache) = cache.get_or_embed(embedder, "oom killer").await.unwrap();
        assert!(!from_cache, "{} must not reuse another key", embedder.id());
    }
    let (v32, from_cache) = cache.get_or_embed(&a32, "oom killer").await.unwrap();
    assert!(from_cache);
    assert_eq!(v32.len(), 32);
    assert_eq!((a64.calls(), b64.calls(), a32.calls()), (1, 1, 1));
    cache.run_pending_tasks().await;
    assert_eq!(cache.stats().size, 3);
}

/// After the TTL the provider is asked again, and the expiry counts as an eviction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_ttl() {
    // moka's clock cannot be mocked from outside the crate, so this waits a real second.
    let cache = QueryEmbeddingCache::new(&config(100, 1));
    let embedder = CountingEmbedder::new("m", 16);
    cache.get_or_embed(&embedder, "ttl").await.unwrap();
    let (_, from_cache) = cache.get_or_embed(&embedder, "ttl").await.unwrap();
    assert!(from_cache);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (_, from_cache) = cache.get_or_embed(&embedder, "ttl").await.unwrap();
    assert!(!from_cache, "expired entry must not be served");
    assert_eq!(embedder.calls(), 2);
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert_eq!(stats.evictions, 1, "{stats:?}");
    assert_eq!(stats.size, 1);
}

/// The cache never holds more than `max_entries`; every entry dropped for room is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicts_at_max_entries() {
    let cache = QueryEmbeddingCache::new(&config(10, 3_600));
    let embedder = CountingEmbedder::new("m", 16);
    for i in 0..50 {
        cache
            .get_or_embed(&embedder, &format!("query {i}"))
            .await
            .unwrap();
        // Housekeeping between inserts, as a busy server gets; moka applies the bound lazily.
        cache.run_pending_tasks().await;
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.size <= 10, "{stats:?}");
    assert_eq!(stats.evictions, 50 - stats.size, "{stats:?}");
    assert_eq!(stats.misses, 50);
}

/// Replacing an entry by hand is not an eviction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_is_not_an_eviction() {
    let cache = QueryEmbeddingCache::new(&CacheConfig::default());
    let embedder = CountingEmbedder::new("m", 16);
    cache.get_or_embed(&embedder, "one").await.unwrap();
    cache.clear().await;
    assert_eq!(cache.stats().evictions, 0);
    assert_eq!(cache.stats().size, 0);
}

/// Twenty concurrent misses on one query make one request to a slow provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_are_coalesced() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hashing = Arc::new(HashingEmbedder::new(64).unwrap());
    let server =
        test_server::start(listener, TestServerOptions::new(hashing).latency_ms(200)).await;
    let embedder = Arc::new(
        OpenAiEmbedder::new(OpenAiConfig {
            base_url: server.base_url(),
            dimensions: 64,
            ..OpenAiConfig::default()
        })
        .unwrap(),
    );
    let cache = Arc::new(QueryEmbeddingCache::new(&CacheConfig::default()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, embedder) = (Arc::clone(&cache), Arc::clone(&embedder));
            tokio::spawn(async move { cache.get_or_embed(&*embedder, "Kernel panic").await })
        })
        .collect();
    let mut vectors = Vec::new();
    for task in tasks {
        vectors.push(task.await.unwrap().unwrap().0);
    }
    assert!(vectors.iter().all(|v| *v == vectors[0]));
    assert_eq!(server.stats().requests, 1);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (1, 19), "{stats:?}");
    server.shutdown().await;
}

/// A provider error reaches the caller and is not cached: the next call asks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_not_cached() {
    let cache = QueryEmbeddingCache::new(&CacheConfig::default());
    let embedder = CountingEmbedder::new("m", 16);
    embedder.fail_next.store(true, Ordering::SeqCst);
    let err = cache.get_or_embed(&embedder, "q").await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(ref m) if m == "provider down"),
        "{err:?}"
    );
    let (_, from_cache) = cache.get_or_embed(&embedder, "q").await.unwrap();
    assert!(!from_cache);
    assert_eq!(embedder.calls(), 2);
    assert_eq!(cache.stats().misses, 2);
}

/// Disabled: every call reaches the provider and counts as a miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_cache_always_asks_the_provider() {
    let cache = QueryEmbeddingCache::new(&CacheConfig {
        enabled: false,
        ..CacheConfig::default()
    });
    assert!(!cache.is_enabled());
    let embedder = CountingEmbedder::new("m", 16);
    for _ in 0..3 {
        let (vector, from_cache) = cache.get_or_embed(&embedder, " Same  Query").await.unwrap();
        assert!(!from_cache);
        assert_eq!(*vector, embedder.inner.embed_one("same query"));
    }
    assert_eq!(embedder.calls(), 3);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.size), (0, 3, 0));
}

#[test]
fn config_from_env() {
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        CacheConfig::from_env(&env(&[])).unwrap(),
        CacheConfig::default()
    );
    let config = CacheConfig::from_env(&env(&[
        ("CHRONIK_EMBEDDING_CACHE_ENABLED", "0"),
        ("CHRONIK_EMBEDDING_CACHE_MAX_ENTRIES", "500"),
        ("CHRONIK_EMBEDDING_CACHE_TTL_SECS", " 60 "),
    ]))
    .unwrap();
    let expected = CacheConfig {
        enabled: false,
        max_entries: 500,
        ttl_secs: 60,
    };
    assert_eq!(config, expected);
    for (var, value) in [
        ("CHRONIK_EMBEDDING_CACHE_ENABLED", "maybe"),
        ("CHRONIK_EMBEDDING_CACHE_MAX_ENTRIES", "ten"),
        ("CHRONIK_EMBEDDING_CACHE_TTL_SECS", "0"),
    ] {
        let err = CacheConfig::from_env(&env(&[(var, value)])).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains(var), "{err} must name {var}");
    }
}

/// The Prometheus names are the plan's, exactly.
#[test]
fn metrics_use_the_plan_names() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // A local recorder is per thread, so the cache runs on a current-thread runtime here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let cache = QueryEmbeddingCache::new(&config(1, 3_600));
            let embedder = CountingEmbedder::new("m", 8);
            for text in ["a", "a", "b", "c"] {
                cache.get_or_embed(&embedder, text).await.unwrap();
                cache.run_pending_tasks().await;
            }
        })
    });
    let text = handle.render();
    for line in [
        "chronik_embedding_cache_hits_total 1",
        "chronik_embedding_cache_misses_total 3",
        "chronik_embedding_cache_hit_ratio 0.25",
        "chronik_embedding_cache_size 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        text.contains("chronik_embedding_cache_evictions_total 2"),
        "{text}"
    );
}
