//! What a run against nodes it did not start does to them: stores its record on every member
//! of the targets' cluster (so every node's `/report/` shows it), and empties their
//! query-embedding caches before a phase that times cache misses.

use super::record::RunRecord;

/// After a `--target` run, stores its record on every member of the targets' cluster, so each
/// node's `/report/` shows it. The nodes take it on their token-protected raft port, so this
/// needs the cluster token: `token`, read from the hosts over ssh (`--nodes`), else
/// `SV_CLUSTER_TOKEN`; without either the run stays on this machine.
pub async fn publish_to_targets(targets: &[String], token: Option<String>, record: &RunRecord) {
    let Some(token) = token.or_else(|| std::env::var("SV_CLUSTER_TOKEN").ok()) else {
        println!(
            "run kept on this machine; to show it on every node's /report/ too, set SV_CLUSTER_TOKEN to the cluster token (token = … in a node's /etc/sv-appliance/node.toml), or give the hosts with --nodes"
        );
        return;
    };
    let client = super::http_client();
    let status = match super::get(&client, &format!("{}/_cluster/status", targets[0])).await {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
        Err(e) => {
            println!("run not published to the nodes: {e}");
            return;
        }
    };
    let members: Vec<(String, String)> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["raft"].as_str())
        .map(|raft| (format!("http://{raft}"), token.clone()))
        .collect();
    if members.is_empty() {
        println!(
            "run not published: {} reports no cluster members (a standalone node has no raft port to take it)",
            targets[0]
        );
        return;
    }
    let failures = crate::report::publish::publish_run(&client, &members, record).await;
    println!(
        "run published to {} of {} nodes (http://<node>/report/)",
        members.len() - failures.len(),
        members.len()
    );
    for failure in failures {
        println!("  not stored: {failure}");
    }
}

/// Empties the query-embedding cache of every target (`DELETE /_embedding_cache`, with the
/// cluster token when known: from `--nodes`, else `SV_CLUSTER_TOKEN`). A node that refuses is
/// named; the phase then runs anyway and its cache-miss checks say why they fail.
pub async fn clear_embedding_caches(
    client: &reqwest::Client,
    targets: &[String],
    token: Option<String>,
) {
    let token = token.or_else(|| std::env::var("SV_CLUSTER_TOKEN").ok());
    for target in targets {
        let mut request = client.delete(format!("{target}/_embedding_cache"));
        if let Some(token) = &token {
            request = request.header(crate::cluster::network::TOKEN_HEADER, token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                println!(
                    "  warning: {target} kept its query-embedding cache (HTTP {status}: {body}); cache misses cannot be timed there"
                );
            }
            Err(e) => println!("  warning: {target}: cannot clear its embedding cache: {e}"),
        }
    }
}
