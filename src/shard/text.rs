//! A partition's Tantivy index: analysed `message`, keyword fields, fast `timestamp`/`offset`.
//!
//! Documents are added as batches are applied and become searchable at the next commit, which
//! the shard's checkpoint task runs every second. Each commit carries the shard [`Watermark`] as
//! its payload, so after a crash the index itself says which records it holds.

use std::cmp::Reverse;
use std::path::Path;

use parking_lot::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, Query, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, Searcher,
    SegmentReader, TantivyDocument,
};

use crate::dataset::derive_severity;
use crate::error::{Error, Result};
use crate::record::LogRecord;
use crate::shard::watermark::Watermark;

/// Memory the writer may use before it flushes a segment; one indexing thread per partition.
const WRITER_HEAP_BYTES: usize = 48 * 1024 * 1024;

/// Field handles of the text schema.
#[derive(Clone)]
pub struct TextFields {
    pub message: Field,
    pub host: Field,
    pub location: Field,
    pub component: Field,
    pub label: Field,
    pub severity: Field,
    pub level: Field,
    pub pid: Field,
    pub timestamp: Field,
    pub offset: Field,
}

impl TextFields {
    /// Maps a user-facing field name to its handle; `None` for unknown fields.
    pub fn by_name(&self, name: &str) -> Option<Field> {
        Some(match name {
            "message" => self.message,
            "host" | "_key" => self.host,
            "location" => self.location,
            "component" => self.component,
            "label" => self.label,
            "severity" => self.severity,
            "level" => self.level,
            "pid" => self.pid,
            "timestamp" => self.timestamp,
            "_offset" | "offset" => self.offset,
            _ => return None,
        })
    }
}

fn build_schema() -> (Schema, TextFields) {
    let mut builder = Schema::builder();
    // Positions are kept so phrase queries such as "disk I/O error" work.
    let message_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = TextFields {
        message: builder.add_text_field("message", message_options),
        host: builder.add_text_field("host", STRING | STORED),
        location: builder.add_text_field("location", STRING | STORED),
        component: builder.add_text_field("component", STRING | STORED),
        label: builder.add_text_field("label", STRING | STORED),
        severity: builder.add_text_field("severity", STRING | STORED),
        level: builder.add_text_field("level", STRING | STORED),
        pid: builder.add_i64_field("pid", INDEXED | STORED),
        timestamp: builder.add_i64_field("timestamp", INDEXED | STORED | tantivy::schema::FAST),
        offset: builder.add_u64_field("_offset", INDEXED | STORED | tantivy::schema::FAST),
    };
    (builder.build(), fields)
}

/// A partition's best candidates and the searcher snapshot they came from (needed to load
/// their documents later).
pub struct TopHits {
    pub searcher: Searcher,
    /// Exact number of matching documents.
    pub total: u64,
    /// (score, address), best first.
    pub hits: Vec<(f32, DocAddress)>,
}

/// One hit of a shard-local search.
#[derive(Debug, Clone)]
pub struct TextHit {
    pub score: f32,
    pub offset: u64,
    pub record: LogRecord,
}

pub struct TextIndex {
    index: Index,
    fields: TextFields,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
}

impl TextIndex {
    /// Opens the index in `dir` (creating it), returning it and the watermark of its last commit.
    pub fn open(dir: &Path) -> Result<(Self, Watermark)> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = build_schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(Error::internal)?;
        let index = Index::open_or_create(directory, schema).map_err(Error::internal)?;
        let watermark = match index.load_metas().map_err(Error::internal)?.payload {
            Some(payload) => serde_json::from_str(&payload).map_err(Error::internal)?,
            None => Watermark::default(),
        };
        let writer = index
            .writer_with_num_threads(1, WRITER_HEAP_BYTES)
            .map_err(Error::internal)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(Error::internal)?;
        Ok((
            Self {
                index,
                fields,
                writer: Mutex::new(writer),
                reader,
            },
            watermark,
        ))
    }

    pub fn fields(&self) -> &TextFields {
        &self.fields
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Queues records for indexing; `first_offset` is the offset of `records[0]`.
    pub fn add(&self, first_offset: u64, records: &[LogRecord]) -> Result<()> {
        let writer = self.writer.lock();
        let f = &self.fields;
        for (i, r) in records.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(f.message, &r.message);
            doc.add_text(f.host, &r.host);
            doc.add_text(f.location, &r.location);
            doc.add_text(f.component, &r.component);
            doc.add_text(f.label, &r.label);
            doc.add_text(f.severity, derive_severity(r));
            if let Some(level) = &r.level {
                doc.add_text(f.level, level);
            }
            if let Some(pid) = r.pid {
                doc.add_i64(f.pid, pid);
            }
            doc.add_i64(f.timestamp, r.timestamp);
            doc.add_u64(f.offset, first_offset + i as u64);
            writer.add_document(doc).map_err(Error::internal)?;
        }
        Ok(())
    }

    /// Makes everything added so far durable and searchable, recording `watermark` with it.
    pub fn commit(&self, watermark: &Watermark) -> Result<()> {
        let mut writer = self.writer.lock();
        let mut prepared = writer.prepare_commit().map_err(Error::internal)?;
        prepared.set_payload(&serde_json::to_string(watermark).map_err(Error::internal)?);
        prepared.commit().map_err(Error::internal)?;
        drop(writer);
        self.reader.reload().map_err(Error::internal)
    }

    /// The exact number of matches and the best `k` as (score, address), from one searcher
    /// snapshot that the caller keeps to load the documents it finally returns. Stored documents
    /// are not loaded here: a merge over partitions discards most candidates, and each load
    /// decompresses a store block.
    pub fn top(&self, query: &dyn Query, k: usize) -> Result<TopHits> {
        let searcher = self.reader.searcher();
        let cheap_count = query.as_any().is::<TermQuery>() || query.as_any().is::<AllQuery>();
        let (total, top) = if k == 0 {
            (query.count(&searcher).map_err(Error::internal)?, Vec::new())
        } else if cheap_count {
            // A term's count comes from its document frequency, and a top-k alone lets Tantivy
            // skip blocks that cannot reach the top (block-max WAND): two passes beat one
            // collector that would score every match.
            let total = query.count(&searcher).map_err(Error::internal)?;
            let top = searcher
                .search(query, &TopDocs::with_limit(k).order_by_score())
                .map_err(Error::internal)?;
            (total, top)
        } else {
            // Phrases and boolean queries cost the same to count as to score: one pass.
            let collector = (Count, TopDocs::with_limit(k).order_by_score());
            searcher
                .search(query, &collector)
                .map_err(Error::internal)?
        };
        // Documents with equal scores are ranked by Tantivy in index order, which depends on
        // how segments merged: two replicas (or a replica and a single node) could cut a tie
        // at k differently. When the k-th score ties with one just below the cut, rank again
        // with the merge's own tie rule (lowest offset first), so every copy returns the same.
        let top = if k > 0 && top.len() == k && self.tie_at_cut(&searcher, query, k, &top)? {
            self.top_breaking_ties_by_offset(&searcher, query, k)?
        } else {
            top
        };
        Ok(TopHits {
            searcher,
            total: total as u64,
            hits: top,
        })
    }

    /// Whether a document outside the top `k` has the k-th score.
    fn tie_at_cut(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        k: usize,
        top: &[(Score, DocAddress)],
    ) -> Result<bool> {
        let kth = top[k - 1].0;
        let next = searcher
            .search(
                query,
                &TopDocs::with_limit(1).and_offset(k).order_by_score(),
            )
            .map_err(Error::internal)?;
        Ok(next.first().is_some_and(|(score, _)| *score == kth))
    }

    /// The best `k` by score, ties by lowest `_offset`.
    fn top_breaking_ties_by_offset(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        k: usize,
    ) -> Result<Vec<(Score, DocAddress)>> {
        let collector = TopDocs::with_limit(k).tweak_score(|segment: &SegmentReader| {
            let offsets = segment.fast_fields().u64("_offset").ok();
            move |doc: DocId, score: Score| {
                let offset = offsets
                    .as_ref()
                    .and_then(|c| c.first(doc))
                    .unwrap_or(u64::MAX);
                (score, Reverse(offset))
            }
        });
        let top = searcher
            .search(query, &collector)
            .map_err(Error::internal)?;
        Ok(top
            .into_iter()
            .map(|((score, _), address)| (score, address))
            .collect())
    }

    /// The `_offset` of each address, from the fast field (no stored-document load).
    pub fn offsets_of(&self, searcher: &Searcher, addresses: &[DocAddress]) -> Result<Vec<u64>> {
        addresses
            .iter()
            .map(|a| {
                let column = searcher
                    .segment_reader(a.segment_ord)
                    .fast_fields()
                    .u64("_offset")
                    .map_err(Error::internal)?;
                column
                    .first(a.doc_id)
                    .ok_or_else(|| Error::internal("document without _offset"))
            })
            .collect()
    }

    /// The committed records at `offsets` (those not yet committed are left out).
    pub fn records_at(&self, offsets: &[u64]) -> Result<Vec<(u64, LogRecord)>> {
        let searcher = self.reader.searcher();
        let mut found = Vec::with_capacity(offsets.len());
        for &offset in offsets {
            let term = tantivy::Term::from_field_u64(self.fields.offset, offset);
            let query = TermQuery::new(term, IndexRecordOption::Basic);
            let top = searcher
                .search(&query, &TopDocs::with_limit(1).order_by_score())
                .map_err(Error::internal)?;
            if let Some((score, address)) = top.first() {
                let hit = self.load_hit(&searcher, *score, *address)?;
                found.push((offset, hit.record));
            }
        }
        Ok(found)
    }

    /// Loads the stored document at `address` of `searcher`'s snapshot.
    pub fn load_hit(
        &self,
        searcher: &Searcher,
        score: f32,
        address: DocAddress,
    ) -> Result<TextHit> {
        let doc: TantivyDocument = searcher.doc(address).map_err(Error::internal)?;
        let f = &self.fields;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let record = LogRecord {
            timestamp: doc
                .get_first(f.timestamp)
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            label: text(f.label),
            host: text(f.host),
            location: text(f.location),
            component: text(f.component),
            pid: doc.get_first(f.pid).and_then(|v| v.as_i64()),
            level: doc
                .get_first(f.level)
                .and_then(|v| v.as_str())
                .map(str::to_string),
            message: text(f.message),
        };
        let offset = doc
            .get_first(f.offset)
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        Ok(TextHit {
            score,
            offset,
            record,
        })
    }
}
