//! Hybrid search's two pure parts: the text side's query (the same filters as the vector
//! side) and weighted reciprocal-rank fusion of the two ranked lists.

use serde_json::{Map, Value, json};

use crate::router::retrieve::Candidate;
use crate::shard::vector::filter::VectorFilter;

/// Text-side query for hybrid search: the words OR'ed over `message` (Elasticsearch `match`),
/// with the same filters as the vector side so both lists rank the same population.
pub fn hybrid_text_dsl(query: &str, filter: &VectorFilter) -> Value {
    let mut filters = Vec::new();
    let mut range = |field: &str, gte: Option<Value>, lte: Option<Value>| {
        if gte.is_some() || lte.is_some() {
            let mut bounds = Map::new();
            if let Some(v) = gte {
                bounds.insert("gte".into(), v);
            }
            if let Some(v) = lte {
                bounds.insert("lte".into(), v);
            }
            filters.push(json!({ "range": { field: bounds } }));
        }
    };
    range(
        "_offset",
        filter.min_offset.map(|v| json!(v)),
        filter.max_offset.map(|v| json!(v)),
    );
    range(
        "timestamp",
        filter.timestamp_gte.map(|v| json!(v)),
        filter.timestamp_lte.map(|v| json!(v)),
    );
    if let Some(h) = &filter.host {
        filters.push(json!({ "term": { "host": h } }));
    }
    if let Some(l) = &filter.label {
        filters.push(json!({ "term": { "label": l } }));
    }
    let mut must_not = Vec::new();
    match filter.alert {
        Some(true) => must_not.push(json!({ "term": { "label": "-" } })),
        Some(false) => filters.push(json!({ "term": { "label": "-" } })),
        None => {}
    }
    json!({ "bool": {
        "must": [ { "match": { "message": query } } ],
        "filter": filters,
        "must_not": must_not,
    }})
}

/// One fused hit of hybrid search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    pub candidate: Candidate,
    pub score: f64,
    /// 1-based rank in each list, when the hit was in it.
    pub vector_rank: Option<usize>,
    pub text_rank: Option<usize>,
}

/// Weighted reciprocal-rank fusion with 1-based ranks:
/// `score = vector_weight/(rrf_k + rank_v) + text_weight/(rrf_k + rank_t)`.
/// Best first (ties by partition, offset), cut to `k`; a hit listed twice by one side counts
/// once, at its better rank.
pub fn fuse_rrf(
    vector: &[Candidate],
    text: &[Candidate],
    vector_weight: f64,
    text_weight: f64,
    rrf_k: f64,
    k: usize,
) -> Vec<Fused> {
    use std::collections::HashMap;
    let mut fused: HashMap<(u32, u64), Fused> = HashMap::new();
    let mut add = |list: &[Candidate], weight: f64, is_vector: bool| {
        for (i, c) in list.iter().enumerate() {
            let rank = i + 1;
            let e = fused.entry((c.partition, c.offset)).or_insert(Fused {
                candidate: *c,
                score: 0.0,
                vector_rank: None,
                text_rank: None,
            });
            let slot = if is_vector {
                &mut e.vector_rank
            } else {
                &mut e.text_rank
            };
            if slot.is_none() {
                *slot = Some(rank);
                e.score += weight / (rrf_k + rank as f64);
            }
        }
    };
    add(vector, vector_weight, true);
    add(text, text_weight, false);
    let mut out: Vec<Fused> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.candidate.partition.cmp(&b.candidate.partition))
            .then(a.candidate.offset.cmp(&b.candidate.offset))
    });
    out.truncate(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(partition: u32, offset: u64) -> Candidate {
        Candidate {
            partition,
            offset,
            score: 0.0,
        }
    }

    #[test]
    fn weighted_rrf_fuses_in_the_hand_computed_order() {
        // vector: A B C ; text: C D A (1-based ranks), weights 0.7 / 0.3, rrf_k 60.
        let (a, b, cc, d) = (c(0, 1), c(0, 2), c(1, 3), c(2, 4));
        let fused = fuse_rrf(&[a, b, cc], &[cc, d, a], 0.7, 0.3, 60.0, 10);
        let score_a = 0.7 / 61.0 + 0.3 / 63.0; // 0.016237
        let score_b = 0.7 / 62.0; // 0.011290
        let score_c = 0.7 / 63.0 + 0.3 / 61.0; // 0.016029
        let score_d = 0.3 / 62.0; // 0.004839
        let order: Vec<(u64, Option<usize>, Option<usize>)> = fused
            .iter()
            .map(|f| (f.candidate.offset, f.vector_rank, f.text_rank))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, Some(1), Some(3)),
                (3, Some(3), Some(1)),
                (2, Some(2), None),
                (4, None, Some(2)),
            ]
        );
        let scores: Vec<f64> = fused.iter().map(|f| f.score).collect();
        for (got, want) in scores.iter().zip([score_a, score_c, score_b, score_d]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // k cuts the fused list, and a duplicate in one list counts once at its best rank.
        let fused = fuse_rrf(&[a, a, b], &[], 1.0, 1.0, 60.0, 1);
        assert_eq!(fused.len(), 1);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn hybrid_text_side_carries_the_same_filters() {
        let filter = VectorFilter {
            min_offset: Some(5),
            host: Some("dn1".into()),
            alert: Some(true),
            ..Default::default()
        };
        let dsl = hybrid_text_dsl("disk error", &filter);
        assert_eq!(dsl["bool"]["must"][0]["match"]["message"], "disk error");
        assert_eq!(dsl["bool"]["filter"][0]["range"]["_offset"]["gte"], 5);
        assert_eq!(dsl["bool"]["filter"][1]["term"]["host"], "dn1");
        assert_eq!(dsl["bool"]["must_not"][0]["term"]["label"], "-");
    }
}
