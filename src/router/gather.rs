//! One read over a topic's partitions wherever they are: the ones held here on this node's
//! replicas, the others on their owners through [`crate::router::fanout`], merged into one
//! answer that names every partition it lacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::cluster::freshness::{FRESHNESS_WAIT, PartitionFailure};
use crate::error::Result;
use crate::node::{Node, Topic};
use crate::record::LogRecord;
use crate::router::fanout::post_peer_json;
use crate::router::remote::{PartitionRead, Read, ReadAnswer, read_local};
use crate::router::retrieve::{Candidate, sort_candidates};
use crate::shard::ShardStats;

/// A read's merged answer.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Best first, cut to the read's `k`.
    pub hits: Vec<Candidate>,
    pub total: u64,
    pub records: HashMap<(u32, u64), LogRecord>,
    pub loading_partitions: Vec<u32>,
    pub stats: Vec<ShardStats>,
    /// Partitions read (answered or not).
    pub partitions: usize,
    /// Partitions missing from the answer or possibly behind their leader.
    pub failures: Vec<PartitionFailure>,
}

/// Runs `read` over `partitions` of `topic`. Local replicas are first brought up to their
/// leaders (text and record reads); owners do the same for theirs. A partition no replica
/// answers for before `deadline` is a failure in the answer, not an error; a query refused
/// by an owner (bad input) is an error.
pub async fn gather(
    node: &Arc<Node>,
    topic: &Arc<Topic>,
    partitions: &[u32],
    read: Read,
    deadline: Instant,
) -> Result<Gathered> {
    let plan = node.plan_reads(topic, partitions);
    // Waiting for stale replicas may use three quarters of the time left, so a replica that
    // cannot be brought up to date is reported instead of timing the read out.
    let fresh_wait =
        (deadline.saturating_duration_since(Instant::now()) * 3 / 4).min(FRESHNESS_WAIT);
    let k = match &read {
        Read::Text { k, .. } | Read::Vector { k, .. } => Some(*k),
        Read::Records { .. } | Read::Stats => None,
    };
    let local_part = async {
        if plan.local.is_empty() {
            return Ok(ReadAnswer::default());
        }
        let read = read.clone();
        read_local(node, topic.clone(), plan.local.clone(), read, fresh_wait).await
    };
    let remote_part = node.fan_out(
        &topic.name,
        &plan.remote,
        deadline,
        |addr, partitions, timeout| {
            let body = PartitionRead {
                topic: topic.name.clone(),
                partitions,
                read: read.clone(),
                fresh_wait_ms: fresh_wait.as_millis() as u64,
            };
            async move {
                post_peer_json::<_, ReadAnswer>(node, &addr, "/internal/read", &body, timeout).await
            }
        },
    );
    let (local, remote) = tokio::join!(local_part, remote_part);
    let (remote_answers, unavailable) = remote?;
    let mut gathered = Gathered {
        partitions: plan.total(),
        failures: unavailable,
        ..Default::default()
    };
    for answer in std::iter::once(local?).chain(remote_answers) {
        gathered.hits.extend(answer.hits);
        gathered.total += answer.total;
        gathered
            .records
            .extend(answer.records.into_iter().map(|(p, o, r)| ((p, o), r)));
        gathered
            .loading_partitions
            .extend(answer.loading_partitions);
        gathered.stats.extend(answer.stats);
        gathered.failures.extend(answer.stale);
    }
    sort_candidates(&mut gathered.hits);
    if let Some(k) = k {
        gathered.hits.truncate(k);
    }
    gathered.loading_partitions.sort_unstable();
    gathered.stats.sort_by_key(|s| s.partition);
    gathered
        .failures
        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(gathered)
}

/// The stored records behind `hits`, wherever their partitions are (one read per owner).
pub async fn records_of(
    node: &Arc<Node>,
    topic: &Arc<Topic>,
    hits: &[Candidate],
    deadline: Instant,
) -> Result<Gathered> {
    let mut partitions: Vec<u32> = hits.iter().map(|h| h.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let offsets = hits.iter().map(|h| (h.partition, h.offset)).collect();
    gather(
        node,
        topic,
        &partitions,
        Read::Records { offsets },
        deadline,
    )
    .await
}
