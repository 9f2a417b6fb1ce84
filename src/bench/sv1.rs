//! SV-1: the query-embedding cache. A node embeds through an OpenAI-compatible stub that
//! answers after a fixed delay (372 ms, the plan's measured OpenAI p50). The plan's semantic
//! and hybrid queries run once (every embedding a cache miss), then again `iterations` times
//! each (every one a hit); the cache-hit counter must grow by exactly the second pass's count.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    HYBRID_QUERIES, LocalNode, SEMANTIC_QUERIES, metric_sum, print_header, print_row, timed,
};
use crate::dataset::LogFormat;
use crate::embed::LocalEmbedder;
use crate::embed::test_server::{self, TestServerOptions};
use crate::error::{Error, Result};
use crate::ingest::loader::{LoadOptions, load};

pub struct Sv1Options {
    /// Generated Thunderbird lines loaded (and embedded through the stub) first.
    pub lines: u64,
    pub iterations: usize,
    pub provider_latency_ms: u64,
    pub dimensions: usize,
}

pub async fn run(options: Sv1Options) -> Result<()> {
    let work = super::scratch_dir("sv1")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let stub = test_server::start(
        listener,
        TestServerOptions::new(Arc::new(LocalEmbedder::new()?))
            .latency_ms(options.provider_latency_ms),
    )
    .await;
    let env = HashMap::from([
        ("SV_EMBEDDING_PROVIDER".to_string(), "openai".to_string()),
        ("CHRONIK_EMBEDDING_ENDPOINT".to_string(), stub.base_url()),
        (
            "CHRONIK_EMBEDDING_DIMENSIONS".to_string(),
            options.dimensions.to_string(),
        ),
        ("OPENAI_API_KEY".to_string(), "sv1-bench".to_string()),
    ]);
    let node = LocalNode::start(&work.join("data"), env).await?;
    println!(
        "SV-1 query-embedding cache: node {} embedding through a stub with {} ms per request, {} dims",
        node.base, options.provider_latency_ms, options.dimensions
    );
    if cfg!(debug_assertions) {
        println!("debug build: timings are not benchmarks (build with --release)");
    }
    let input = work.join("thunderbird.log");
    super::generate_file(&input, LogFormat::Thunderbird, options.lines, 11).await?;
    load(&LoadOptions {
        target: node.base.clone(),
        topic: "thunderbird".into(),
        format: LogFormat::Thunderbird,
        input,
        batch_size: 5000,
        concurrency: 4,
        partitions: None,
        vector: Some(true),
        progress: false,
        wait_visible: true,
    })
    .await?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let vectors = super::wait_for_vectors(
        &client,
        &node.base,
        "thunderbird",
        Duration::from_secs(3600),
    )
    .await?;
    println!(
        "{vectors} records embedded through the stub in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let base = node.base.clone();
    let search = format!("{base}/_vector/thunderbird/search");
    let hybrid = format!("{base}/_vector/thunderbird/hybrid");
    let query = format!("{base}/_query");
    let orchestrated = |q: &str| {
        json!({ "sources": [{ "topic": "thunderbird", "modes": ["text", "vector"] }],
                "q": { "text": q }, "k": 10 })
    };

    // Pass 1: every query's embedding is new.
    let mut miss_search = Vec::new();
    let mut miss_hybrid = Vec::new();
    for q in SEMANTIC_QUERIES {
        let (t, r) = timed(&client, &search, &json!({ "query": q, "k": 10 }), 0, 1).await?;
        expect_cache(&r, false, q)?;
        miss_search.extend(t);
    }
    for q in HYBRID_QUERIES {
        let (t, r) = timed(&client, &hybrid, &json!({ "query": q, "k": 10 }), 0, 1).await?;
        expect_cache(&r, false, q)?;
        miss_hybrid.extend(t);
    }
    // A third spelling of the SV-2c queries for the orchestrator, so its first call misses too.
    let mut miss_query = Vec::new();
    for q in HYBRID_QUERIES {
        let text = format!("{q} logs");
        let (t, _) = timed(&client, &query, &orchestrated(&text), 0, 1).await?;
        miss_query.extend(t);
    }

    // Pass 2: the same queries, all hits.
    let hits_before = metric_sum(
        &super::get(&client, &format!("{base}/metrics")).await?,
        "chronik_embedding_cache_hits_total",
    );
    let mut hit_search = Vec::new();
    let mut hit_hybrid = Vec::new();
    let mut hit_query = Vec::new();
    let n = options.iterations;
    for q in SEMANTIC_QUERIES {
        // Different case and spacing: the normalised key still hits.
        let spelled = format!("  {}  ", q.to_uppercase());
        let (t, r) = timed(
            &client,
            &search,
            &json!({ "query": spelled, "k": 10 }),
            0,
            n,
        )
        .await?;
        expect_cache(&r, true, q)?;
        hit_search.extend(t);
    }
    for q in HYBRID_QUERIES {
        let (t, r) = timed(&client, &hybrid, &json!({ "query": q, "k": 10 }), 0, n).await?;
        expect_cache(&r, true, q)?;
        hit_hybrid.extend(t);
        let (t, _) = timed(&client, &query, &orchestrated(&format!("{q} logs")), 0, n).await?;
        hit_query.extend(t);
    }
    let hits_after = metric_sum(
        &super::get(&client, &format!("{base}/metrics")).await?,
        "chronik_embedding_cache_hits_total",
    );
    let expected_hits = (hit_search.len() + hit_hybrid.len() + hit_query.len()) as f64;

    println!();
    print_header("SV-1 (end-to-end HTTP, k=10)");
    print_row("vector search, cache miss (pass 1)", &miss_search);
    print_row("vector search, cache hit (pass 2)", &hit_search);
    print_row("hybrid, cache miss", &miss_hybrid);
    print_row("hybrid, cache hit", &hit_hybrid);
    print_row("orchestrator text+vector, cache miss", &miss_query);
    print_row("orchestrator text+vector, cache hit", &hit_query);
    println!();
    let stats = stub.stats();
    println!(
        "chronik_embedding_cache_hits_total grew by {} during pass 2, which sent {} queries: {}",
        hits_after - hits_before,
        expected_hits,
        if (hits_after - hits_before - expected_hits).abs() < 0.5 {
            "match"
        } else {
            "MISMATCH"
        }
    );
    println!(
        "stub requests in total (indexing + query misses): {}",
        stats.requests
    );
    let p50 = super::summarise(&hit_search).p50;
    println!(
        "criterion: cache-hit vector search p50 <= 2 ms: {} ({p50:.2} ms)",
        if p50 <= 2.0 { "met" } else { "NOT met" }
    );
    node.stop().await;
    stub.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    if (hits_after - hits_before - expected_hits).abs() >= 0.5 {
        return Err(Error::internal(
            "cache hit counter does not match the second pass",
        ));
    }
    Ok(())
}

fn expect_cache(response: &serde_json::Value, hit: bool, q: &str) -> Result<()> {
    if response["embedding_from_cache"].as_bool() == Some(hit) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "query {q:?}: expected embedding_from_cache = {hit}, got {}",
            response["embedding_from_cache"]
        )))
    }
}
