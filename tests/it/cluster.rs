//! A three-node cluster of real processes started by `sv-appliance cluster up --local 3`:
//! formation, reading one's writes on any node, a partition leader SIGKILLed during a load,
//! queries on the survivors, restart and catch-up, a wiped node rejoining and rebuilt from
//! the leaders' logs, and the token on the raft port.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{binary, post_json, sql_count, ureq_get};

/// Runs `sv-appliance cluster ARGS --dir DIR`; panics with its output unless it succeeds.
pub(crate) fn cluster(dir: &Path, args: &[&str]) -> String {
    cluster_with_env(dir, args, &[])
}

/// [`cluster`] with extra environment for the command and the nodes it starts.
pub(crate) fn cluster_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(binary())
        .arg("cluster")
        .args(args)
        .arg("--dir")
        .arg(dir)
        // Cheap embeddings keep three nodes' indexers from starving the test on 2 cores.
        .env("SV_EMBEDDING_PROVIDER", "hashing")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run sv-appliance cluster");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cluster {args:?} failed:\n{text}");
    text
}

/// Stops the cluster's processes when the test ends, pass or fail.
pub(crate) struct Down<'a>(pub(crate) &'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new(binary())
            .args(["cluster", "down", "--dir"])
            .arg(self.0)
            .output();
    }
}

pub(crate) fn nodes(dir: &Path) -> Vec<Value> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cluster.json")).unwrap()).unwrap();
    state["nodes"].as_array().unwrap().clone()
}

pub(crate) fn api(node: &Value) -> String {
    format!("http://{}", node["api"].as_str().unwrap())
}

pub(crate) fn status(base: &str) -> Value {
    let (code, body) = ureq_get(&format!("{base}/_cluster/status")).expect("status");
    assert_eq!(code, 200, "{body}");
    body
}

fn leader_of(status: &Value, group: &str) -> Option<u64> {
    status["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)?["leader"]
        .as_u64()
}

/// Every group of `topic` (and meta) has a leader among `alive`, as seen from `base`.
pub(crate) fn all_led(base: &str, topic: &str, partitions: u32, alive: &[u64]) -> bool {
    let s = status(base);
    std::iter::once("meta".to_string())
        .chain((0..partitions).map(|p| format!("{topic}/{p}")))
        .all(|g| leader_of(&s, &g).is_some_and(|l| alive.contains(&l)))
}

fn record(seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + (seq / 50) as i64,
        "label": if seq.is_multiple_of(10) { "KERNDTLB" } else { "-" },
        "host": format!("cn{}", seq % 89),
        "location": format!("cn{0}/cn{0}", seq % 89),
        "component": "kernel",
        "pid": seq,
        "message": format!("disk sector error on device sda seq{seq}"),
    })
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(base: &str) -> i64 {
    sql_count(base, "SELECT COUNT(*) FROM tb")
}

#[test]
fn three_nodes_replicate_fail_over_and_recover_without_losing_acknowledged_writes() {
    let tmp = tempfile::tempdir().unwrap();
    // SV_TEST_KEEP=1 keeps the node logs for a look after a failure.
    let root = match std::env::var("SV_TEST_KEEP") {
        Ok(_) => tmp.keep(),
        Err(_) => tmp.path().to_path_buf(),
    };
    let dir = root.join("cluster");
    let out = cluster(&dir, &["up", "--local", "3", "--timeout", "60"]);
    let _down = Down(&dir);
    assert!(out.contains("formed"), "{out}");
    let ns = nodes(&dir);
    let bases: Vec<String> = ns.iter().map(api).collect();

    // Formation: a topic created on node 2 has leaders for all six partitions within 5 s,
    // spread over the three nodes.
    let started = Instant::now();
    let (code, body) = post_json(&format!("{}/topics", bases[1]), &json!({ "name": "tb" }));
    assert_eq!(code, 201, "{body}");
    wait_until("all partitions led", Duration::from_secs(5), || {
        all_led(&bases[0], "tb", 6, &[1, 2, 3])
    });
    eprintln!("topic groups formed in {:?}", started.elapsed());
    let s = status(&bases[0]);
    let mut leaders: Vec<u64> = (0..6)
        .filter_map(|p| leader_of(&s, &format!("tb/{p}")))
        .collect();
    leaders.sort_unstable();
    leaders.dedup();
    assert!(leaders.len() >= 2, "leaders not spread: {s}");

    // Read your writes on any node: a batch acknowledged by one node is counted by SQL on
    // the next one at once, whichever partitions it leads (a follower waits for its replicas
    // to reach their leaders' applied counts), and the answer says it is complete.
    let (code, body) = post_json(&format!("{}/topics", bases[0]), &json!({ "name": "ryw" }));
    assert_eq!(code, 201, "{body}");
    wait_until("ryw partitions led", Duration::from_secs(5), || {
        all_led(&bases[0], "ryw", 6, &[1, 2, 3])
    });
    let mut written = 0;
    for round in 0..12u64 {
        let records: Vec<Value> = (round * 50..round * 50 + 50).map(record).collect();
        let (code, body) = post_json(
            &format!("{}/topics/ryw/records", bases[round as usize % 3]),
            &json!({ "records": records }),
        );
        assert_eq!(code, 200, "{body}");
        written += 50;
        let reader = &bases[(round as usize + 1) % 3];
        let (code, answer) = post_json(
            &format!("{reader}/_sql"),
            &json!({ "query": "SELECT COUNT(*) AS n FROM ryw" }),
        );
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["rows"][0]["n"], written, "round {round}: {answer}");
        assert_eq!(answer["_shards"]["failed"], 0, "{answer}");
        assert_eq!(answer["_shards"]["total"], 6, "{answer}");
    }

    // Raft port without the token: refused.
    let raft = ns[0]["raft"].as_str().unwrap();
    let (code, body) = post_json(
        &format!("http://{raft}/internal/write"),
        &json!({ "topic": "tb", "partition": 0, "records": [record(0)] }),
    );
    assert_eq!(code, 401, "{body}");

    // Continuous load through node 3 while the leader of partition 0 is SIGKILLed.
    let victim = leader_of(&s, "tb/0").unwrap();
    let coordinator = ns
        .iter()
        .position(|n| n["id"].as_u64() != Some(victim))
        .unwrap();
    let coord = bases[coordinator].clone();
    let acked = Arc::new(AtomicU64::new(0));
    let ambiguous = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (acked, ambiguous, stop, next, coord) = (
                acked.clone(),
                ambiguous.clone(),
                stop.clone(),
                next.clone(),
                coord.clone(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = next.fetch_add(300, Ordering::Relaxed);
                    let records: Vec<Value> = (start..start + 300).map(record).collect();
                    let r = client
                        .post(format!("{coord}/topics/tb/records"))
                        .json(&json!({ "records": records }))
                        .timeout(Duration::from_secs(60))
                        .send();
                    match r {
                        Ok(r) if r.status().is_success() => {
                            acked.fetch_add(300, Ordering::Relaxed);
                        }
                        // Not acknowledged: some partitions of the batch may have committed.
                        _ => ambiguous.lock().unwrap().push(start),
                    }
                }
            })
        })
        .collect();
    wait_until("load under way", Duration::from_secs(30), || {
        acked.load(Ordering::Relaxed) >= 6000
    });
    cluster(&dir, &["kill", &victim.to_string()]);
    let killed_at = Instant::now();
    let alive: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != victim).collect();
    wait_until("new leaders", Duration::from_secs(10), || {
        all_led(&coord, "tb", 6, &alive)
    });
    let failover = killed_at.elapsed();
    eprintln!("every group led by a survivor {failover:?} after SIGKILL of node {victim}");
    let acked_at_kill = acked.load(Ordering::Relaxed);
    wait_until(
        "writes continue after failover",
        Duration::from_secs(20),
        || acked.load(Ordering::Relaxed) >= acked_at_kill + 3000,
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.load(Ordering::Relaxed) as i64;
    let ambiguous = ambiguous.lock().unwrap().len() as i64 * 300;
    eprintln!("acknowledged {acked} records, {ambiguous} in failed requests");

    // Survivors: every acknowledged record exactly once, on both.
    let survivors: Vec<String> = ns
        .iter()
        .filter(|n| n["id"].as_u64() != Some(victim))
        .map(api)
        .collect();
    // The coordinator follows most partitions and learns of the last commits a heartbeat
    // later: wait until what it sees stops moving.
    let mut expected = count(&coord);
    wait_until("coordinator settled", Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(400));
        let now = count(&coord);
        let settled = now == expected && now >= acked;
        expected = now;
        settled
    });
    assert!(
        expected >= acked && expected <= acked + ambiguous,
        "count {expected} vs acknowledged {acked} (+{ambiguous} unacknowledged)"
    );
    let distinct = sql_count(&coord, "SELECT COUNT(DISTINCT pid) FROM tb");
    assert_eq!(distinct, expected, "duplicates after failover");
    for base in &survivors {
        wait_until("survivors agree", Duration::from_secs(10), || {
            count(base) == expected
        });
    }

    // Availability: text, SQL, vector and hybrid on the survivors are complete.
    for base in &survivors {
        wait_until("searchable", Duration::from_secs(20), || {
            let (_, b) = post_json(
                &format!("{base}/tb/_search"),
                &json!({ "query": { "match_all": {} }, "size": 0 }),
            );
            b["hits"]["total"]["value"].as_i64() == Some(expected)
        });
    }
    for base in &survivors {
        let (code, b) = post_json(
            &format!("{base}/tb/_search"),
            &json!({ "query": { "match": { "message": "sector" } }, "size": 5 }),
        );
        assert_eq!(code, 200, "{b}");
        assert_eq!(b["_shards"]["failed"], 0, "{b}");
        assert_eq!(b["_shards"]["total"], 6, "{b}");
        assert_eq!(b["hits"]["total"]["value"].as_i64(), Some(expected), "{b}");
        let alerts = sql_count(base, "SELECT COUNT(*) FROM tb WHERE alert");
        assert_eq!(
            alerts,
            sql_count(&coord, "SELECT COUNT(*) FROM tb WHERE label <> '-'")
        );
        let (code, v) = post_json(
            &format!("{base}/_vector/tb/search"),
            &json!({ "query": "disk sector error", "k": 5 }),
        );
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["results"].as_array().map(|r| r.len()), Some(5), "{v}");
        let (code, h) = post_json(
            &format!("{base}/_vector/tb/hybrid"),
            &json!({ "query": "disk sector error", "k": 5 }),
        );
        assert_eq!(code, 200, "{h}");
        assert_eq!(h["results"].as_array().map(|r| r.len()), Some(5), "{h}");
    }

    // Recovery: the killed node restarts and catches up to the same count.
    let out = cluster(&dir, &["restart", &victim.to_string()]);
    assert!(out.contains("caught up"), "{out}");
    let victim_base = api(&ns[(victim - 1) as usize]);
    wait_until("restarted node caught up", Duration::from_secs(30), || {
        count(&victim_base) == expected
    });

    // A wiped node rejoins: each group's leader removes it, adds it back as a learner that
    // receives the whole log, and promotes it. Writes made while it was gone reach it too.
    let wiped = alive[0];
    cluster(&dir, &["kill", &wiped.to_string()]);
    std::fs::remove_dir_all(dir.join(format!("node{wiped}")).join("data")).unwrap();
    let remaining: Vec<String> = ns
        .iter()
        .filter(|n| n["id"].as_u64() != Some(wiped))
        .map(api)
        .collect();
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != wiped).collect();
    // Writes wait for the survivors to lead every group: one forwarded to the node just
    // killed would be answered "may or may not have been committed".
    wait_until(
        "survivors lead every group",
        Duration::from_secs(10),
        || all_led(&remaining[0], "tb", 6, &survivors),
    );
    for base in &remaining {
        let records: Vec<Value> = (900_000..900_100).map(record).collect();
        let (code, body) = post_json(
            &format!("{base}/topics/tb/records"),
            &json!({ "records": records }),
        );
        assert_eq!(code, 200, "{body}");
    }
    let expected = expected + 200;
    let out = cluster(&dir, &["restart", &wiped.to_string(), "--timeout", "120"]);
    assert!(out.contains("formed") || out.contains("caught up"), "{out}");
    let wiped_base = api(&ns[(wiped - 1) as usize]);
    let log = std::fs::read_to_string(dir.join(format!("node{wiped}")).join("node.log")).unwrap();
    assert!(log.contains("rejoined every group"), "{log}");
    for base in ns.iter().map(api) {
        wait_until(
            "every node counts every record",
            Duration::from_secs(30),
            || count(&base) == expected,
        );
    }
    // A voter of every group again, on a log it received from the leaders.
    let s = status(&wiped_base);
    for g in s["groups"].as_array().unwrap() {
        let voters: Vec<u64> = g["voters"]
            .as_array()
            .unwrap_or_else(|| panic!("no voters: {g}"))
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert!(voters.contains(&wiped), "{g}");
    }
    let (_, t) = ureq_get(&format!("{wiped_base}/topics/tb")).unwrap();
    assert_eq!(t["records"], expected, "{t}");
    for n in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("node{n}")).join("node.log")).unwrap();
        assert!(!log.contains("panicked"), "node {n} panicked:\n{log}");
    }
}
