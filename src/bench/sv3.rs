//! SV-3: the same generated Thunderbird lines loaded into one node and into a three-node
//! cluster (RF=3) of real processes on this machine; load rate and query latency side by side;
//! then the leader of a partition is SIGKILLed under a continuous load, repeatedly: time until
//! every group has a leader again, failed writes and the worst write latency around the kill,
//! and time until the restarted node has caught up.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{print_header, print_row, summarise, timed};
use crate::cluster::local::LocalCluster;
use crate::dataset::LogFormat;
use crate::demo::{SQL_QUERIES, TEXT_QUERIES};
use crate::error::{Error, Result};
use crate::ingest::loader::{LoadOptions, LoadSummary, load};

pub struct Sv3Options {
    pub lines: u64,
    pub kills: usize,
    pub iterations: usize,
    /// Embedding provider of the nodes (`none` measures replication alone).
    pub provider: String,
}

pub async fn run(options: Sv3Options) -> Result<()> {
    let work = super::scratch_dir("sv3")?;
    println!(
        "SV-3: {} Thunderbird lines; 1 node vs 3 nodes (RF=3) as processes on this machine ({} cores); embedding provider {:?}",
        options.lines,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        options.provider
    );
    if cfg!(debug_assertions) {
        println!("debug build: timings are not benchmarks (build with --release)");
    }
    let file = work.join("thunderbird.log");
    super::generate_file(&file, LogFormat::Thunderbird, options.lines, 7).await?;
    let env = BTreeMap::from([(
        "SV_EMBEDDING_PROVIDER".to_string(),
        options.provider.clone(),
    )]);

    let mut single = start(&work.join("single"), 1, env.clone()).await?;
    let mut three = start(&work.join("three"), 3, env).await?;
    let result = measure(&options, &file, &single, &mut three).await;
    let _ = tokio::task::block_in_place(|| single.down(true));
    let _ = tokio::task::block_in_place(|| three.down(true));
    result
}

async fn start(dir: &Path, n: usize, env: BTreeMap<String, String>) -> Result<LocalCluster> {
    let started = Instant::now();
    let cluster = tokio::task::block_in_place(|| LocalCluster::up_with_env(dir, n, 6, env))?;
    cluster.wait_formed(Duration::from_secs(60)).await?;
    println!(
        "{n} node(s) formed in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(cluster)
}

async fn measure(
    options: &Sv3Options,
    file: &Path,
    single: &LocalCluster,
    three: &mut LocalCluster,
) -> Result<()> {
    let one = single.nodes[0].base_url();
    let coordinator = three.nodes[0].base_url();
    let a = load_into(&one, file).await?;
    let b = load_into(&coordinator, file).await?;
    println!("\nload (batches of 5,000, 4 in flight)           1 node      3 nodes (RF=3)");
    println!(
        "  acknowledged lines/s                   {:>12.0} {:>12.0}",
        a.lines_per_sec(),
        b.lines_per_sec()
    );
    println!(
        "  searchable after (s)                   {:>12.2} {:>12.2}",
        a.visible_after.unwrap_or_default().as_secs_f64(),
        b.visible_after.unwrap_or_default().as_secs_f64()
    );

    // Queries: the plan's SV-2a set, on the single node and through node 1 of the cluster.
    let client = reqwest::Client::new();
    println!(
        "\nquery p50 ms ({} iterations after 1 warm-up)        1 node   3 nodes",
        options.iterations
    );
    for (q, size) in TEXT_QUERIES {
        let body = json!({ "q": q, "size": size });
        let path = "/thunderbird/_search";
        let (t1, r1) = timed(
            &client,
            &format!("{one}{path}"),
            &body,
            1,
            options.iterations,
        )
        .await?;
        let (t3, r3) = timed(
            &client,
            &format!("{coordinator}{path}"),
            &body,
            1,
            options.iterations,
        )
        .await?;
        if r1["hits"]["total"] != r3["hits"]["total"] {
            return Err(Error::internal(format!(
                "{q:?}: the cluster answered {} hits, the single node {}",
                r3["hits"]["total"], r1["hits"]["total"]
            )));
        }
        print_pair(&format!("text {q:?} size={size}"), &t1, &t3);
    }
    for q in SQL_QUERIES {
        let query = q.replace("{MID}", "1131566461");
        let body = json!({ "query": query });
        let (t1, r1) = timed(
            &client,
            &format!("{one}/_sql"),
            &body,
            1,
            options.iterations,
        )
        .await?;
        let (t3, r3) = timed(
            &client,
            &format!("{coordinator}/_sql"),
            &body,
            1,
            options.iterations,
        )
        .await?;
        // Rows of a GROUP BY come in no particular order: compare them as sets.
        let rows = |r: &Value| {
            let mut rows: Vec<String> = r["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            rows.sort();
            rows
        };
        if query.contains("COUNT") && rows(&r1) != rows(&r3) {
            return Err(Error::internal(format!(
                "{query}: cluster {} vs single node {}",
                r3["rows"], r1["rows"]
            )));
        }
        print_pair(&query, &t1, &t3);
    }

    println!("\nfailover: SIGKILL the leader of thunderbird/0 under a continuous load");
    print_header("500-record writes to a survivor, 1 s before to 2 s after");
    let mut elections = Vec::new();
    for round in 0..options.kills {
        elections.push(kill_round(round, three).await?);
    }
    let s = summarise(&elections);
    println!(
        "leader election after SIGKILL: median {:.0} ms, max {:.0} ms over {} kills (goal <= 2,000 ms, plan <= 5,000 ms)",
        s.p50, s.max, s.count
    );
    Ok(())
}

fn print_pair(name: &str, single: &[Duration], cluster: &[Duration]) {
    let name: String = name.chars().take(52).collect();
    println!(
        "  {name:<52} {:>8.2} {:>9.2}",
        summarise(single).p50,
        summarise(cluster).p50
    );
}

async fn load_into(base: &str, file: &Path) -> Result<LoadSummary> {
    load(&LoadOptions {
        target: base.to_string(),
        topic: "thunderbird".into(),
        format: LogFormat::Thunderbird,
        input: file.to_path_buf(),
        batch_size: 5000,
        concurrency: 4,
        partitions: None,
        vector: None,
        progress: false,
        wait_visible: true,
    })
    .await
}

fn leader_of(status: &Value, group: &str) -> Option<u64> {
    status["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)?["leader"]
        .as_u64()
}

/// One kill: returns the time from SIGKILL until every group is led by a survivor.
async fn kill_round(round: usize, cluster: &mut LocalCluster) -> Result<Duration> {
    let client = reqwest::Client::new();
    let status = cluster.status_from(&client).await?;
    let victim = leader_of(&status, "thunderbird/0")
        .ok_or_else(|| Error::internal("thunderbird/0 has no leader"))?;
    let coordinator = cluster
        .nodes
        .iter()
        .find(|n| n.id != victim)
        .map(|n| n.base_url())
        .unwrap_or_default();
    // A writer posting 500-record batches to a survivor, recording each call's latency.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (stop, failed, latencies, client) = (
            stop.clone(),
            failed.clone(),
            latencies.clone(),
            client.clone(),
        );
        let url = format!("{coordinator}/topics/thunderbird/records");
        tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let records: Vec<Value> = (seq..seq + 500)
                    .map(|i| failover_record(round, i))
                    .collect();
                seq += 500;
                let started = Instant::now();
                let ok = client
                    .post(&url)
                    .json(&json!({ "records": records }))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                latencies.lock().push(started.elapsed());
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let index = cluster.index(victim)?;
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(index))?;
    let survivors: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != victim)
        .collect();
    let election = loop {
        if let Ok(s) = cluster.status_from(&client).await {
            let groups = s["groups"].as_array().cloned().unwrap_or_default();
            if !groups.is_empty()
                && groups
                    .iter()
                    .all(|g| g["leader"].as_u64().is_some_and(|l| survivors.contains(&l)))
            {
                break killed_at.elapsed();
            }
        }
        if killed_at.elapsed() > Duration::from_secs(30) {
            return Err(Error::Unavailable("no new leaders within 30 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    let restarted_at = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(index))?;
    cluster.wait_formed(Duration::from_secs(120)).await?;
    let catch_up = restarted_at.elapsed();
    let writes = latencies.lock().clone();
    println!(
        "round {}: node {victim} killed; every group led again after {:.0} ms; {} of {} writes failed; restarted node caught up in {:.1} s",
        round + 1,
        election.as_secs_f64() * 1000.0,
        failed.load(Ordering::Relaxed),
        writes.len(),
        catch_up.as_secs_f64()
    );
    print_row("  write latency around the kill", &writes);
    Ok(election)
}

fn failover_record(round: usize, seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("sv3-{}", seq % 61),
        "location": "sv3",
        "component": "kernel",
        "pid": seq,
        "message": format!("failover round {round} write {seq}"),
    })
}
