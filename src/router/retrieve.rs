//! Candidate retrieval shared by `/_vector/*` and `/_query`: a topic's text top-k, its vector
//! top-k, embedding a query through the cache, and record previews.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tantivy::query::Query;

use crate::error::{Error, Result};
use crate::node::{Node, Topic};
use crate::record::LogRecord;
use crate::router::es_query::QueryTranslator;
use crate::shard::vector::filter::VectorFilter;

/// One record found by a backend, with that backend's score (BM25 or cosine similarity).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Candidate {
    pub partition: u32,
    pub offset: u64,
    pub score: f32,
}

/// Best first; equal scores by (partition, offset) so results are stable.
pub fn sort_candidates(hits: &mut [Candidate]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.partition.cmp(&b.partition))
            .then(a.offset.cmp(&b.offset))
    });
}

/// Characters of a record's text shown in results.
pub const PREVIEW_CHARS: usize = 300;

/// The partitions of `topic` to search, by id: all, or the listed ones (each must exist).
pub fn select_partitions(topic: &Topic, wanted: Option<&[u32]>) -> Result<Vec<u32>> {
    let count = topic.partition_count;
    match wanted {
        None => Ok((0..count).collect()),
        Some(list) => {
            if let Some(bad) = list.iter().find(|&&p| p >= count) {
                return Err(Error::bad_request(format!(
                    "partition {bad} does not exist: topic {:?} has partitions 0..{}",
                    topic.name,
                    count - 1
                )));
            }
            let mut ids: Vec<u32> = list.to_vec();
            ids.sort_unstable();
            ids.dedup();
            Ok(ids)
        }
    }
}

/// Runs `work` on each item (a partition, typically), spread over the cores with worker `w`
/// taking every n-th item, and concatenates the results in worker order.
pub fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if workers <= 1 {
        let mut all = Vec::new();
        for item in items {
            all.extend(work(item)?);
        }
        return Ok(all);
    }
    let work = &work;
    let results: Vec<Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for item in items.iter().skip(w).step_by(workers) {
                        mine.extend(work(item)?);
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::internal("search worker panicked")))
            })
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// The local replica of partition `id` (the callers split reads into local and remote first).
fn held(topic: &Topic, id: u32) -> Result<&crate::cluster::partition::Partition> {
    topic.local(id).ok_or_else(|| {
        Error::Internal(format!(
            "partition {id} of {:?} is not held here",
            topic.name
        ))
    })
}

/// A text index whose schema and analyzers compile queries: every topic has the same schema,
/// so any local partition of any topic serves (`None` when this node holds none).
fn query_template(topic: &Topic) -> Option<&crate::shard::text::TextIndex> {
    topic.partitions.first().map(|p| p.shard.text())
}

fn no_template(topic: &Topic) -> Error {
    Error::Unavailable(format!(
        "this node holds no partition of {:?} to compile the query with",
        topic.name
    ))
}

/// Builds a text query from Elasticsearch DSL against `topic`'s schema.
pub fn text_query(topic: &Topic, dsl: &Value) -> Result<Box<dyn Query>> {
    let index = query_template(topic).ok_or_else(|| no_template(topic))?;
    QueryTranslator::new(index).dsl(dsl)
}

/// Tantivy query syntax (`error AND kernel`) against `topic`'s schema.
pub fn text_query_string(topic: &Topic, q: &str) -> Result<Box<dyn Query>> {
    let index = query_template(topic).ok_or_else(|| no_template(topic))?;
    QueryTranslator::new(index).query_string(q)
}

/// Text hits over some local partitions: the best `k`, the number of matches, and when asked
/// the winners' stored records.
pub struct TextTop {
    pub hits: Vec<Candidate>,
    pub total: u64,
    pub records: Vec<(u32, u64, LogRecord)>,
}

/// The best `k` text matches of `query` over the selected local partitions, by BM25, and the
/// number of matches over them. With `with_records`, the stored records of the merged top `k`
/// are loaded from the same searcher snapshots (only the winners, never `k` per partition).
pub fn text_top(
    topic: &Topic,
    query: &dyn Query,
    k: usize,
    partitions: &[u32],
    with_records: bool,
) -> Result<TextTop> {
    let tops = in_parallel(partitions, |&p| {
        let partition = held(topic, p)?;
        let text = partition.shard.text();
        let top = text.top(query, k)?;
        let addresses: Vec<_> = top.hits.iter().map(|(_, a)| *a).collect();
        let offsets = text.offsets_of(&top.searcher, &addresses)?;
        Ok(vec![(partition, top, offsets)])
    })?;
    let total = tops.iter().map(|(_, top, _)| top.total).sum();
    // (candidate, which partition's answer, address in its snapshot)
    let mut ranked: Vec<(Candidate, usize, tantivy::DocAddress)> = tops
        .iter()
        .enumerate()
        .flat_map(|(i, (partition, top, offsets))| {
            top.hits
                .iter()
                .zip(offsets)
                .map(move |((score, address), &offset)| {
                    let candidate = Candidate {
                        partition: partition.id,
                        offset,
                        score: *score,
                    };
                    (candidate, i, *address)
                })
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.score
            .total_cmp(&a.0.score)
            .then(a.0.partition.cmp(&b.0.partition))
            .then(a.0.offset.cmp(&b.0.offset))
    });
    ranked.truncate(k);
    let mut records = Vec::new();
    if with_records {
        for (candidate, i, address) in &ranked {
            let (partition, top, _) = &tops[*i];
            let hit = partition
                .shard
                .text()
                .load_hit(&top.searcher, candidate.score, *address)?;
            records.push((candidate.partition, candidate.offset, hit.record));
        }
    }
    Ok(TextTop {
        hits: ranked.into_iter().map(|(c, _, _)| c).collect(),
        total,
        records,
    })
}

/// Vector hits of one topic and what the index looked like while searching.
pub struct VectorTop {
    pub hits: Vec<Candidate>,
    pub total_vectors: u64,
    /// Partitions whose index was still loading (their vectors are missing from `hits`).
    pub loading_partitions: Vec<u32>,
}

pub fn require_vectors(topic: &Topic) -> Result<()> {
    if topic.vector_enabled() {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "topic {:?} has no vector index (created with \"vector\": false, or the node has embedding.provider = \"none\")",
            topic.name
        )))
    }
}

/// The `k` records most similar to `vector` passing `filter`, over the selected partitions.
/// `exact` scans every vector instead of walking the graph: the ground truth a recall
/// measurement compares the graph's answer with (filters are refused there).
pub fn vector_top(
    topic: &Topic,
    vector: &[f32],
    k: usize,
    filter: &VectorFilter,
    partitions: &[u32],
    exact: bool,
) -> Result<VectorTop> {
    require_vectors(topic)?;
    if exact && !filter.is_empty() {
        return Err(Error::bad_request(
            "exact search takes no filters (it measures recall over the whole index)",
        ));
    }
    let indexes: Vec<&Arc<crate::shard::vector::VectorIndex>> = partitions
        .iter()
        .map(|&p| {
            topic.local_vectors(p).ok_or_else(|| {
                Error::Internal(format!(
                    "partition {p} of {:?} has no vectors here",
                    topic.name
                ))
            })
        })
        .collect::<Result<_>>()?;
    let mut hits = in_parallel(&indexes, |index| {
        let found = if exact {
            if vector.len() != index.dims() {
                return Err(Error::bad_request(format!(
                    "vector has {} dimensions, the index has {}",
                    vector.len(),
                    index.dims()
                )));
            }
            index.exact_search(vector, k)
        } else {
            index.search(vector, k, filter)?
        };
        Ok(found
            .into_iter()
            .map(|s| Candidate {
                partition: index.partition,
                offset: s.offset,
                score: s.score,
            })
            .collect())
    })?;
    sort_candidates(&mut hits);
    hits.truncate(k);
    let selected = indexes.iter();
    Ok(VectorTop {
        hits,
        total_vectors: selected.clone().map(|v| v.len()).sum(),
        loading_partitions: selected
            .filter(|v| v.is_loading())
            .map(|v| v.partition)
            .collect(),
    })
}

/// The query's vector through the node's cache, and whether it came from the cache.
pub async fn embed_query(node: &Node, text: &str) -> Result<(Arc<Vec<f32>>, bool)> {
    let embedder = node.embedder.as_ref().ok_or_else(|| {
        Error::bad_request("no embedding provider is configured (embedding.provider = \"none\")")
    })?;
    if text.trim().is_empty() {
        return Err(Error::bad_request("query must not be empty"));
    }
    node.query_cache.get_or_embed(embedder.as_ref(), text).await
}

/// The stored records behind `hits`, keyed by (partition, offset). Records not yet committed
/// to the text index (under a second old) are absent.
pub fn load_records(topic: &Topic, hits: &[Candidate]) -> Result<HashMap<(u32, u64), LogRecord>> {
    let mut by_partition: HashMap<u32, Vec<u64>> = HashMap::new();
    for h in hits {
        by_partition.entry(h.partition).or_default().push(h.offset);
    }
    let mut out = HashMap::new();
    for (partition, offsets) in by_partition {
        let text = held(topic, partition)?.shard.text();
        for (offset, record) in text.records_at(&offsets)? {
            out.insert((partition, offset), record);
        }
    }
    Ok(out)
}

/// A record's text cut to [`PREVIEW_CHARS`].
pub fn preview(record: &LogRecord) -> String {
    match record.message.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => record.message[..cut].to_string(),
        None => record.message.clone(),
    }
}

/// The fields shown with a hit: preview, host, timestamp, label.
pub fn hit_fields(record: Option<&LogRecord>) -> Value {
    match record {
        Some(r) => json!({
            "text_preview": preview(r),
            "host": r.host,
            "timestamp": r.timestamp,
            "label": r.label,
        }),
        None => json!({}),
    }
}
