//! A node added to a running three-node cluster: it joins the metadata group through the
//! leaders, answers queries on the existing topic by fanning out (it holds none of its
//! partitions), and new topics are placed over all four members. Then it is removed again:
//! every group it was in goes on with the other replicas, nothing lost.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Down, api, cluster, nodes, status, wait_until};
use crate::support::{post_json, sql_count};

fn records(topic_seq: u64, n: u64) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "timestamp": 1131566461 + i as i64,
                "label": "-",
                "host": format!("cn{}", i % 41),
                "location": "room1",
                "component": "kernel",
                "pid": topic_seq,
                "message": format!("link state change on port {i}"),
            })
        })
        .collect();
    json!({ "records": records })
}

fn voters(status: &Value, group: &str) -> Vec<u64> {
    status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == group)
        .and_then(|g| g["voters"].as_array())
        .map(|v| v.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[test]
fn a_member_added_to_a_running_cluster_joins_serves_and_is_removed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    cluster(&dir, &["up", "--local", "3", "--timeout", "60"]);
    let _down = Down(&dir);
    let first = api(&nodes(&dir)[0]);
    let (code, body) = post_json(&format!("{first}/topics"), &json!({ "name": "tb" }));
    assert_eq!(code, 201, "{body}");
    let (code, body) = post_json(&format!("{first}/topics/tb/records"), &records(1, 500));
    assert_eq!(code, 200, "{body}");

    let out = cluster(&dir, &["add-member", "--timeout", "60"]);
    assert!(out.contains("node 4 joined"), "{out}");
    let bases: Vec<String> = nodes(&dir).iter().map(api).collect();
    assert_eq!(bases.len(), 4);
    let s = status(&bases[3]);
    assert_eq!(voters(&s, "meta"), vec![1, 2, 3, 4], "{s}");
    assert_eq!(
        voters(&s, "tb/0"),
        vec![1, 2, 3],
        "existing placement kept: {s}"
    );

    // The new node holds no partition of tb: its answers come from the others, complete.
    assert_eq!(sql_count(&bases[3], "SELECT COUNT(*) FROM tb"), 500);
    let (code, found) = post_json(
        &format!("{}/tb/_search", bases[3]),
        &json!({ "q": "link", "size": 3 }),
    );
    assert_eq!(code, 200, "{found}");
    assert_eq!(found["hits"]["total"]["value"], 500, "{found}");
    assert_eq!(found["_shards"]["failed"], 0, "{found}");

    // A topic created now is placed over all four members, the new one included.
    let (code, body) = post_json(
        &format!("{}/topics", bases[3]),
        &json!({ "name": "tb2", "partitions": 4 }),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = post_json(
        &format!("{}/topics/tb2/records", bases[3]),
        &records(2, 400),
    );
    assert_eq!(code, 200, "{body}");
    let s = status(&bases[0]);
    assert!(voters(&s, "tb2/3").contains(&4), "{s}");
    for base in &bases {
        wait_until("tb2 counted everywhere", Duration::from_secs(20), || {
            sql_count(base, "SELECT COUNT(*) FROM tb2") == 400
        });
    }
    let log = |n: u64| std::fs::read_to_string(dir.join(format!("node{n}/node.log"))).unwrap();
    assert!(log(4).contains("joins a running cluster"), "{}", log(4));

    // Removing a member is an admin call: without the cluster token it is refused.
    let refused = reqwest::blocking::Client::new()
        .delete(format!("{}/_cluster/members/4", bases[0]))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    // So is emptying a cluster node's embedding cache.
    let refused = reqwest::blocking::Client::new()
        .delete(format!("{}/_embedding_cache", bases[0]))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let out = cluster(&dir, &["remove-member", "4", "--timeout", "60"]);
    assert!(out.contains("node 4 removed"), "{out}");
    let s = status(&bases[0]);
    assert_eq!(voters(&s, "meta"), vec![1, 2, 3], "{s}");
    assert_eq!(voters(&s, "tb2/3"), vec![1, 2], "{s}");
    // Every partition keeps its other replicas: nothing is lost, every answer complete.
    for base in &bases[..3] {
        assert_eq!(sql_count(base, "SELECT COUNT(*) FROM tb2"), 400);
        assert_eq!(sql_count(base, "SELECT COUNT(*) FROM tb"), 500);
        let (_, found) = post_json(&format!("{base}/tb2/_search"), &json!({ "q": "link" }));
        assert_eq!(found["hits"]["total"]["value"], 400, "{found}");
        assert_eq!(found["_shards"]["failed"], 0, "{found}");
    }
    for n in 1..=4 {
        assert!(!log(n).contains("panicked"), "node {n}:\n{}", log(n));
    }
}
