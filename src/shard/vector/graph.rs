//! The HNSW graph of one partition (hnsw_rs), its parameters, and its dump files.
//!
//! Point ids in the graph are record offsets. Vectors are unit length, so cosine distance is
//! `1 - dot`; the API reports the similarity `1 - distance` (higher is better), unlike
//! Chronik, whose `score` is a distance that its own reports misread as a similarity.

use std::collections::{BinaryHeap, HashSet};
use std::path::Path;

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::Distance;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Graph parameters from `[vector]` in the node config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (hnsw_rs `max_nb_connection`; layer 0 keeps twice as many).
    pub m: usize,
    pub ef_construction: usize,
    /// Candidate list size while searching; raised to `k` when `k` is larger.
    pub ef_search: usize,
}

/// Layers of the graph; with M = 24 this covers far more points than one partition holds.
const MAX_LAYERS: usize = 16;

/// Cosine distance for unit vectors. hnsw_rs's own `DistDot` needs its SIMD feature on x86
/// and asserts on rounding; this one is plain Rust the compiler vectorises.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums so the loop vectorises without fast-math.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks..a.len().min(b.len()) {
        sum += a[i] * b[i];
    }
    sum
}

pub type Graph = Hnsw<'static, f32, UnitCosine>;

pub fn new_graph(params: &HnswParams, expected_points: usize) -> Graph {
    Hnsw::new(
        params.m,
        expected_points.max(10_000),
        MAX_LAYERS,
        params.ef_construction,
        UnitCosine,
    )
}

/// Inserts `(vector, offset)` pairs, in parallel for large batches.
pub fn insert(graph: &Graph, points: &[(&[f32], usize)]) {
    if points.len() >= 64 {
        graph.parallel_insert_slice(&points.to_vec());
    } else {
        for &(v, id) in points {
            graph.insert_slice((v, id));
        }
    }
}

/// Writes the graph as `<basename>.hnsw.graph` / `.hnsw.data` in `dir` and fsyncs both.
pub fn dump(graph: &Graph, dir: &Path, basename: &str) -> Result<()> {
    let written = graph
        .file_dump(dir, basename)
        .map_err(|e| Error::Internal(format!("HNSW dump failed: {e}")))?;
    if written != basename {
        return Err(Error::Internal(format!(
            "HNSW dump went to {written}, not {basename}"
        )));
    }
    for ext in ["hnsw.graph", "hnsw.data"] {
        std::fs::File::open(dir.join(format!("{basename}.{ext}")))?.sync_all()?;
    }
    crate::cluster::log_store::sync_dir(dir)?;
    Ok(())
}

/// Reloads a dump. hnsw_rs asserts (panics) on malformed files, so the panic is caught and
/// reported as an error: the caller then rebuilds from the vector log.
pub fn load(dir: &Path, basename: &str) -> Result<Graph> {
    let dir = dir.to_path_buf();
    let basename = basename.to_string();
    let result = std::panic::catch_unwind(move || {
        // The loaded graph borrows from its loader for mmap'd data; without mmap nothing is
        // borrowed, but the signature still ties the lifetimes, so the small loader is leaked
        // (once per partition per process start).
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, &basename)));
        io.load_hnsw::<f32, UnitCosine>()
    });
    match result {
        Ok(Ok(graph)) => Ok(graph),
        Ok(Err(e)) => Err(Error::Internal(format!("HNSW reload failed: {e}"))),
        Err(_) => Err(Error::internal("HNSW reload panicked on a malformed dump")),
    }
}

/// A hit inside one partition: offset and similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub offset: u64,
    pub score: f32,
}

/// Below this many allowed points an exact scan beats a filtered graph walk (and is exact).
const EXACT_SCAN_MAX_MATCHES: usize = 20_000;

/// The `k` nearest graph points to `query`, only among `allowed` when given.
pub fn search(
    graph: &Graph,
    query: &[f32],
    k: usize,
    ef_search: usize,
    allowed: Option<&HashSet<u64>>,
) -> Vec<Scored> {
    let points = graph.get_nb_point();
    if k == 0 || points == 0 {
        return Vec::new();
    }
    let ef = ef_search.max(k);
    let to_scored = |n: &hnsw_rs::hnsw::Neighbour| Scored {
        offset: n.d_id as u64,
        score: 1.0 - n.distance,
    };
    let Some(allowed) = allowed else {
        return graph.search(query, k, ef).iter().map(to_scored).collect();
    };
    let matches = allowed.len();
    if matches == 0 {
        return Vec::new();
    }
    if matches <= EXACT_SCAN_MAX_MATCHES || matches * 10 < points {
        return exact_scan(graph, query, k, Some(allowed));
    }
    // A filter passing a fraction f of the points needs roughly ef/f candidates to keep ef
    // passing ones.
    let widened = (ef * points / matches).clamp(ef, 4_096);
    let predicate = |id: &usize| allowed.contains(&(*id as u64));
    graph
        .search_filter(query, k, widened, Some(&predicate))
        .iter()
        .map(to_scored)
        .collect()
}

/// Exact top-k over the graph points (only `allowed` ones when given).
pub fn exact_scan(
    graph: &Graph,
    query: &[f32],
    k: usize,
    allowed: Option<&HashSet<u64>>,
) -> Vec<Scored> {
    // Min-heap holding the best k so far: the root is the worst kept hit (lowest score, and
    // among equal scores the highest offset), which the next better point replaces.
    type Key = (OrdF32, std::cmp::Reverse<u64>);
    let mut heap: BinaryHeap<std::cmp::Reverse<Key>> = BinaryHeap::with_capacity(k + 1);
    for point in graph.get_point_indexation() {
        let offset = point.get_origin_id() as u64;
        if allowed.is_some_and(|a| !a.contains(&offset)) {
            continue;
        }
        let score = dot(query, point.get_v());
        heap.push(std::cmp::Reverse((
            OrdF32(score),
            std::cmp::Reverse(offset),
        )));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut hits: Vec<Scored> = heap
        .into_iter()
        .map(|std::cmp::Reverse((s, std::cmp::Reverse(offset)))| Scored { offset, score: s.0 })
        .collect();
    sort_hits(&mut hits);
    hits
}

/// Best first; equal scores by offset so results are stable.
pub fn sort_hits(hits: &mut [Scored]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.offset.cmp(&b.offset)));
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
