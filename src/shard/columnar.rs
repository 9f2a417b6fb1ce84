//! A partition's columnar data: recent records in Arrow (the `_hot` table), older ones in
//! zstd Parquet files with row-group statistics (the `_cold` table), both read by DataFusion.
//!
//! The hot buffer is memory only. A flush writes the oldest hot batches to a Parquet file,
//! fsyncs it, then atomically rewrites `manifest.json` (the list of files and the [`Watermark`]
//! they cover) and only then drops those batches from memory. A file missing from the manifest
//! is debris of a crash mid-flush and is deleted on open; its records are replayed from the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parking_lot::RwLock;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::cluster::log_store::write_atomically;
use crate::dataset::derive_severity;
use crate::error::{Error, Result};
use crate::record::LogRecord;
use crate::shard::watermark::Watermark;

/// The SQL schema every topic table shares (see ARCHITECTURE.md for the column meanings).
pub fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("_partition", DataType::Int32, false),
        Field::new("_offset", DataType::Int64, false),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("_key", DataType::Utf8, false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("alert", DataType::Boolean, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("host", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("component", DataType::Utf8, false),
        Field::new("pid", DataType::Int64, true),
        Field::new("level", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
    ]))
}

/// Builds the Arrow batch for `records`, the first of which has offset `first_offset`.
pub fn records_to_batch(
    partition: u32,
    first_offset: u64,
    records: &[LogRecord],
) -> Result<RecordBatch> {
    let n = records.len();
    let mut part = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    let mut ts_ms = TimestampMillisecondBuilder::with_capacity(n);
    let mut key = StringBuilder::with_capacity(n, n * 8);
    let mut ts = Int64Builder::with_capacity(n);
    let mut label = StringBuilder::with_capacity(n, n);
    let mut alert = BooleanBuilder::with_capacity(n);
    let mut severity = StringBuilder::with_capacity(n, n * 5);
    let mut host = StringBuilder::with_capacity(n, n * 8);
    let mut location = StringBuilder::with_capacity(n, n * 12);
    let mut component = StringBuilder::with_capacity(n, n * 8);
    let mut pid = Int64Builder::with_capacity(n);
    let mut level = StringBuilder::with_capacity(n, 0);
    let mut message = StringBuilder::with_capacity(n, n * 80);
    for (i, r) in records.iter().enumerate() {
        part.append_value(partition as i32);
        offset.append_value((first_offset + i as u64) as i64);
        ts_ms.append_value(r.timestamp.saturating_mul(1000));
        key.append_value(&r.host);
        ts.append_value(r.timestamp);
        label.append_value(&r.label);
        alert.append_value(r.label != "-");
        severity.append_value(derive_severity(r));
        host.append_value(&r.host);
        location.append_value(&r.location);
        component.append_value(&r.component);
        pid.append_option(r.pid);
        level.append_option(r.level.as_deref());
        message.append_value(&r.message);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(part.finish()),
        Arc::new(offset.finish()),
        Arc::new(ts_ms.finish()),
        Arc::new(key.finish()),
        Arc::new(ts.finish()),
        Arc::new(label.finish()),
        Arc::new(alert.finish()),
        Arc::new(severity.finish()),
        Arc::new(host.finish()),
        Arc::new(location.finish()),
        Arc::new(component.finish()),
        Arc::new(pid.finish()),
        Arc::new(level.finish()),
        Arc::new(message.finish()),
    ];
    RecordBatch::try_new(table_schema(), columns).map_err(Error::internal)
}

/// One Parquet file of the cold table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdFile {
    pub name: String,
    pub first_offset: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    files: Vec<ColdFile>,
    watermark: Watermark,
}

/// Hot batches with the watermark reached after applying each one.
struct HotBatch {
    batch: RecordBatch,
    watermark: Watermark,
}

#[derive(Default)]
struct State {
    hot: Vec<HotBatch>,
    hot_rows: u64,
    cold: Vec<ColdFile>,
    cold_rows: u64,
}

/// A consistent view for one query: hot batches and cold file paths taken under one lock, so a
/// concurrent flush can neither hide nor double-count rows.
pub struct ColumnarSnapshot {
    pub hot: Vec<RecordBatch>,
    pub cold: Vec<PathBuf>,
}

pub struct ColumnarStore {
    dir: PathBuf,
    state: RwLock<State>,
    /// Bumped on every change of the hot or cold set, so readers can cache what they built from
    /// a snapshot until the data moves.
    version: std::sync::atomic::AtomicU64,
    /// Serialises flushes; queries and appends never wait on it.
    flush_lock: parking_lot::Mutex<()>,
}

impl ColumnarStore {
    /// Opens the store in `dir`, returning it and the watermark its files cover.
    pub fn open(dir: &Path) -> Result<(Self, Watermark)> {
        std::fs::create_dir_all(dir)?;
        let manifest: Manifest = match std::fs::read(dir.join("manifest.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Internal(format!(
                    "corrupt columnar manifest in {}: {e}",
                    dir.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(e.into()),
        };
        for item in std::fs::read_dir(dir)? {
            let path = item?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let listed = manifest.files.iter().any(|f| f.name == name);
            if name.ends_with(".parquet") && !listed || name.ends_with(".tmp") {
                tracing::warn!(file = %path.display(), "removing columnar file not in manifest");
                std::fs::remove_file(&path)?;
            }
        }
        let cold_rows = manifest.files.iter().map(|f| f.rows).sum();
        let state = State {
            hot: Vec::new(),
            hot_rows: 0,
            cold: manifest.files,
            cold_rows,
        };
        let store = Self {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            version: Default::default(),
            flush_lock: Default::default(),
        };
        Ok((store, manifest.watermark))
    }

    /// Appends a batch to the hot buffer; `watermark` is the shard state once it is applied.
    pub fn append(&self, batch: RecordBatch, watermark: Watermark) {
        let mut state = self.state.write();
        state.hot_rows += batch.num_rows() as u64;
        state.hot.push(HotBatch { batch, watermark });
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Changes whenever [`ColumnarStore::snapshot`] would return different data. Read it
    /// *before* taking the snapshot: a change in between then only causes a needless rebuild.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn hot_rows(&self) -> u64 {
        self.state.read().hot_rows
    }

    pub fn cold_rows(&self) -> u64 {
        self.state.read().cold_rows
    }

    pub fn snapshot(&self) -> ColumnarSnapshot {
        let state = self.state.read();
        ColumnarSnapshot {
            hot: state.hot.iter().map(|h| h.batch.clone()).collect(),
            cold: state.cold.iter().map(|f| self.dir.join(&f.name)).collect(),
        }
    }

    /// Up to `max_rows` records from `from_offset` on, in offset order, with only the columns
    /// the vector indexer needs (`text_column` is the field it embeds). Empty when nothing at or
    /// after `from_offset` has been applied yet.
    pub fn read_rows(
        &self,
        from_offset: u64,
        max_rows: usize,
        text_column: &str,
    ) -> Result<Vec<SourceRow>> {
        let (cold, hot) = {
            let state = self.state.read();
            let cold = state
                .cold
                .iter()
                .find(|f| f.first_offset <= from_offset && from_offset < f.first_offset + f.rows)
                .cloned();
            let hot: Vec<RecordBatch> = state.hot.iter().map(|h| h.batch.clone()).collect();
            (cold, hot)
        };
        if let Some(file) = cold {
            // The whole request comes from one file; the next call continues in the next one.
            return read_cold_rows(
                &self.dir.join(&file.name),
                (from_offset - file.first_offset) as usize,
                max_rows,
                text_column,
            );
        }
        let mut rows = Vec::new();
        for batch in hot {
            use arrow::array::AsArray;
            let n = batch.num_rows();
            if n == 0 || rows.len() >= max_rows {
                continue;
            }
            let first = batch
                .column(1)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0) as u64;
            if first + n as u64 <= from_offset {
                continue;
            }
            let skip = from_offset.saturating_sub(first) as usize;
            let take = (n - skip).min(max_rows - rows.len());
            extract_rows(&batch.slice(skip, take), text_column, &mut rows)?;
        }
        Ok(rows)
    }

    /// Writes the whole hot buffer to a new Parquet file when it holds at least `min_rows` rows.
    /// Returns the number of rows moved.
    pub fn flush(&self, min_rows: u64) -> Result<u64> {
        let _guard = self.flush_lock.lock();
        let (batches, watermark, rows) = {
            let state = self.state.read();
            if state.hot_rows == 0 || state.hot_rows < min_rows {
                return Ok(0);
            }
            let batches: Vec<RecordBatch> = state.hot.iter().map(|h| h.batch.clone()).collect();
            let watermark = state
                .hot
                .last()
                .map(|h| h.watermark.clone())
                .unwrap_or_default();
            (batches, watermark, state.hot_rows)
        };
        let first_offset = watermark.next_offset - rows;
        let name = format!("part-{first_offset:020}.parquet");
        let path = self.dir.join(&name);
        write_parquet(&path, &batches)?;
        let file = ColdFile {
            name,
            first_offset,
            rows,
        };
        let mut files = self.state.read().cold.clone();
        files.push(file.clone());
        let manifest = Manifest { files, watermark };
        write_atomically(
            &self.dir.join("manifest.json"),
            &serde_json::to_vec(&manifest).map_err(Error::internal)?,
        )?;
        let mut state = self.state.write();
        let moved = batches.len();
        state.hot.drain(..moved);
        state.hot_rows -= rows;
        state.cold.push(file);
        state.cold_rows += rows;
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(rows)
    }
}

/// One record as the vector indexer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub offset: u64,
    pub timestamp: i64,
    pub host: String,
    pub label: String,
    pub text: String,
}

/// Columns a [`SourceRow`] needs besides the embedded text.
const SOURCE_COLUMNS: [&str; 4] = ["_offset", "timestamp", "host", "label"];

/// Text columns that may be embedded (`vector.field`).
pub const EMBEDDABLE_COLUMNS: [&str; 7] = [
    "message",
    "host",
    "location",
    "component",
    "label",
    "severity",
    "level",
];

fn read_cold_rows(
    path: &Path,
    skip: usize,
    max_rows: usize,
    text_column: &str,
) -> Result<Vec<SourceRow>> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(Error::internal)?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| {
            let column = schema.column(i);
            let name = column.name();
            SOURCE_COLUMNS.contains(&name) || name == text_column
        })
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder
        .with_projection(mask)
        .with_offset(skip)
        .with_limit(max_rows)
        .with_batch_size(8192)
        .build()
        .map_err(Error::internal)?;
    let mut rows = Vec::new();
    for batch in reader {
        extract_rows(&batch.map_err(Error::internal)?, text_column, &mut rows)?;
    }
    Ok(rows)
}

fn extract_rows(batch: &RecordBatch, text_column: &str, out: &mut Vec<SourceRow>) -> Result<()> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("columnar batch lacks column {name}")))
    };
    let offsets = column("_offset")?.as_primitive::<Int64Type>();
    let timestamps = column("timestamp")?.as_primitive::<Int64Type>();
    let hosts = column("host")?.as_string::<i32>();
    let labels = column("label")?.as_string::<i32>();
    let texts = column(text_column)?.as_string::<i32>();
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        out.push(SourceRow {
            offset: offsets.value(i) as u64,
            timestamp: timestamps.value(i),
            host: hosts.value(i).to_string(),
            label: labels.value(i).to_string(),
            // `level` is nullable: an absent value embeds as the empty text.
            text: if texts.is_null(i) {
                String::new()
            } else {
                texts.value(i).to_string()
            },
        });
    }
    Ok(())
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(Error::internal)?,
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let file = std::fs::File::create(&tmp)?;
    let mut writer =
        ArrowWriter::try_new(file, table_schema(), Some(props)).map_err(Error::internal)?;
    for batch in batches {
        writer.write(batch).map_err(Error::internal)?;
    }
    let file = writer.into_inner().map_err(Error::internal)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    crate::cluster::log_store::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(())
}
