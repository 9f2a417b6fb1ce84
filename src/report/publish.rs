//! Sends a run record to nodes (`PUT /internal/runs/{id}` on their raft ports, with the cluster
//! token), so every node's `/report/` shows the run. The harness calls it; a node that cannot
//! be reached costs a line in the returned failures, never the run.

use std::time::Duration;

use futures::future::join_all;

use super::html::url_segment;
use super::store;
use crate::bench::record::RunRecord;
use crate::cluster::network::TOKEN_HEADER;

/// Per node: a record of a few MiB on loopback or a LAN takes well under this.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// PUTs `record` to every `(internal base URL, cluster token)` in `targets` at once, e.g.
/// `("http://127.0.0.1:7092", token)`. Returns one message per node that did not store it
/// (unreachable, refused, timed out); empty when all did.
pub async fn publish_run(
    client: &reqwest::Client,
    targets: &[(String, String)],
    record: &RunRecord,
) -> Vec<String> {
    // Shared by every request instead of copied per node.
    let body = match store::record_json(record) {
        Ok(body) => bytes::Bytes::from(body),
        Err(e) => return vec![format!("run {}: {e}", record.id)],
    };
    let path = format!("/internal/runs/{}", url_segment(&record.id));
    let puts = targets.iter().map(|(base, token)| {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let request = client
            .put(&url)
            .header(TOKEN_HEADER, token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(PUT_TIMEOUT)
            .body(body.clone());
        async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    Some(format!("{url}: HTTP {status}: {}", text.trim()))
                }
                Err(e) => Some(format!("{url}: {e}")),
            }
        }
    });
    join_all(puts).await.into_iter().flatten().collect()
}
