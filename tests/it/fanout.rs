//! Replication factor 1 on three real node processes: each node holds two of the six
//! partitions, so every query fans out. Text, SQL (the plan's aggregates), exact vector search
//! and hybrid search through each node must equal a single node holding the same records;
//! with a node SIGKILLed the answers are partial and name the missing partitions; after a
//! restart they are complete again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::{Down, all_led, api, cluster, cluster_with_env, nodes, wait_until};
use crate::support::{ServerProcess, post_json, ureq_get};

const RECORDS: u64 = 3_000;

fn record(seq: u64) -> Value {
    let messages = [
        "kernel panic: disk sector error on device sda",
        "session opened for user root",
        "ib_sm port state change detected",
        "disk sector error on device sdb",
        "pbs_mom job started on node",
    ];
    json!({
        "timestamp": 1131566461 + (seq / 7) as i64,
        "label": if seq.is_multiple_of(13) { "KERNDTLB" } else { "-" },
        "host": format!("cn{}", seq % 97),
        "location": format!("cn{0}/cn{0}", seq % 97),
        "component": "kernel",
        "pid": seq % 1000,
        "message": format!("{} seq{seq}", messages[(seq % 5) as usize]),
    })
}

fn load(base: &str) {
    let (code, body) = post_json(
        &format!("{base}/topics"),
        &json!({ "name": "tb", "partitions": 6 }),
    );
    assert!(code == 201 || code == 200, "{body}");
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(500) {
        let records: Vec<Value> = chunk.iter().map(|&s| record(s)).collect();
        let (code, body) = post_json(
            &format!("{base}/topics/tb/records"),
            &json!({ "records": records }),
        );
        assert_eq!(code, 200, "write: {body}");
    }
}

/// `/topics/tb` counts every record searchable, and every vector is indexed.
fn wait_complete(base: &str) {
    wait_until("all records searchable", Duration::from_secs(60), || {
        let (_, t) = ureq_get(&format!("{base}/topics/tb")).unwrap();
        t["searchable"] == RECORDS && t["index_lag"] == 0
    });
    // Vector stats cover this node's partitions: every one embedded and indexed.
    wait_until("all vectors indexed", Duration::from_secs(120), || {
        let (_, v) = ureq_get(&format!("{base}/_vector/tb/stats")).unwrap();
        v["pending"] == 0 && v["loading"] == false
    });
}

fn sql(base: &str, query: &str) -> Value {
    let (code, body) = post_json(&format!("{base}/_sql"), &json!({ "query": query }));
    assert_eq!(code, 200, "{query}: {body}");
    body
}

fn search(base: &str, q: &str, size: usize) -> Value {
    let (code, body) = post_json(
        &format!("{base}/tb/_search"),
        &json!({ "q": q, "size": size }),
    );
    assert_eq!(code, 200, "{q}: {body}");
    body
}

fn ids(hits: &Value) -> Vec<(String, String)> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["_id"].as_str().unwrap().to_string(),
                h["_score"].to_string(),
            )
        })
        .collect()
}

fn vector_keys(body: &Value) -> Vec<(u64, u64)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(|r| {
            (
                r["partition"].as_u64().unwrap(),
                r["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) AS n FROM tb",
    "SELECT SUM(pid) AS s, MIN(timestamp) AS lo, MAX(timestamp) AS hi, AVG(pid) AS a FROM tb",
    "SELECT host, COUNT(*) AS n, SUM(pid) AS s FROM tb GROUP BY host ORDER BY host",
    "SELECT label, COUNT(*) AS n, AVG(pid) AS a FROM tb GROUP BY label ORDER BY label",
    "SELECT COUNT(DISTINCT host) AS hosts FROM tb WHERE label <> '-'",
    "SELECT _partition, COUNT(*) AS n FROM tb GROUP BY _partition ORDER BY _partition",
    "SELECT host, pid, _offset FROM tb WHERE pid < 5 ORDER BY _partition, _offset",
    "SELECT COUNT(*) AS n FROM tb_hot",
    // Aggregates computed partly on the owners and combined here.
    "SELECT host, MIN(pid) AS lo, MAX(pid) AS hi, COUNT(pid) AS c FROM tb WHERE pid >= 500 GROUP BY host HAVING COUNT(*) > 5 ORDER BY host LIMIT 10",
    "SELECT label, AVG(pid) AS a FROM tb WHERE pid IS NULL OR label = 'KERNDTLB' GROUP BY label ORDER BY label",
    "SELECT COUNT(*) AS n, SUM(pid) AS s, AVG(pid) AS a, MIN(host) AS h FROM tb WHERE host = 'none'",
    "SELECT x.host, COUNT(*) AS n FROM tb AS x GROUP BY x.host ORDER BY n DESC, x.host LIMIT 5",
    "SELECT label, COUNT(*) AS n FROM tb_hot GROUP BY label ORDER BY label",
];

#[test]
fn replication_factor_one_fans_out_and_names_missing_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    // The reference: one node with the same six partitions and records.
    let single = ServerProcess::start(
        &tmp.path().join("single"),
        &[("SV_EMBEDDING_PROVIDER", "hashing")],
    );
    load(&single.base);
    wait_complete(&single.base);

    let dir = tmp.path().join("cluster");
    let out = cluster(
        &dir,
        &[
            "up",
            "--local",
            "3",
            "--replication-factor",
            "1",
            "--timeout",
            "60",
        ],
    );
    let _down = Down(&dir);
    let bases: Vec<String> = nodes(&dir).iter().map(api).collect();
    load(&bases[1]);
    wait_until("all partitions led", Duration::from_secs(10), || {
        all_led(&bases[0], "tb", 6, &[1, 2, 3])
    });
    for base in &bases {
        wait_complete(base);
    }
    // Each node holds two partitions: the topic's counts come from all three.
    let (_, t) = ureq_get(&format!("{}/topics/tb", bases[0])).unwrap();
    assert_eq!(t["partitions"].as_array().unwrap().len(), 6, "{t}");
    assert_eq!(t["_shards"]["failed"], 0, "{t}");
    assert!(out.contains("formed"), "{out}");

    for base in &bases {
        for q in ["kernel panic", "sdb", "seq42", "*"] {
            let want = search(&single.base, q, 20);
            let got = search(base, q, 20);
            assert_eq!(
                got["hits"]["total"], want["hits"]["total"],
                "{q} via {base}"
            );
            assert_eq!(ids(&got["hits"]["hits"]), ids(&want["hits"]["hits"]), "{q}");
            assert_eq!(got["_shards"]["total"], 6, "{got}");
            assert_eq!(got["_shards"]["failed"], 0, "{got}");
        }
        for query in QUERIES {
            let want = sql(&single.base, query);
            let got = sql(base, query);
            assert_eq!(got["rows"], want["rows"], "{query} via {base}");
            assert_eq!(got["columns"], want["columns"], "{query} via {base}");
            assert_eq!(got["_shards"]["failed"], 0, "{query}: {got}");
        }
        let exact = json!({ "query": "disk sector error", "k": 10, "exact": true });
        let want = post_json(&format!("{}/_vector/tb/search", single.base), &exact).1;
        let got = post_json(&format!("{base}/_vector/tb/search"), &exact).1;
        assert_eq!(
            vector_keys(&got),
            vector_keys(&want),
            "exact vector via {base}"
        );
        assert_eq!(got["total_vectors"], RECORDS, "{got}");
        assert_eq!(got["_shards"]["failed"], 0, "{got}");
        let hybrid = json!({ "query": "kernel panic", "k": 5 });
        let got = post_json(&format!("{base}/_vector/tb/hybrid"), &hybrid).1;
        assert_eq!(got["count"], 5, "{got}");
        assert_eq!(got["_shards"]["failed"], 0, "{got}");
        assert!(got["results"][0]["text_preview"].is_string(), "{got}");
    }

    // Node 3 holds partitions 2 and 5 (partition p starts at the p-th member). With it dead
    // the others answer from the rest and say which partitions are missing.
    cluster(&dir, &["kill", "3"]);
    let rest = sql(
        &single.base,
        "SELECT COUNT(*) AS n FROM tb WHERE _partition NOT IN (2, 5)",
    )["rows"][0]["n"]
        .clone();
    let missing = |shards: &Value| -> Vec<u64> {
        shards["failures"]
            .as_array()
            .map(|fs| fs.iter().filter_map(|f| f["shard"].as_u64()).collect())
            .unwrap_or_default()
    };
    for base in &bases[..2] {
        let got = search(base, "*", 10);
        assert_eq!(got["_shards"]["failed"], 2, "{got}");
        assert_eq!(missing(&got["_shards"]), vec![2, 5], "{got}");
        assert_eq!(got["hits"]["total"]["value"], rest, "{got}");
        let got = sql(base, "SELECT COUNT(*) AS n FROM tb");
        assert_eq!(got["rows"][0]["n"], rest, "{got}");
        assert_eq!(missing(&got["_shards"]), vec![2, 5], "{got}");
        let got = post_json(
            &format!("{base}/_vector/tb/hybrid"),
            &json!({ "query": "kernel panic", "k": 5 }),
        )
        .1;
        assert_eq!(missing(&got["_shards"]), vec![2, 5], "{got}");
        let (_, t) = ureq_get(&format!("{base}/topics/tb")).unwrap();
        assert_eq!(missing(&t["_shards"]), vec![2, 5], "{t}");
    }

    // Back: complete again everywhere.
    cluster(&dir, &["restart", "3", "--timeout", "60"]);
    for base in &bases {
        let got = sql(base, "SELECT COUNT(*) AS n FROM tb");
        assert_eq!(got["rows"][0]["n"], RECORDS, "{got}");
        assert_eq!(got["_shards"]["failed"], 0, "{got}");
    }
}

/// Replication factor 2 with a node dead: every partition still has a live replica, so a read
/// sent to the dead one is retried on the other and the answer is complete. (Reads skip the
/// leader check here: a two-replica group that lost one has no majority to confirm with.)
#[test]
fn replication_factor_two_retries_a_dead_replica_on_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    cluster_with_env(
        &dir,
        &["up", "--local", "3", "--replication-factor", "2"],
        &[("SV_QUERY_READ_FRESHNESS", "local")],
    );
    let _down = Down(&dir);
    let bases: Vec<String> = nodes(&dir).iter().map(api).collect();
    load(&bases[0]);
    for base in &bases {
        wait_complete(base);
    }
    // Node 3 holds partitions 1, 2, 4 and 5; node 1 reads 1 and 4 from node 2 or node 3.
    cluster(&dir, &["kill", "3"]);
    let want = sql(&bases[0], "SELECT COUNT(*) AS n FROM tb");
    assert_eq!(want["rows"][0]["n"], RECORDS, "{want}");
    for round in 0..4 {
        let got = search(&bases[0], "*", 10);
        assert_eq!(
            got["hits"]["total"]["value"], RECORDS,
            "round {round}: {got}"
        );
        assert_eq!(got["_shards"]["failed"], 0, "round {round}: {got}");
        let got = sql(
            &bases[0],
            "SELECT label, COUNT(*) AS n FROM tb GROUP BY label",
        );
        assert_eq!(got["_shards"]["failed"], 0, "round {round}: {got}");
    }
    // The dead replica was tried and the read went to the other one.
    let (_, metrics) = crate::support::get_text(&format!("{}/metrics", bases[0]));
    let retried = metrics
        .lines()
        .find(|l| l.starts_with("sv_fanout_failures_total"))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        retried >= 1.0,
        "no failed peer call was retried:\n{metrics}"
    );
}
