use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sv_appliance::dataset::{LogFormat, parse_line};
use sv_appliance::embed::test_server::{self, Fault, TestServerHandle, TestServerOptions};
use sv_appliance::embed::{LocalEmbedder, normalise_query};
use sv_appliance::record::LogRecord;

use crate::support::{ServerProcess, get_text, post_json, ureq_get};

/// Characters of a record's message shown as `text_preview` (longer ones are cut).
const PREVIEW_CHARS: usize = 300;

/// The parsed lines of a Loghub 2k sample, read where the repository's checkout keeps them.
fn loghub(file: &str, format: LogFormat) -> Vec<LogRecord> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/loghub")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the Loghub sample {}: {e}", path.display()));
    let records: Vec<LogRecord> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| parse_line(format, l).ok())
        .collect();
    assert!(
        records.len() >= 1990,
        "{file}: only {} lines parsed",
        records.len()
    );
    records
}

fn get_json(url: &str) -> Value {
    let (status, body) = ureq_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

fn create_topic(base: &str, name: &str, partitions: u32, vector: Option<bool>) {
    let mut body = json!({ "name": name, "partitions": partitions });
    if let Some(v) = vector {
        body["vector"] = json!(v);
    }
    let (status, response) = post_json(&format!("{base}/topics"), &body);
    assert_eq!(status, 201, "create {name}: {response}");
    assert_eq!(response["partitions"], partitions, "{response}");
}

fn write_values(base: &str, topic: &str, records: &[Value]) {
    for chunk in records.chunks(500) {
        let (status, body) = post_json(
            &format!("{base}/topics/{topic}/records"),
            &json!({ "records": chunk }),
        );
        assert_eq!(status, 200, "write to {topic}: {body}");
        assert_eq!(body["accepted"], chunk.len(), "{body}");
    }
}

fn write_records(base: &str, topic: &str, records: &[LogRecord]) {
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    write_values(base, topic, &values);
}

fn vector_stats(base: &str, topic: &str) -> Value {
    get_json(&format!("{base}/_vector/{topic}/stats"))
}

/// Waits until every one of `expected` records has its vector, the index is loaded, and the
/// text index (which renders previews) has caught up too. Returns the vector stats.
fn wait_indexed(base: &str, topic: &str, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stats = vector_stats(base, topic);
        let described = get_json(&format!("{base}/topics/{topic}"));
        let total = stats["total_vectors"].as_u64().expect("total_vectors");
        assert!(
            total <= expected,
            "{topic}: {total} vectors for {expected} records: {stats}"
        );
        if total == expected
            && stats["pending"] == 0
            && stats["records"] == expected
            && stats["loading"] == false
            && described["searchable"] == expected
        {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: indexing did not reach {expected} vectors in time; stats {stats}, topic {described}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn vector_call(base: &str, topic: &str, endpoint: &str, body: Value) -> (u16, Value) {
    post_json(&format!("{base}/_vector/{topic}/{endpoint}"), &body)
}

/// A 200 answer's `results`.
fn vector_ok(base: &str, topic: &str, endpoint: &str, body: Value) -> (Vec<Value>, Value) {
    let (status, response) = vector_call(base, topic, endpoint, body.clone());
    assert_eq!(status, 200, "{endpoint} {body}: {response}");
    let results = response["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array: {response}"))
        .clone();
    assert_eq!(response["count"], results.len(), "{response}");
    (results, response)
}

fn assert_error(status: u16, body: &Value, want_status: u16, mentions: &str) {
    assert_eq!(status, want_status, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {body}"));
    assert!(
        message.to_lowercase().contains(&mentions.to_lowercase()),
        "error {message:?} should mention {mentions:?}"
    );
}

fn assert_descending(results: &[Value], field: &str) {
    for pair in results.windows(2) {
        let (a, b) = (pair[0][field].as_f64(), pair[1][field].as_f64());
        assert!(
            a.is_some() && b.is_some() && a >= b,
            "{field} not descending: {} then {}",
            pair[0],
            pair[1]
        );
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// Each hit's score is the cosine between the query vector and the embedding of the record the
/// hit shows: the vector index maps offsets to the right records.
fn assert_scores_are_cosines(local: &LocalEmbedder, query_vector: &[f32], results: &[Value]) {
    for r in results {
        let preview = r["text_preview"]
            .as_str()
            .unwrap_or_else(|| panic!("hit without text_preview: {r}"));
        if preview.chars().count() >= PREVIEW_CHARS {
            continue;
        }
        let expected = dot(query_vector, &local.embed_one(preview.trim()));
        let score = r["score"].as_f64().unwrap();
        assert!(
            (score - expected).abs() < 2e-3,
            "score {score} but the shown record's cosine is {expected}: {r}"
        );
    }
}

fn query_vector(local: &LocalEmbedder, text: &str) -> Vec<f32> {
    local.embed_one(&normalise_query(text))
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// An in-process OpenAI-compatible embeddings server answering with the local model.
fn start_stub() -> (tokio::runtime::Runtime, TestServerHandle) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let embedder = Arc::new(LocalEmbedder::new().unwrap());
        test_server::start(listener, TestServerOptions::new(embedder)).await
    });
    (runtime, handle)
}

fn openai_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SV_EMBEDDING_PROVIDER", "openai".into()),
        ("CHRONIK_EMBEDDING_ENDPOINT", endpoint.into()),
        ("CHRONIK_EMBEDDING_DIMENSIONS", "256".into()),
        ("CHRONIK_EMBEDDING_MODEL", "stub-local".into()),
        ("OPENAI_API_KEY", "sk-test".into()),
        // Small Parquet files, so the indexer reads cold files and the hot buffer.
        ("SV_FLUSH_ROWS", "400".into()),
    ]
}

fn start_with(data: &Path, env: &[(&'static str, String)]) -> ServerProcess {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(data, &pairs)
}

const TEMPLATES: [&str; 8] = [
    "session opened for user root by (uid=0)",
    "synchronized to 10.100.20.250, stratum 3",
    "EXT3-fs error (device sda1): ext3_find_entry: reading directory failed",
    "Accepted publickey for admin from 10.0.0.1 port 22 ssh2",
    "instruction cache parity error corrected",
    "connection timed out while contacting the license server",
    "disk quota exceeded on volume /scratch",
    "PacketResponder 1 for block terminating",
];

fn synthetic_message(seq: u64) -> String {
    format!(
        "{} [request {seq}]",
        TEMPLATES[seq as usize % TEMPLATES.len()]
    )
}

fn write_synthetic(base: &str, topic: &str, seqs: std::ops::Range<u64>) {
    let records: Vec<Value> = seqs
        .map(|seq| {
            json!({
                "timestamp": 1131566461 + seq as i64,
                "label": "-",
                "host": format!("cn{}", seq % 97),
                "location": format!("cn{0}/cn{0}", seq % 97),
                "component": "synthetic",
                "pid": seq,
                "message": synthetic_message(seq),
            })
        })
        .collect();
    write_values(base, topic, &records);
}

fn partition_pending(stats: &Value) -> Vec<u64> {
    stats["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pending"].as_u64().unwrap())
        .collect()
}

#[test]
fn indexer_embeds_each_record_exactly_once_across_sigkill() {
    let (_runtime, stub) = start_stub();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = openai_env(&stub.base_url());
    let mut server = start_with(&data, &env);
    let base = server.base.clone();
    create_topic(&base, "emb", 3, Some(true));
    write_synthetic(&base, "emb", 0..3000);
    let stats = wait_indexed(&base, "emb", 3000);
    assert_eq!(stats["provider"], "openai", "{stats}");
    assert_eq!(stats["model"], "stub-local", "{stats}");
    assert_eq!(stats["dimensions"], 256, "{stats}");
    for p in stats["partitions"].as_array().unwrap() {
        assert!(p["vector_count"].as_u64().unwrap() > 0, "{stats}");
    }
    let caught_up = stub.stats();
    assert_eq!(
        caught_up.inputs, 3000,
        "every record is embedded exactly once: {caught_up:?}"
    );
    assert_eq!(caught_up.faults_served, 0);

    // Once idle, each partition dumps its graph; the restart below reloads those dumps, the
    // one after the crash further down reloads them and adds the vectors logged since.
    let deadline = Instant::now() + Duration::from_secs(20);
    for p in 0..3 {
        let dump = data.join(format!("topics/emb/p{p}/vectors/graph.json"));
        while !dump.exists() {
            assert!(
                Instant::now() < deadline,
                "no graph dump at {} after the indexer went idle",
                dump.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // SIGKILL a caught-up node: the restart reloads the vectors and asks the provider nothing.
    server.kill9();
    let mut server = start_with(&data, &env);
    let base = server.base.clone();
    wait_indexed(&base, "emb", 3000);
    // Several idle polls of the indexers, to give a wrong resume point time to show.
    std::thread::sleep(Duration::from_millis(1000));
    let stats = vector_stats(&base, "emb");
    assert_eq!(stats["total_vectors"], 3000, "{stats}");
    assert_eq!(stats["pending"], 0, "{stats}");
    assert_eq!(
        stub.stats(),
        caught_up,
        "the restarted node called the embedding provider again"
    );

    // The reloaded index still maps offsets to the right records (search_by_vector embeds
    // nothing, so the provider stays quiet).
    let local = LocalEmbedder::new().unwrap();
    let probe = synthetic_message(1234);
    let probe_vector = local.embed_one(&probe);
    let (results, _) = vector_ok(
        &base,
        "emb",
        "search_by_vector",
        json!({ "vector": probe_vector, "k": 5 }),
    );
    assert_eq!(results.len(), 5);
    assert_descending(&results, "score");
    assert_scores_are_cosines(&local, &probe_vector, &results);
    // The local model gives numbers no weight, so every record of the probe's template ties.
    let template = TEMPLATES[1234 % TEMPLATES.len()];
    for r in &results {
        assert!(
            r["text_preview"].as_str().unwrap().starts_with(template),
            "{r}"
        );
        assert!(r["score"].as_f64().unwrap() > 0.999, "{r}");
    }
    assert_eq!(stub.stats(), caught_up);

    // New records after the restart: only they are embedded.
    write_synthetic(&base, "emb", 3000..3500);
    wait_indexed(&base, "emb", 3500);
    assert_eq!(
        stub.stats().inputs,
        3500,
        "only the 500 new records were embedded: {:?}",
        stub.stats()
    );

    // A crash while a provider call is in flight: the next request hangs, two partitions
    // catch up, the third waits on the hung call when the node is killed.
    stub.set_faults([Fault::Hang(Duration::from_secs(30))]);
    write_synthetic(&base, "emb", 3500..4100);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (at_kill, vectors_at_kill) = loop {
        // Vectors first, then the provider: a batch sent and stored between the two reads
        // then counts in both, never in the vectors alone (inputs ≥ vectors always).
        let stats = vector_stats(&base, "emb");
        let provider = stub.stats();
        let waiting = partition_pending(&stats).iter().filter(|p| **p > 0).count();
        if provider.faults_served == 1 && waiting == 1 {
            break (provider, stats["total_vectors"].as_u64().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "expected one partition stuck on the hung call: {stats} {provider:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Inputs sent but never stored: the hung batch.
    let in_flight = at_kill.inputs - vectors_at_kill;
    assert!(
        in_flight > 0 && in_flight <= 256,
        "one batch in flight: {at_kill:?}, {vectors_at_kill} vectors"
    );
    server.kill9();
    let server = start_with(&data, &env);
    let base = server.base.clone();
    let stats = wait_indexed(&base, "emb", 4100);
    for p in stats["partitions"].as_array().unwrap() {
        assert_eq!(p["pending"], 0, "{stats}");
    }
    let end = stub.stats();
    assert_eq!(
        end.inputs - at_kill.inputs,
        4100 - vectors_at_kill,
        "after the crash exactly the records without a stored vector were embedded: {end:?}"
    );
    // Search over the reloaded dump plus the vectors inserted after it, restricted to the
    // newest offsets of partition 0: exactly those records, each scored against its own text.
    let newest = stats["partitions"][0]["vector_count"].as_u64().unwrap();
    let probe_vector = local.embed_one(TEMPLATES[5]);
    let (recent, _) = vector_ok(
        &base,
        "emb",
        "search_by_vector",
        json!({ "vector": probe_vector, "k": 60, "partitions": [0], "min_offset": newest - 40 }),
    );
    let offsets: BTreeSet<u64> = recent
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (newest - 40..newest).collect::<BTreeSet<u64>>());
    assert_descending(&recent, "score");
    assert_scores_are_cosines(&local, &probe_vector, &recent);
    assert_eq!(stub.stats(), end, "search_by_vector called the provider");

    // Queries embed through the cache: one provider input for the first spelling, none after.
    let before = stub.stats();
    let (_, first) = vector_ok(
        &base,
        "emb",
        "search",
        json!({ "query": "Disk QUOTA exceeded", "k": 3 }),
    );
    assert_eq!(first["embedding_from_cache"], false, "{first}");
    assert_eq!(stub.stats().inputs, before.inputs + 1);
    let (_, second) = vector_ok(
        &base,
        "emb",
        "search",
        json!({ "query": "  disk quota   exceeded ", "k": 3 }),
    );
    assert_eq!(second["embedding_from_cache"], true, "{second}");
    assert_eq!(stub.stats().inputs, before.inputs + 1);

    // A benchmark re-run empties the cache first, so its misses are misses again.
    let cleared: Value = reqwest::blocking::Client::new()
        .delete(format!("{base}/_embedding_cache"))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        cleared["cleared_entries"].as_u64().unwrap() >= 1,
        "{cleared}"
    );
    let (_, third) = vector_ok(
        &base,
        "emb",
        "search",
        json!({ "query": "disk quota exceeded", "k": 3 }),
    );
    assert_eq!(third["embedding_from_cache"], false, "{third}");
    assert_eq!(stub.stats().inputs, before.inputs + 2);
}

/// Sum of a gauge over the series whose labels include `label`.
fn metric_sum(metrics: &str, name: &str, label: &str) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in metrics.lines() {
        if line.starts_with(&format!("{name}{{")) && line.contains(label) {
            found = true;
            sum += line.rsplit(' ').next()?.parse::<f64>().ok()?;
        }
    }
    found.then_some(sum)
}

#[test]
fn local_provider_search_filters_errors_and_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &[("SV_EMBEDDING_PROVIDER", "local")],
    );
    let base = &server.base;
    let tb = loghub("Thunderbird_2k.log", LogFormat::Thunderbird);
    let bgl = loghub("BGL_2k.log", LogFormat::Bgl);
    create_topic(base, "tb", 3, Some(true));
    // Embedded by default (`vector.enabled`).
    create_topic(base, "bgl", 2, None);
    create_topic(base, "plain", 1, Some(false));
    write_records(base, "tb", &tb);
    write_records(base, "bgl", &bgl);
    write_records(base, "plain", &tb[..20]);
    let stats = wait_indexed(base, "tb", tb.len() as u64);
    assert_eq!(stats["provider"], "local", "{stats}");
    assert_eq!(stats["dimensions"], 256, "{stats}");
    assert_eq!(stats["enabled"], true, "{stats}");
    wait_indexed(base, "bgl", bgl.len() as u64);
    let listing = get_json(&format!("{base}/_vector/topics"));
    let enabled: HashMap<&str, bool> = listing["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().unwrap(),
                t["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        enabled,
        HashMap::from([("tb", true), ("bgl", true), ("plain", false)]),
        "{listing}"
    );
    let local = LocalEmbedder::new().unwrap();

    // Plain search: k hits, best first, each the record its score was computed from.
    let query = "Session CLOSED for user root";
    let (results, first) = vector_ok(base, "tb", "search", json!({ "query": query, "k": 10 }));
    assert_eq!(results.len(), 10, "{first}");
    assert_eq!(first["embedding_from_cache"], false, "{first}");
    assert_eq!(first["total_vectors"], tb.len(), "{first}");
    assert_eq!(first["loading"], false, "{first}");
    assert_descending(&results, "score");
    let described = get_json(&format!("{base}/topics/tb"));
    let per_partition: Vec<u64> = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["records"].as_u64().unwrap())
        .collect();
    for r in &results {
        assert_eq!(r["topic"], "tb");
        let p = r["partition"].as_u64().expect("partition") as usize;
        let o = r["offset"].as_u64().expect("offset");
        assert!(p < 3 && o < per_partition[p], "{r}");
        assert!(
            r["text_preview"].is_string() && r["host"].is_string(),
            "{r}"
        );
    }
    // The exact line exists (24 times), so the best hit is it.
    assert_eq!(results[0]["text_preview"], "session closed for user root");
    assert!(
        results[0]["score"].as_f64().unwrap() > 0.999,
        "{}",
        results[0]
    );
    assert_scores_are_cosines(&local, &query_vector(&local, query), &results);
    // Exact search scans every vector: its i-th score bounds the graph's i-th from above, and
    // its scores are true cosines too. It is the recall ground truth, so it takes no filters.
    let other = "kernel ECC memory error corrected";
    let (approx, _) = vector_ok(base, "tb", "search", json!({ "query": other, "k": 20 }));
    let (exact, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": other, "k": 20, "exact": true }),
    );
    assert_eq!(exact.len(), 20);
    assert_descending(&exact, "score");
    assert_scores_are_cosines(&local, &query_vector(&local, other), &exact);
    for (e, a) in exact.iter().zip(&approx) {
        assert!(
            e["score"].as_f64().unwrap() >= a["score"].as_f64().unwrap() - 1e-6,
            "{e} vs {a}"
        );
    }
    let (status, body) = vector_call(
        base,
        "tb",
        "search",
        json!({ "query": other, "exact": true, "host": "tbird-admin1" }),
    );
    assert_error(status, &body, 400, "exact search takes no filters");
    let (status, body) = vector_call(
        base,
        "tb",
        "hybrid",
        json!({ "query": other, "exact": true }),
    );
    assert_error(status, &body, 400, "exact applies to /search");
    // Previews and hosts are those SQL finds at the same (partition, offset).
    for r in results.iter().take(3) {
        let sql = format!(
            "SELECT message, host FROM tb WHERE _partition = {} AND _offset = {}",
            r["partition"], r["offset"]
        );
        let (status, rows) = post_json(&format!("{base}/_sql"), &json!({ "query": sql }));
        assert_eq!(status, 200, "{rows}");
        assert_eq!(
            rows["rows"][0]["message"], r["text_preview"],
            "{sql}: {rows}"
        );
        assert_eq!(rows["rows"][0]["host"], r["host"], "{sql}: {rows}");
    }
    // The same query spelled differently comes from the cache and finds the same hits.
    let (again, second) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": "  session closed   FOR user Root ", "k": 10 }),
    );
    assert_eq!(second["embedding_from_cache"], true, "{second}");
    let key = |rs: &[Value]| -> Vec<(Value, Value)> {
        rs.iter()
            .map(|r| (r["partition"].clone(), r["offset"].clone()))
            .collect()
    };
    assert_eq!(key(&again), key(&results));

    // Filters: each returns only matching records, and all of them when fewer than k match.
    let mut hosts: HashMap<&str, usize> = HashMap::new();
    for r in &tb {
        *hosts.entry(r.host.as_str()).or_default() += 1;
    }
    let (rare_host, rare_count) = hosts
        .iter()
        .filter(|(_, n)| (2..=9).contains(*n))
        .min_by_key(|(h, _)| *h)
        .map(|(h, n)| (*h, *n))
        .expect("a host with a few lines");
    let (rare, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": query, "k": 10, "host": rare_host }),
    );
    assert_eq!(rare.len(), rare_count, "{rare_host}: {rare:?}");
    assert!(rare.iter().all(|r| r["host"] == rare_host), "{rare:?}");
    let (busy_host, _) = hosts.iter().max_by_key(|(_, n)| **n).unwrap();
    let (busy, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": "ntpd synchronized", "k": 25, "host": busy_host }),
    );
    assert_eq!(busy.len(), 25);
    assert!(busy.iter().all(|r| r["host"] == *busy_host), "{busy:?}");
    let (none, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": query, "k": 10, "host": "no-such-host" }),
    );
    assert!(none.is_empty(), "{none:?}");

    let alerts = bgl.iter().filter(|r| r.label != "-").count();
    assert!(alerts > 0 && alerts < 300);
    let (found, _) = vector_ok(
        base,
        "bgl",
        "search",
        json!({ "query": "kernel data TLB error interrupt", "k": 300, "alert": true }),
    );
    assert_eq!(found.len(), alerts, "every alert is found");
    assert!(found.iter().all(|r| r["label"] != "-"), "{found:?}");
    let (quiet, _) = vector_ok(
        base,
        "bgl",
        "search",
        json!({ "query": "kernel data TLB error interrupt", "k": 50, "alert": false }),
    );
    assert_eq!(quiet.len(), 50);
    assert!(quiet.iter().all(|r| r["label"] == "-"), "{quiet:?}");
    let kerndtlb = bgl.iter().filter(|r| r.label == "KERNDTLB").count();
    let (labelled, _) = vector_ok(
        base,
        "bgl",
        "search",
        json!({ "query": "instruction cache parity error", "k": 300, "label": "KERNDTLB" }),
    );
    assert_eq!(labelled.len(), kerndtlb);
    assert!(labelled.iter().all(|r| r["label"] == "KERNDTLB"));

    // An offset window of one partition: exactly the offsets in it.
    let (window, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": query, "k": 100, "partitions": [1], "min_offset": 100, "max_offset": 150 }),
    );
    let expected: BTreeSet<u64> = (100..=150).filter(|o| *o < per_partition[1]).collect();
    let got: BTreeSet<u64> = window
        .iter()
        .map(|r| {
            assert_eq!(r["partition"], 1, "{r}");
            r["offset"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(window.len(), got.len(), "an offset came twice: {window:?}");
    assert_eq!(got, expected);
    let (only_p2, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": query, "k": 20, "partitions": [2] }),
    );
    assert_eq!(only_p2.len(), 20);
    assert!(only_p2.iter().all(|r| r["partition"] == 2));

    // A time window: exactly the records inside it.
    let mut stamps: Vec<i64> = tb.iter().map(|r| r.timestamp).collect();
    stamps.sort_unstable();
    let (gte, lte) = (stamps[700], stamps[740]);
    let inside = stamps.iter().filter(|t| (gte..=lte).contains(*t)).count();
    assert!(inside < 1000);
    let (timed, _) = vector_ok(
        base,
        "tb",
        "search",
        json!({ "query": query, "k": 1000, "timestamp_gte": gte, "timestamp_lte": lte }),
    );
    assert_eq!(timed.len(), inside);
    assert!(
        timed
            .iter()
            .all(|r| (gte..=lte).contains(&r["timestamp"].as_i64().unwrap()))
    );

    // search_by_vector: the given vector, normalised, scored against the same records.
    let probe = local.embed_one("ntpd synchronized to 10.100.20.250, stratum 2");
    let (by_vector, response) = vector_ok(
        base,
        "tb",
        "search_by_vector",
        json!({ "vector": probe, "k": 7 }),
    );
    assert_eq!(by_vector.len(), 7);
    assert!(response["embedding_from_cache"].is_null(), "{response}");
    assert_descending(&by_vector, "score");
    assert_scores_are_cosines(&local, &probe, &by_vector);

    // Requests the node must refuse, with a JSON error naming the problem.
    let (s, b) = vector_call(
        base,
        "tb",
        "search_by_vector",
        json!({ "vector": [0.1, 0.2, 0.3] }),
    );
    assert_error(s, &b, 400, "dimensions");
    let (s, b) = vector_call(base, "tb", "search", json!({ "query": query, "k": 0 }));
    assert_error(s, &b, 400, "k must be");
    let (s, b) = vector_call(base, "tb", "search", json!({ "query": query, "k": 1001 }));
    assert_error(s, &b, 400, "k must be");
    let (s, b) = vector_call(base, "tb", "search", json!({ "k": 5 }));
    assert_error(s, &b, 400, "query");
    let (s, b) = vector_call(base, "tb", "search", json!({ "query": "   " }));
    assert_error(s, &b, 400, "query");
    let (s, b) = vector_call(base, "nope", "search", json!({ "query": query }));
    assert_error(s, &b, 404, "nope");
    let (s, b) = vector_call(base, "nope", "hybrid", json!({ "query": query }));
    assert_error(s, &b, 404, "nope");
    let (s, b) = ureq_get(&format!("{base}/_vector/nope/stats")).unwrap();
    assert_error(s, &b, 404, "nope");
    let (s, b) = vector_call(base, "plain", "search", json!({ "query": query }));
    assert_error(s, &b, 400, "vector");
    let (s, b) = vector_call(
        base,
        "tb",
        "search",
        json!({ "query": query, "partitions": [3] }),
    );
    assert_error(s, &b, 400, "partition 3");
    let (s, b) = vector_call(base, "tb", "search", json!({ "query": query, "bogus": 1 }));
    assert_error(s, &b, 400, "bogus");
    let (s, b) = vector_call(
        base,
        "tb",
        "hybrid",
        json!({ "query": query, "vector_weight": -1 }),
    );
    assert_error(s, &b, 400, "weight");

    // Hybrid: weighted reciprocal-rank fusion, with the weights and constant given.
    let check_hybrid = |body: Value, vw: f64, tw: f64, rrf_k: f64| {
        let (fused, response) = vector_ok(base, "tb", "hybrid", body.clone());
        let k = body["k"].as_u64().unwrap() as usize;
        assert_eq!(fused.len(), k, "{response}");
        assert!(response["vector_results_count"].as_u64().unwrap() > 0);
        assert!(response["text_results_count"].as_u64().unwrap() > 0);
        assert_descending(&fused, "score");
        let words = tokens(body["query"].as_str().unwrap());
        let (mut vranks, mut tranks) = (HashSet::new(), HashSet::new());
        for r in &fused {
            let (vr, tr) = (r["vector_rank"].as_u64(), r["text_rank"].as_u64());
            assert!(vr.is_some() || tr.is_some(), "a hit from neither side: {r}");
            let expected = vr.map_or(0.0, |v| vw / (rrf_k + v as f64))
                + tr.map_or(0.0, |t| tw / (rrf_k + t as f64));
            let score = r["score"].as_f64().unwrap();
            assert!(
                (score - expected).abs() < 1e-9,
                "score {score}, RRF says {expected}: {r}"
            );
            if let Some(v) = vr {
                assert!(vranks.insert(v), "vector rank {v} twice");
            }
            if let Some(t) = tr {
                assert!(tranks.insert(t), "text rank {t} twice");
                let preview = tokens(r["text_preview"].as_str().unwrap());
                assert!(
                    words.iter().any(|w| preview.contains(w)),
                    "text hit without a query word: {r}"
                );
            }
        }
        // Nothing can outrank the best vector hit often enough to push it out of the top 15.
        assert!(vranks.contains(&1), "{fused:?}");
    };
    check_hybrid(
        json!({ "query": "failed to resolve data source", "k": 15,
                "vector_weight": 0.7, "text_weight": 0.3, "rrf_k": 10 }),
        0.7,
        0.3,
        10.0,
    );
    check_hybrid(
        json!({ "query": "session opened for user root", "k": 15 }),
        0.5,
        0.5,
        60.0,
    );

    // Metrics: the cache hit above and the built-vector gauges, which reach the record count.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, metrics) = get_text(&format!("{base}/metrics"));
        assert_eq!(status, 200);
        assert!(
            metrics.contains("chronik_embedding_cache_hits_total"),
            "no cache hit counter in /metrics"
        );
        let built = metric_sum(&metrics, "chronik_vector_built_count", "topic=\"tb\"");
        if built == Some(tb.len() as f64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chronik_vector_built_count for tb is {built:?}, want {}",
            tb.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn query(base: &str, body: &Value) -> Value {
    let (status, response) = post_json(&format!("{base}/_query"), body);
    assert_eq!(status, 200, "{body}: {response}");
    response
}

fn backend<'a>(response: &'a Value, topic: &str, mode: &str) -> &'a Value {
    response["stats"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["topic"] == topic && b["backend"] == mode)
        .unwrap_or_else(|| panic!("no {topic}/{mode} backend in {response}"))
}

const FEATURES: [&str; 8] = [
    "rrf_score",
    "source_count",
    "text_rank",
    "vector_rank",
    "sql_rank",
    "text_score",
    "vector_score",
    "freshness",
];

/// Features agree with each other: sources = backends that ranked the record, RRF = Σ 1/(60+rank).
fn assert_features_consistent(result: &Value) {
    let f = &result["features"];
    for name in FEATURES {
        assert!(f[name].is_number(), "feature {name} missing: {result}");
    }
    let ranks: Vec<f64> = ["text_rank", "vector_rank", "sql_rank"]
        .iter()
        .map(|n| f[*n].as_f64().unwrap())
        .filter(|r| *r > 0.0)
        .collect();
    assert!(!ranks.is_empty(), "{result}");
    assert_eq!(
        f["source_count"].as_f64().unwrap(),
        ranks.len() as f64,
        "{result}"
    );
    let rrf: f64 = ranks.iter().map(|r| 1.0 / (60.0 + 1.0 / r)).sum();
    assert!(
        (f["rrf_score"].as_f64().unwrap() - rrf).abs() < 1e-9,
        "rrf_score disagrees with the ranks: {result}"
    );
}

#[test]
fn query_orchestrator_fuses_topics_and_reports_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &[("SV_EMBEDDING_PROVIDER", "local")],
    );
    let base = &server.base;
    let tb = loghub("Thunderbird_2k.log", LogFormat::Thunderbird);
    let bgl = loghub("BGL_2k.log", LogFormat::Bgl);
    create_topic(base, "tb", 2, Some(true));
    create_topic(base, "app-logs", 2, Some(true));
    write_records(base, "tb", &tb);
    write_records(base, "app-logs", &bgl);
    wait_indexed(base, "tb", tb.len() as u64);
    wait_indexed(base, "app-logs", bgl.len() as u64);

    let profiles = get_json(&format!("{base}/_query/profiles"));
    let names: HashSet<&str> = profiles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, HashSet::from(["default", "freshness", "relevance"]));
    let capabilities = get_json(&format!("{base}/_query/capabilities"));
    for c in capabilities.as_array().unwrap() {
        assert_eq!(c["vector_search"], true, "{c}");
    }
    assert_eq!(capabilities.as_array().unwrap().len(), 2);

    let both = json!([
        { "topic": "tb", "modes": ["text", "vector"] },
        { "topic": "app-logs", "modes": ["text", "vector"] },
    ]);
    let merged = query(
        base,
        &json!({ "sources": both, "q": { "text": "failed" }, "k": 20, "explain": true }),
    );
    let results = merged["results"].as_array().unwrap();
    assert_eq!(results.len(), 20, "{merged}");
    let topics: HashSet<&str> = results
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, HashSet::from(["tb", "app-logs"]), "{merged}");
    assert_descending(results, "final_score");
    for r in results {
        assert_features_consistent(r);
        assert!(
            r["explanation"].as_str().unwrap().starts_with("score="),
            "{r}"
        );
        if r["features"]["text_rank"].as_f64().unwrap() > 0.0 {
            let words = tokens(r["text_preview"].as_str().unwrap());
            assert!(
                words.contains(&"failed".to_string()),
                "text hit without the term: {r}"
            );
        }
    }
    let stats = &merged["stats"];
    let backends = stats["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 4, "{stats}");
    for b in backends {
        assert_eq!(b["timed_out"], false, "{b}");
        assert!(b["error"].is_null() && b["skipped"].is_null(), "{b}");
        assert!(b["candidates"].as_u64().unwrap() > 0, "{b}");
    }
    assert_eq!(stats["complete"], true, "{stats}");
    assert_eq!(stats["profile"], "default", "{stats}");

    // Grouped: the same records, keyed by topic.
    let grouped = query(
        base,
        &json!({ "sources": both, "q": { "text": "failed" }, "k": 20, "result_format": "grouped" }),
    );
    assert_eq!(grouped["results"], json!([]), "{grouped}");
    let groups = grouped["grouped_results"].as_object().unwrap();
    assert_eq!(
        groups.keys().map(String::as_str).collect::<HashSet<_>>(),
        HashSet::from(["tb", "app-logs"])
    );
    let mut grouped_keys = HashSet::new();
    for (topic, hits) in groups {
        for h in hits.as_array().unwrap() {
            assert_eq!(h["topic"], topic.as_str(), "{h}");
            grouped_keys.insert((
                h["topic"].clone(),
                h["partition"].clone(),
                h["offset"].clone(),
            ));
        }
    }
    let merged_keys: HashSet<_> = results
        .iter()
        .map(|r| {
            (
                r["topic"].clone(),
                r["partition"].clone(),
                r["offset"].clone(),
            )
        })
        .collect();
    assert_eq!(grouped_keys, merged_keys);

    // Bad requests are refused before any backend runs.
    for (body, mentions) in [
        (
            json!({ "sources": both, "q": { "text": "failed" }, "rank": { "profile": "nope" } }),
            "nope",
        ),
        (
            json!({ "sources": [{ "topic": "missing", "modes": ["text"] }], "q": { "text": "x" } }),
            "missing",
        ),
        (
            json!({ "sources": [{ "topic": "tb", "modes": ["telepathy"] }], "q": { "text": "x" } }),
            "telepathy",
        ),
        (
            json!({ "sources": both, "q": { "text": "x" }, "result_format": "pivot" }),
            "pivot",
        ),
        (json!({ "sources": [], "q": { "text": "x" } }), "sources"),
    ] {
        let (status, response) = post_json(&format!("{base}/_query"), &body);
        assert_error(status, &response, 400, mentions);
    }

    // A SQL backend whose rows do not say which records they are: an error in its report,
    // complete = false, and the other backends still answer.
    let broken = query(
        base,
        &json!({
            "sources": [
                { "topic": "tb", "modes": ["text", "sql"] },
                { "topic": "app-logs", "modes": ["text", "vector"] },
            ],
            "q": { "text": "failed", "sql": "SELECT message FROM tb LIMIT 5" },
            "k": 10,
        }),
    );
    let sql = backend(&broken, "tb", "sql");
    assert!(sql["error"].as_str().unwrap().contains("_offset"), "{sql}");
    assert_eq!(sql["candidates"], 0, "{sql}");
    assert_eq!(broken["stats"]["complete"], false, "{broken}");
    for (topic, mode) in [("tb", "text"), ("app-logs", "text"), ("app-logs", "vector")] {
        let b = backend(&broken, topic, mode);
        assert!(
            b["error"].is_null() && b["candidates"].as_u64().unwrap() > 0,
            "{b}"
        );
    }
    assert_eq!(broken["results"].as_array().unwrap().len(), 10, "{broken}");

    // SQL rows with _partition and _offset are candidates: exactly the records selected.
    let kerndtlb = bgl.iter().filter(|r| r.label == "KERNDTLB").count();
    let selected = query(
        base,
        &json!({
            "sources": [{ "topic": "app-logs", "modes": ["sql"] }],
            "q": { "sql": "SELECT _partition, _offset FROM app_logs WHERE label = 'KERNDTLB'" },
            "k": 100,
        }),
    );
    let rows = selected["results"].as_array().unwrap();
    assert_eq!(rows.len(), kerndtlb, "{selected}");
    for r in rows {
        assert_eq!(r["label"], "KERNDTLB", "{r}");
        assert!(r["features"]["sql_rank"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(selected["stats"]["complete"], true, "{selected}");
    // Mixed with text: records both backends found count two sources.
    let mixed = query(
        base,
        &json!({
            "sources": [{ "topic": "app-logs", "modes": ["text", "sql"] }],
            "q": { "text": "TLB", "sql": "SELECT _partition, _offset FROM app_logs WHERE label = 'KERNDTLB'" },
            "k": 30,
        }),
    );
    let mixed_results = mixed["results"].as_array().unwrap();
    assert!(
        mixed_results
            .iter()
            .any(|r| r["features"]["source_count"] == 2.0),
        "no record found by both text and SQL: {mixed}"
    );
    for r in mixed_results {
        assert_features_consistent(r);
        if r["features"]["sql_rank"].as_f64().unwrap() > 0.0 {
            assert_eq!(r["label"], "KERNDTLB", "{r}");
        }
    }
}

#[test]
fn a_hung_embedding_provider_times_out_only_the_vector_backend() {
    let (_runtime, stub) = start_stub();
    let dir = tempfile::tempdir().unwrap();
    let env = openai_env(&stub.base_url());
    let server = start_with(&dir.path().join("data"), &env);
    let base = &server.base;
    let tb = loghub("Thunderbird_2k.log", LogFormat::Thunderbird);
    create_topic(base, "ops", 2, Some(true));
    write_records(base, "ops", &tb[..600]);
    wait_indexed(base, "ops", 600);
    let before = stub.stats();

    stub.set_faults([Fault::Hang(Duration::from_secs(3))]);
    let body = json!({
        "sources": [{ "topic": "ops", "modes": ["text", "vector"] }],
        "q": { "text": "session opened for user root" },
        "k": 10,
        "timeout_ms": 500,
    });
    let started = Instant::now();
    let response = query(base, &body);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2000),
        "the answer took {elapsed:?}: the 500 ms deadline did not cut the 3 s hang"
    );
    let vector = backend(&response, "ops", "vector");
    assert_eq!(vector["timed_out"], true, "{response}");
    assert_eq!(vector["candidates"], 0, "{vector}");
    let text = backend(&response, "ops", "text");
    assert_eq!(text["timed_out"], false, "{text}");
    assert!(text["candidates"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(response["stats"]["complete"], false, "{response}");
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), 10, "{response}");
    for r in results {
        assert!(r["features"]["text_rank"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["features"]["vector_rank"], 0.0, "{r}");
    }
    let after = stub.stats();
    assert_eq!(
        after.faults_served,
        before.faults_served + 1,
        "the query's embedding reached the hung provider: {after:?}"
    );

    // The abandoned call left nothing behind: the same query now gets its vector.
    let recovered = query(
        base,
        &json!({
            "sources": [{ "topic": "ops", "modes": ["text", "vector"] }],
            "q": { "text": "session opened for user root" },
            "k": 10,
            "timeout_ms": 5000,
        }),
    );
    let vector = backend(&recovered, "ops", "vector");
    assert_eq!(vector["timed_out"], false, "{recovered}");
    assert!(vector["candidates"].as_u64().unwrap() > 0, "{vector}");
    assert_eq!(vector["embedding_from_cache"], false, "{vector}");
    assert_eq!(recovered["stats"]["complete"], true, "{recovered}");
}
