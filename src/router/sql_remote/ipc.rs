//! The body of an `/internal/scan` answer: an Arrow IPC stream whose schema metadata carries
//! the owner's stale replicas, and its decoding on the coordinator.
//!
//! The stale list travels in the stream's schema, written before any row, rather than in a
//! header: a header has a size limit that a list of reasons over many partitions can pass.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt};

use crate::cluster::freshness::PartitionFailure;

/// Content type of a scan answer.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Schema metadata key: the owner's stale replicas, as a JSON list of `PartitionFailure`.
const STALE_KEY: &str = "sv.stale";
/// The end-of-stream marker an IPC stream writer ends with: a body without it was cut off.
const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Encodes `batches` as an IPC stream, one chunk per batch, the schema (with `stale`) first.
/// A failing batch ends the body without the end marker, so the reader sees a cut stream.
pub fn encode(
    batches: SendableRecordBatchStream,
    stale: &[PartitionFailure],
) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, ArrowError> {
    let mut metadata = HashMap::new();
    metadata.insert(
        STALE_KEY.to_string(),
        serde_json::to_string(stale).map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
    );
    let schema = Schema::new_with_metadata(batches.schema().fields().clone(), metadata);
    let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
    let head = Bytes::from(std::mem::take(writer.get_mut()));
    let rest = futures::stream::unfold(Some((writer, batches)), |state| async move {
        let (mut writer, mut batches) = state?;
        let written = match batches.next().await {
            Some(Ok(batch)) => writer.write(&batch).map(|()| true),
            Some(Err(e)) => Err(ArrowError::ExternalError(Box::new(e))),
            None => writer.finish().map(|()| false),
        };
        match written {
            Ok(more) => {
                let chunk = Bytes::from(std::mem::take(writer.get_mut()));
                Some((Ok(chunk), more.then_some((writer, batches))))
            }
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    Ok(futures::stream::once(async move { Ok(head) }).chain(rest))
}

/// A decoded answer: its batches and the stale replicas the owner named.
#[derive(Debug)]
pub struct Decoded {
    pub batches: Vec<RecordBatch>,
    pub stale: Vec<PartitionFailure>,
}

/// Decodes a whole answer body, checking it is complete and its columns are the `expected`
/// ones; the batches are relabelled with `expected` (the coordinator's schema).
pub fn decode(body: &[u8], expected: &SchemaRef) -> Result<Decoded, String> {
    if !body.ends_with(&END_OF_STREAM) {
        return Err(format!(
            "the scan answer was cut off after {} bytes",
            body.len()
        ));
    }
    let reader = StreamReader::try_new(Cursor::new(body), None)
        .map_err(|e| format!("unreadable scan answer: {e}"))?;
    let stale = match reader.schema().metadata().get(STALE_KEY) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| format!("unreadable stale list in scan answer: {e}"))?,
        None => Vec::new(),
    };
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("unreadable scan answer: {e}"))?;
        let relabelled = RecordBatch::try_new(expected.clone(), batch.columns().to_vec())
            .map_err(|e| format!("scan answer does not match the table: {e}"))?;
        batches.push(relabelled);
    }
    Ok(Decoded { batches, stale })
}

/// The row count of a `count_only` answer: one batch, one non-null Int64 value.
pub fn decode_count(body: &[u8]) -> Result<(u64, Vec<PartitionFailure>), String> {
    let count_schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "n",
        datafusion::arrow::datatypes::DataType::Int64,
        false,
    )]));
    let decoded = decode(body, &count_schema)?;
    let mut total = 0u64;
    for batch in &decoded.batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or("count answer is not an Int64 column")?;
        for i in 0..column.len() {
            total += u64::try_from(column.value(i)).map_err(|_| "negative count answer")?;
        }
    }
    Ok((total, decoded.stale))
}

/// `rows` rows with no columns, in batches of at most `batch_size`: what a scan with an empty
/// projection (`COUNT(*)`) yields, without shipping any row.
pub fn count_batches(rows: u64, batch_size: usize) -> Result<Vec<RecordBatch>, ArrowError> {
    let schema = Arc::new(Schema::empty());
    let batch_size = batch_size.max(1) as u64;
    let mut batches = Vec::new();
    let mut left = rows;
    while left > 0 {
        let n = left.min(batch_size);
        let options = RecordBatchOptions::new().with_row_count(Some(n as usize));
        batches.push(RecordBatch::try_new_with_options(
            schema.clone(),
            Vec::new(),
            &options,
        )?);
        left -= n;
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;
    use crate::cluster::freshness::FailureKind;
    use crate::router::sql_remote::testdata;
    use crate::shard::columnar::table_schema;

    async fn encode_all(
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
        stale: &[PartitionFailure],
    ) -> Vec<u8> {
        let stream = RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        );
        let body = encode(Box::pin(stream), stale).expect("encode");
        let chunks: Vec<Bytes> = body.map(|c| c.expect("chunk")).collect().await;
        chunks.concat()
    }

    /// Batches and the stale list come back as they were sent.
    #[tokio::test]
    async fn ipc_round_trip_keeps_rows_and_stale_list() {
        let batches = vec![testdata::batch(2, 10), testdata::batch(2, 5)];
        let stale = vec![PartitionFailure {
            topic: "logs".into(),
            partition: 2,
            kind: FailureKind::StaleReplica,
            reason: "behind — by 3".into(),
        }];
        let body = encode_all(batches.clone(), table_schema(), &stale).await;
        let decoded = decode(&body, &table_schema()).expect("decode");
        assert_eq!(decoded.batches, batches);
        assert_eq!(decoded.stale.len(), 1);
        assert_eq!(decoded.stale[0].reason, "behind — by 3");
        assert_eq!(decoded.stale[0].kind, FailureKind::StaleReplica);
    }

    /// A body cut anywhere before its end marker is refused, never read as fewer rows.
    #[tokio::test]
    async fn cut_answer_is_refused() {
        let body = encode_all(vec![testdata::batch(0, 50)], table_schema(), &[]).await;
        for cut in [0, 8, body.len() / 2, body.len() - 1] {
            assert!(
                decode(&body[..cut], &table_schema()).is_err(),
                "cut at {cut}"
            );
        }
    }

    /// An answer with other columns than asked is an error, not a mislabelled table.
    #[tokio::test]
    async fn mismatched_columns_are_refused() {
        let body = encode_all(vec![testdata::batch(0, 3)], table_schema(), &[]).await;
        let other = Arc::new(Schema::new(vec![Field::new("host", DataType::Utf8, false)]));
        assert!(decode(&body, &other).is_err());
    }

    /// A count answer sums its values; zero-column batches carry exactly that many rows.
    #[tokio::test]
    async fn count_answer_becomes_zero_column_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![20_000]))],
        )
        .expect("batch");
        let body = encode_all(vec![batch], schema, &[]).await;
        let (rows, stale) = decode_count(&body).expect("count");
        assert_eq!((rows, stale.len()), (20_000, 0));
        let batches = count_batches(rows, 8192).expect("batches");
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![8192, 8192, 3616]);
        assert!(batches.iter().all(|b| b.num_columns() == 0));
        assert!(count_batches(0, 8192).expect("none").is_empty());
    }
}
