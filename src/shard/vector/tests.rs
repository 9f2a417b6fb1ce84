//! Vector index tests on real embeddings of generated Thunderbird lines.

use super::*;
use crate::dataset::{GenOptions, LogFormat, generate, parse_line};
use crate::embed::{Embedder, LocalEmbedder};
use crate::record::LogRecord;

fn records(lines: u64, seed: u64) -> Vec<LogRecord> {
    records_of(LogFormat::Thunderbird, lines, seed)
}

fn records_of(format: LogFormat, lines: u64, seed: u64) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let opts = GenOptions {
        lines,
        seed,
        ..Default::default()
    };
    generate(format, &opts, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| parse_line(format, l).ok())
        .collect()
}

/// Entries as the indexer makes them: a repeated message points at its first record.
fn entries(records: &[LogRecord]) -> Vec<VectorEntry> {
    let model = LocalEmbedder::new().unwrap();
    let mut first: HashMap<u64, u64> = HashMap::new();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let hash = log::text_hash(&r.message);
            let same_as = first.get(&hash).copied();
            if same_as.is_none() {
                first.insert(hash, i as u64);
            }
            VectorEntry {
                offset: i as u64,
                timestamp: r.timestamp,
                host: r.host.clone(),
                label: r.label.clone(),
                text_hash: hash,
                same_as,
                vector: if same_as.is_none() {
                    model.embed_one(&r.message)
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// The vector of `offset` (its representative's).
fn vector_of(data: &[VectorEntry], offset: u64) -> &[f32] {
    let e = &data[offset as usize];
    match e.same_as {
        Some(rep) => &data[rep as usize].vector,
        None => &e.vector,
    }
}

/// The shipped defaults (`[vector]` in configs/default.toml), so the recall bar tests them.
fn params() -> HnswParams {
    crate::config::NodeConfig::load(None, &HashMap::new(), &Default::default())
        .unwrap()
        .vector
        .hnsw()
}

fn open(dir: &Path) -> Arc<VectorIndex> {
    let identity = IndexIdentity {
        embedder: LocalEmbedder::new().unwrap().id().to_string(),
        field: "message".into(),
    };
    let index = VectorIndex::create(dir, 0, &identity, 256, params()).unwrap();
    index.load().unwrap();
    index
}

/// Fraction of the exact top-k found, where a hit counts when its score reaches the exact k-th
/// score: log lines repeat, so many vectors tie and any of them is a right answer.
fn recall(found: &[Scored], exact: &[Scored]) -> f64 {
    let Some(kth) = exact.last() else { return 1.0 };
    let good = found
        .iter()
        .take(exact.len())
        .filter(|h| h.score >= kth.score - 1e-5)
        .count();
    good as f64 / exact.len() as f64
}

#[test]
fn recall_at_10_is_at_least_095_on_50k_vectors_and_survives_reload() {
    let dir = tempfile::tempdir().unwrap();
    // Enough lines for 50,000 distinct texts, i.e. 50,000 points in the graph (repeated lines
    // share their first record's point). Thunderbird repeats a lot (about 20,000 distinct
    // messages in 200,000 lines), so BGL lines, mostly distinct, make up the rest.
    let mut lines = records(200_000, 7);
    lines.extend(records_of(LogFormat::Bgl, 200_000, 7));
    lines.extend(records_of(LogFormat::Hdfs, 200_000, 7));
    let mut data = entries(&lines);
    let mut seen = std::collections::HashSet::new();
    let cut = data
        .iter()
        .position(|e| {
            if e.same_as.is_none() {
                seen.insert(e.vector.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            }
            seen.len() == 50_000
        })
        .unwrap_or_else(|| panic!("only {} distinct vectors", seen.len()));
    data.truncate(cut + 1);
    let distinct = seen.len();
    let index = open(dir.path());
    for chunk in data.chunks(4096) {
        index.append(chunk).unwrap();
    }
    assert_eq!(index.len(), data.len() as u64);
    assert_eq!(
        index.points(),
        distinct as u64,
        "equal vectors share a point"
    );
    let model = LocalEmbedder::new().unwrap();
    // Queries: the plan's semantic queries plus lines of another seed (unseen text).
    let mut queries: Vec<String> = [
        "disk failure causing data loss",
        "network connectivity between nodes",
        "memory allocation kernel panic",
        "process scheduling delay",
        "hardware error correctable ECC",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    queries.extend(records(400, 99).into_iter().step_by(4).map(|r| r.message));
    let mut total = 0.0;
    for q in &queries {
        let v = model.embed_one(q);
        let found = index.search(&v, 10, &VectorFilter::default()).unwrap();
        let exact = index.exact_search(&v, 10);
        assert_eq!(found.len(), 10);
        total += recall(&found, &exact);
    }
    let mean = total / queries.len() as f64;
    println!(
        "recall@10 over {} queries on {} records, {distinct} distinct vectors: {mean:.4}",
        queries.len(),
        data.len()
    );
    assert!(mean >= 0.95, "recall@10 {mean:.4} < 0.95");

    // A dump and a reload answer the same, without the vectors being supplied again.
    index.dump().unwrap();
    let probe = model.embed_one("kernel panic");
    let before = index.search(&probe, 10, &VectorFilter::default()).unwrap();
    drop(index);
    let reloaded = open(dir.path());
    assert_eq!(reloaded.len(), data.len() as u64);
    assert_eq!(reloaded.undumped(), 0, "graph came from the dump");
    let after = reloaded
        .search(&probe, 10, &VectorFilter::default())
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn filters_apply_inside_the_search_and_match_an_exact_scan() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(6_000, 3);
    let data = entries(&recs);
    let index = open(dir.path());
    index.append(&data).unwrap();
    let model = LocalEmbedder::new().unwrap();
    let q = model.embed_one("machine check error on cpu");
    // A host with few lines: the graph alone would return none of them in its top 10.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &recs {
        *counts.entry(r.host.as_str()).or_default() += 1;
    }
    let rare = *counts
        .iter()
        .filter(|e| *e.1 >= 10)
        .min_by_key(|e| *e.1)
        .unwrap()
        .0;
    let cases = [
        VectorFilter {
            host: Some(rare.to_string()),
            ..Default::default()
        },
        VectorFilter {
            alert: Some(true),
            ..Default::default()
        },
        VectorFilter {
            min_offset: Some(1_000),
            max_offset: Some(1_999),
            ..Default::default()
        },
        VectorFilter {
            alert: Some(false),
            ..Default::default()
        },
    ];
    for filter in cases {
        let hits = index.search(&q, 10, &filter).unwrap();
        assert_eq!(hits.len(), 10, "{filter:?} came back short");
        for h in &hits {
            let r = &recs[h.offset as usize];
            if let Some(host) = &filter.host {
                assert_eq!(&r.host, host);
            }
            if let Some(alert) = filter.alert {
                assert_eq!(r.label != "-", alert, "{filter:?}");
            }
            if let Some(min) = filter.min_offset {
                assert!((min..=filter.max_offset.unwrap()).contains(&h.offset));
            }
        }
        // Compare with an exact scan over the matching vectors.
        let mut exact: Vec<Scored> = data
            .iter()
            .filter(|e| {
                let r = &recs[e.offset as usize];
                filter.host.as_ref().is_none_or(|h| &r.host == h)
                    && filter.alert.is_none_or(|a| (r.label != "-") == a)
                    && filter.min_offset.is_none_or(|m| e.offset >= m)
                    && filter.max_offset.is_none_or(|m| e.offset <= m)
            })
            .map(|e| Scored {
                offset: e.offset,
                score: graph::dot(&q, vector_of(&data, e.offset)),
            })
            .collect();
        graph::sort_hits(&mut exact);
        exact.truncate(10);
        assert!(
            recall(&hits, &exact) >= 0.9,
            "{filter:?}: {hits:?} vs {exact:?}"
        );
    }
    let none = VectorFilter {
        host: Some("no-such-host".into()),
        ..Default::default()
    };
    assert!(index.search(&q, 10, &none).unwrap().is_empty());
}

#[test]
fn a_lost_dump_is_rebuilt_from_the_log_and_a_new_model_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let data = entries(&records(2_000, 5));
    let index = open(dir.path());
    index.append(&data[..1_500]).unwrap();
    index.dump().unwrap();
    index.append(&data[1_500..]).unwrap();
    drop(index);
    // Reload: dump (1,500) plus the 500 logged after it.
    let index = open(dir.path());
    assert_eq!(index.len(), 2_000);
    assert_eq!(index.undumped(), 500);
    let q = &vector_of(&data, 1_900).to_vec();
    assert_eq!(
        index.search(q, 1, &VectorFilter::default()).unwrap()[0].score,
        1.0
    );
    drop(index);
    // A corrupt dump: the graph is rebuilt from the log.
    for item in std::fs::read_dir(dir.path()).unwrap() {
        let path = item.unwrap().path();
        if path.to_string_lossy().ends_with(".hnsw.graph") {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let index = open(dir.path());
    assert_eq!(index.len(), 2_000);
    assert!(index.search(q, 1, &VectorFilter::default()).unwrap()[0].score > 0.999);
    assert!(
        index.append(&data[..1]).is_err(),
        "offsets must continue at 2000"
    );
    drop(index);
    // Another model: its vectors must not mix with these.
    let other = IndexIdentity {
        embedder: "openai/text-embedding-3-small/256".into(),
        field: "message".into(),
    };
    let index = VectorIndex::create(dir.path(), 0, &other, 256, params()).unwrap();
    index.load().unwrap();
    assert_eq!(index.len(), 0);
}
