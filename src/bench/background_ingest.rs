//! Writes going on while a task's queries run (SV-3's "ingest during queries"): marked
//! batches at a set rate, spread over the nodes; at the end every acknowledged record must be
//! held by every node.

use std::time::Duration;

use super::marked_writes::{MarkedWriter, WriterPlan, await_held, next_free_seq};
use super::record::AssertionResult;

/// What marks the records this writes, so they are counted apart from the dataset.
const LOCATION: &str = "ingest-during-queries";

pub struct BackgroundIngest {
    writer: MarkedWriter,
    targets: Vec<String>,
    topic: String,
}

impl BackgroundIngest {
    /// Starts writing `rate` records per second into `topic`, rotating over `targets`, after
    /// the records an earlier run of the task wrote.
    pub async fn start(
        client: &reqwest::Client,
        targets: &[String],
        topic: &str,
        rate: f64,
    ) -> Self {
        let first = next_free_seq(client, &targets[0], topic, LOCATION)
            .await
            .unwrap_or(0);
        let writer = MarkedWriter::start(
            client,
            WriterPlan {
                targets: targets.to_vec(),
                topic: topic.to_string(),
                location: LOCATION.into(),
                rate: Some(rate),
                first,
            },
        );
        BackgroundIngest {
            writer,
            targets: targets.to_vec(),
            topic: topic.to_string(),
        }
    }

    /// Stops writing, waits until every node holds every acknowledged record (up to 60 s),
    /// and says how it went: the rate reached, failed batches, records missing per node.
    pub async fn finish(self, client: &reqwest::Client) -> AssertionResult {
        let (tally, took) = self.writer.stop().await;
        let secs = took.as_secs_f64();
        let acknowledged = tally.acknowledged_records();
        let (worst, missing) = await_held(
            client,
            &self.targets,
            &self.topic,
            LOCATION,
            &tally.acked,
            Duration::from_secs(60),
        )
        .await;
        AssertionResult {
            name: "writes during the task acknowledged and held on every node".into(),
            passed: tally.failed == 0 && worst == 0 && acknowledged > 0,
            detail: format!(
                "{acknowledged} records acknowledged in {secs:.1} s ({:.0}/s), {} of {} batches failed; records missing per node (none = no answer): {missing:?}",
                acknowledged as f64 / secs.max(1e-9),
                tally.failed,
                tally.batches,
            ),
        }
    }
}
