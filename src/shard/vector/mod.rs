//! A partition's vector index: the durable [`log::VectorLog`] of embedded records, the HNSW
//! graph built from it, and the per-offset metadata that filters read.
//!
//! Files in `<partition>/vectors/`: `index.json` (which provider, model, dimensions and field
//! the vectors come from: a change of any of them starts the index afresh, since vectors of
//! different models must never mix), `vectors.log`, and a graph dump `graph-<n>.hnsw.*` with
//! `graph.json` naming it and the number of vectors it covers. On start the dump is reloaded
//! and only the vectors logged after it are inserted again; without a usable dump the graph is
//! rebuilt from the log. Neither path calls the embedding provider.

pub mod filter;
pub mod graph;
pub mod indexer;
pub mod log;

#[cfg(test)]
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::cluster::log_store::write_atomically;
use crate::embed::EmbedderId;
use crate::error::{Error, Result};
use filter::{MetaTable, VectorFilter};
use graph::{Graph, HnswParams, Scored};
use log::{VectorEntry, VectorLog};

/// What the vectors of an index are made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexIdentity {
    /// `provider/model/dims`.
    pub embedder: String,
    pub field: String,
}

impl IndexIdentity {
    pub fn new(embedder: &EmbedderId, field: &str) -> Self {
        Self {
            embedder: embedder.to_string(),
            field: field.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpInfo {
    basename: String,
    /// The dump holds exactly the vectors of offsets below this.
    covers: u64,
    params: HnswParams,
}

pub struct VectorIndex {
    pub partition: u32,
    dir: PathBuf,
    dims: usize,
    params: HnswParams,
    graph: RwLock<Arc<Graph>>,
    meta: RwLock<MetaTable>,
    /// `None` until [`VectorIndex::load`] has read it.
    log: Mutex<Option<VectorLog>>,
    loading: AtomicBool,
    dumped_covers: AtomicU64,
}

impl VectorIndex {
    /// Prepares the index in `dir` without reading it (that is [`VectorIndex::load`]'s slow
    /// work, done by the indexer thread so a node starts at once). Until loaded, searches see
    /// an empty index and stats say `loading`.
    pub fn create(
        dir: &Path,
        partition: u32,
        identity: &IndexIdentity,
        dims: usize,
        params: HnswParams,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let identity_path = dir.join("index.json");
        let stored: Option<IndexIdentity> = match std::fs::read(&identity_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if stored.as_ref() != Some(identity) {
            if let Some(old) = &stored {
                tracing::warn!(
                    dir = %dir.display(), old = ?old, new = ?identity,
                    "embedding provider or field changed: the vector index starts afresh"
                );
            }
            for item in std::fs::read_dir(dir)? {
                let path = item?.path();
                if path.is_file() {
                    std::fs::remove_file(&path)?;
                }
            }
            write_atomically(
                &identity_path,
                &serde_json::to_vec_pretty(identity).map_err(Error::internal)?,
            )?;
        }
        Ok(Arc::new(Self {
            partition,
            dir: dir.to_path_buf(),
            dims,
            params,
            graph: RwLock::new(Arc::new(graph::new_graph(&params, 0))),
            meta: RwLock::new(MetaTable::default()),
            log: Mutex::new(None),
            loading: AtomicBool::new(true),
            dumped_covers: AtomicU64::new(0),
        }))
    }

    /// Reads the log and brings the graph up to date with it (blocking; seconds per million
    /// vectors with a dump, minutes without).
    pub fn load(&self) -> Result<()> {
        let dump = self.read_dump_info();
        let covers = dump.as_ref().map_or(0, |d| d.covers);
        let mut meta = MetaTable::default();
        let mut rest: Vec<(u64, Vec<f32>)> = Vec::new();
        let mut dense = true;
        let log_path = self.dir.join("vectors.log");
        let log = VectorLog::open(&log_path, self.dims, |e| {
            let point = push_entry(&mut meta, &e);
            dense &= point.is_some();
            if point == Some(e.offset) && e.offset >= covers {
                rest.push((e.offset, e.vector));
            }
        })?;
        if !dense {
            return Err(Error::Internal(format!(
                "vector log in {} skips or repeats offsets",
                self.dir.display()
            )));
        }
        let logged = meta.len() as u64;
        let graph = match dump {
            Some(d) if d.covers <= logged && d.params == self.params => {
                let expected = meta.representatives_below(d.covers);
                match graph::load(&self.dir, &d.basename) {
                    Ok(g) if g.get_nb_point() == expected => Some(g),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "rebuilding vector graph from the log");
                        None
                    }
                }
            }
            _ => None,
        };
        let (graph, from) = match graph {
            Some(g) => (g, covers),
            None => {
                // The dump is unusable: every logged vector goes into a fresh graph.
                rest.clear();
                let _ = VectorLog::open(&log_path, self.dims, |e| {
                    if meta.is_representative(e.offset) {
                        rest.push((e.offset, e.vector));
                    }
                })?;
                (graph::new_graph(&self.params, meta.representatives()), 0)
            }
        };
        for chunk in rest.chunks(4096) {
            let points: Vec<(&[f32], usize)> = chunk
                .iter()
                .map(|(o, v)| (v.as_slice(), *o as usize))
                .collect();
            graph::insert(&graph, &points);
        }
        self.dumped_covers.store(from, Ordering::Release);
        *self.meta.write() = meta;
        *self.graph.write() = Arc::new(graph);
        *self.log.lock() = Some(log);
        self.loading.store(false, Ordering::Release);
        Ok(())
    }

    fn read_dump_info(&self) -> Option<DumpInfo> {
        let bytes = std::fs::read(self.dir.join("graph.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Vectors stored; they cover offsets `0..len()`.
    pub fn len(&self) -> u64 {
        self.meta.read().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct texts, i.e. points in the graph (repeats share their first record's point).
    pub fn points(&self) -> u64 {
        self.meta.read().representatives() as u64
    }

    /// The earlier record with this text hash, if the index has one.
    pub fn representative_of(&self, text_hash: u64) -> Option<u64> {
        self.meta.read().representative_of(text_hash)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Makes `entries` (the next offsets, in order) durable, then searchable.
    pub fn append(&self, entries: &[VectorEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let next = self.len();
        if entries[0].offset != next {
            return Err(Error::Internal(format!(
                "partition {} vector index expects offset {next}, got {}",
                self.partition, entries[0].offset
            )));
        }
        {
            let mut log = self.log.lock();
            let log = log
                .as_mut()
                .ok_or_else(|| Error::internal("vector index appended before it was loaded"))?;
            log.append(entries)?;
        }
        let mut new_points = Vec::new();
        {
            let mut meta = self.meta.write();
            for e in entries {
                match push_entry(&mut meta, e) {
                    Some(point) if point == e.offset => new_points.push(e),
                    Some(_) => {}
                    None => return Err(Error::internal("vector offsets must be consecutive")),
                }
            }
        }
        let graph = self.graph.read().clone();
        let points: Vec<(&[f32], usize)> = new_points
            .iter()
            .map(|e| (e.vector.as_slice(), e.offset as usize))
            .collect();
        graph::insert(&graph, &points);
        Ok(())
    }

    /// The `k` most similar vectors passing `filter`, best first.
    pub fn search(&self, query: &[f32], k: usize, filter: &VectorFilter) -> Result<Vec<Scored>> {
        if query.len() != self.dims {
            return Err(Error::bad_request(format!(
                "vector has {} dimensions, the index has {}",
                query.len(),
                self.dims
            )));
        }
        let graph = self.graph.read().clone();
        let meta = self.meta.read();
        let resolved = meta.resolve(filter);
        let hits = if filter.is_empty() {
            let reps = graph::search(&graph, query, k, self.params.ef_search, None);
            expand(&meta, reps, k, |_| true)
        } else {
            let allowed = resolved.allowed_representatives();
            let reps = graph::search(&graph, query, k, self.params.ef_search, Some(&allowed));
            expand(&meta, reps, k, |o| resolved.matches(o))
        };
        Ok(hits)
    }

    /// Exact top-k by scanning every vector (for recall measurements).
    pub fn exact_search(&self, query: &[f32], k: usize) -> Vec<Scored> {
        let graph = self.graph.read().clone();
        let meta = self.meta.read();
        let reps = graph::exact_scan(&graph, query, k, None);
        expand(&meta, reps, k, |_| true)
    }

    /// Vectors added since the last graph dump.
    pub fn undumped(&self) -> u64 {
        self.len() - self.dumped_covers.load(Ordering::Acquire)
    }

    /// Dumps the graph so the next start reloads it instead of rebuilding. Callers must not
    /// append concurrently (the indexer thread is the only writer and calls this itself).
    pub fn dump(&self) -> Result<()> {
        if self.is_loading() || self.undumped() == 0 {
            return Ok(());
        }
        let covers = self.len();
        let graph = self.graph.read().clone();
        if graph.get_nb_point() != self.meta.read().representatives() {
            return Err(Error::internal(
                "graph and vector log disagree; dump skipped",
            ));
        }
        let basename = format!("graph-{covers}");
        graph::dump(&graph, &self.dir, &basename)?;
        let info = DumpInfo {
            basename: basename.clone(),
            covers,
            params: self.params,
        };
        write_atomically(
            &self.dir.join("graph.json"),
            &serde_json::to_vec_pretty(&info).map_err(Error::internal)?,
        )?;
        // Older dumps are now unreferenced.
        for item in std::fs::read_dir(&self.dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("graph-") && !name.starts_with(&format!("{basename}.")) {
                let _ = std::fs::remove_file(&path);
            }
        }
        self.dumped_covers.store(covers, Ordering::Release);
        Ok(())
    }
}

/// Adds a logged entry to the table; see [`MetaTable::push`].
fn push_entry(meta: &mut MetaTable, e: &VectorEntry) -> Option<u64> {
    let vector_hash = e
        .same_as
        .is_none()
        .then(|| crate::node::fnv1a(e.vector.iter().flat_map(|x| x.to_bits().to_le_bytes())));
    meta.push(e, vector_hash)
}

/// Turns representative hits into record hits: each representative's matching members in
/// offset order, with its score, until `k`.
fn expand(
    meta: &MetaTable,
    mut reps: Vec<Scored>,
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<Scored> {
    graph::sort_hits(&mut reps);
    let mut hits = Vec::with_capacity(k);
    'reps: for rep in reps {
        for offset in meta.members(rep.offset) {
            if keep(offset) {
                hits.push(Scored {
                    offset,
                    score: rep.score,
                });
                if hits.len() == k {
                    break 'reps;
                }
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests;
