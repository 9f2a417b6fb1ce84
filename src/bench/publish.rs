//! A `--target` run's record stored on the nodes of the target's cluster, so every node's
//! `/report/` shows it.

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
