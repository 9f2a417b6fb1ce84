use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::binary;

fn run_in(tmp: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        // The runner's scratch data and local cluster live under TMPDIR: the test can then
        // check that nothing is left behind.
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sv-appliance")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The run records in `dir`, oldest first.
pub fn records(dir: &Path) -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|x| x == "json"));
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

fn phase<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == id)
        .unwrap_or_else(|| panic!("no phase {id}"))
}

fn criterion<'a>(phase: &'a Value, starts_with: &str) -> &'a Value {
    phase["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(starts_with))
        .unwrap_or_else(|| panic!("no criterion {starts_with:?} in {}", phase["plan"]))
}

/// `demo --scale tiny` end to end: every phase runs on the node processes the demo starts
/// (standalone nodes, and three clustered ones for SV-3 and SV-4); returns the runs dir, whose
/// record the demo test checks and renders in headless Chromium.
pub fn run_tiny_demo(tmp: &Path) -> std::path::PathBuf {
    let runs = tmp.join("runs");
    let out = run_in(
        tmp,
        &[
            "demo",
            "--scale",
            "tiny",
            "--exit",
            "--no-progress",
            "--listen",
            "127.0.0.1:0",
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
    );
    let output = text(&out);
    assert!(out.status.success(), "demo failed:\n{output}");
    assert!(
        output.contains("report (live while the run goes) at http://127.0.0.1:"),
        "{output}"
    );
    assert!(
        output.contains("phase  verdict"),
        "no summary table:\n{output}"
    );
    assert!(
        output.contains("note: embedding provider emulated"),
        "SV-1's emulated provider is not said in the summary:\n{output}"
    );
    runs
}

/// SV-1 ran chronik's 37-query scale test twice on its three topics: once with every query
/// embedding a cache miss, then the scale's iterations with every one a hit, and every answer
/// and counter delta held.
fn check_sv1(sv1: &Value) {
    let plan = sv_appliance::bench::plan::Plan::built_in("SV-1").unwrap();
    let scale = plan.scale("tiny").unwrap();
    let dataset = &sv1["dataset"];
    assert_eq!(dataset["topic"], "app-logs, support-tickets, system-events");
    assert_eq!(dataset["records_loaded"], 3 * scale.lines, "{dataset}");
    assert_eq!(dataset["vectors"], 3 * scale.lines, "{dataset}");
    assert_eq!(dataset["rejected"], 0, "{dataset}");
    let tasks = sv1["tasks"].as_array().unwrap();
    for (pass, iterations) in [("first pass", 1), ("second pass", scale.iterations as u64)] {
        let of_pass: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["name"].as_str().unwrap().ends_with(pass))
            .collect();
        // The test's five categories, with its query counts: 8 + 10 + 7 + 5 + 7 = 37.
        let queries = |prefixes: &[&str]| -> u64 {
            of_pass
                .iter()
                .filter(|t| {
                    let category = t["category"].as_str().unwrap();
                    prefixes.iter().any(|p| category.starts_with(p))
                })
                .map(|t| t["samples"].as_u64().unwrap())
                .sum::<u64>()
                / iterations
        };
        assert_eq!(queries(&["full-text"]), 8, "{pass}");
        assert_eq!(queries(&["semantic"]), 10, "{pass}");
        assert_eq!(queries(&["hybrid"]), 7, "{pass}");
        assert_eq!(queries(&["SQL"]), 5, "{pass}");
        assert_eq!(queries(&["orchestrator"]), 7, "{pass}");
        assert_eq!(queries(&[""]), 37, "{pass}");
        for t in &of_pass {
            for a in t["assertions"].as_array().unwrap() {
                assert_eq!(a["passed"], true, "{}: {a}", t["name"]);
            }
        }
        // The counter of the pass (misses, then hits) grew by exactly the requests sent.
        let counter = if pass == "first pass" {
            "misses"
        } else {
            "hits"
        };
        let counted = of_pass
            .iter()
            .flat_map(|t| t["assertions"].as_array().unwrap())
            .filter(|a| {
                a["name"].as_str().unwrap()
                    == format!("chronik_embedding_cache_{counter}_total delta = requests sent")
            })
            .count();
        assert!(counted >= 6, "{pass}: {counted} counter checks");
    }
    for name in [
        "cache_hits_total grows",
        "First run: every query embedding is a cache miss",
    ] {
        let c = criterion(sv1, name);
        assert_eq!(c["passed"], true, "{c}");
    }
    let miss = criterion(sv1, "First query (cache miss)");
    assert!(miss["value"].as_f64().unwrap() >= 372.0, "{miss}");
}

#[test]
fn demo_at_tiny_scale_judges_every_phase_and_leaves_no_node_running() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = run_tiny_demo(tmp.path());
    let all = records(&runs);
    assert_eq!(all.len(), 1, "one run record");
    let run = &all[0];
    assert_eq!(run["schema"], 1);
    assert_eq!(run["label"], "demo");
    assert!(
        run["status"] == "passed" || run["status"] == "failed",
        "run ended in {}: {}",
        run["status"],
        run["error"]
    );
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(run["version"]["build"], build);
    assert!(run["hardware"]["cpus"].as_u64().unwrap() >= 1);
    let ids: Vec<&str> = run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plan"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["SV-1", "SV-2a", "SV-2b", "SV-2c", "SV-3", "SV-4"]);
    for p in run["phases"].as_array().unwrap() {
        assert!(
            p["status"] == "passed" || p["status"] == "failed",
            "{} ended in {}: {}",
            p["plan"],
            p["status"],
            p["error"]
        );
        assert!(
            !p["criteria"].as_array().unwrap().is_empty(),
            "{}",
            p["plan"]
        );
        // Only what needs several machines (SV-3's load-balanced throughput) goes unjudged;
        // everything else is measured, SV-3's and SV-4's comparisons with a standalone node
        // included.
        for c in p["criteria"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let exempt = name.starts_with("Load-balanced");
            assert_eq!(c["judged"] == true, !exempt, "{}: {c}", p["plan"]);
        }
        for t in p["tasks"].as_array().unwrap() {
            assert!(t["samples"].as_u64().unwrap() > 0, "{t}");
            assert_eq!(t["errors"], 0, "{}: {}", p["plan"], t);
            // Every answer check held; only a target rate may be missed by this debug build.
            for a in t["assertions"].as_array().unwrap() {
                let rate = a["name"].as_str().unwrap().starts_with("target rate");
                assert!(
                    a["passed"] == true || rate,
                    "{}: {}: {a}",
                    p["plan"],
                    t["name"]
                );
            }
        }
    }
    // Answers are checked, not only timed: these hold whatever the machine's speed.
    check_sv1(phase(run, "SV-1"));
    // A task sending several queries reports each one's latency: SV-1's 8 text queries were
    // each sent the scale's iterations (every round sends the whole cycle).
    let text_pass_2 = phase(run, "SV-1")["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "text, second pass")
        .unwrap();
    let queries = text_pass_2["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 8, "{text_pass_2}");
    let iterations = sv_appliance::bench::plan::Plan::built_in("SV-1")
        .unwrap()
        .scale("tiny")
        .unwrap()
        .iterations as u64;
    for q in queries {
        assert_eq!(q["latency_ms"]["count"], iterations, "{q}");
    }
    let total: u64 = queries
        .iter()
        .map(|q| q["latency_ms"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, text_pass_2["latency_ms"]["count"].as_u64().unwrap());
    let sv2a = phase(run, "SV-2a");
    assert_eq!(criterion(sv2a, "Every answer right")["passed"], true);
    let count = sv2a["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "COUNT(*) FROM thunderbird")
        .unwrap();
    assert!(
        count["assertions"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("held on all"),
        "{count}"
    );
    let workload = sv2a["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["category"] == "workload text")
        .unwrap();
    assert_eq!(workload["target_rate"], 100.0);
    assert!(workload["throughput_timeline"].as_array().unwrap().len() >= 2);
    assert_eq!(
        criterion(phase(run, "SV-2b"), "recall@10")["passed"],
        true,
        "recall"
    );
    let sv3 = phase(run, "SV-3");
    let kinds: Vec<&str> = sv3["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "kill",
            "leaders elected",
            "load stopped",
            "restart",
            "caught up"
        ]
    );
    let election = criterion(sv3, "Leader election");
    assert!(election["value"].as_f64().unwrap() > 0.0, "{election}");
    assert_eq!(
        criterion(sv3, "Acknowledged writes survive")["passed"],
        true
    );
    // The latency spike the survivors' queries saw around the kill is measured.
    let spike = sv3["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "survivor_query_spike_ms")
        .expect("the survivors' latency spike");
    assert!(spike["value"].as_f64().unwrap() > 0.0, "{spike}");
    // SV-3 and SV-4 ran their queries on a standalone node too, and the comparisons with it
    // are computed from both: the fan-out cost per remote node is (p50 − standalone p50) / 2.
    let sv4 = phase(run, "SV-4");
    let baseline: Vec<&Value> = sv4["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["category"] == "text via each node (baseline)")
        .collect();
    assert_eq!(baseline.len(), 1, "one standalone node: {baseline:?}");
    let fan_out = criterion(sv4, "Remote fan-out adds 1-2 ms per remote node (text");
    let worst = sv4["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["category"] == "text via each node")
        .map(|t| t["latency_ms"]["p50"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let standalone = baseline[0]["latency_ms"]["p50"].as_f64().unwrap();
    let value = fan_out["value"].as_f64().unwrap();
    assert!(
        (value - (worst - standalone) / 2.0).abs() < 1e-9,
        "{fan_out}"
    );
    assert!(
        sv3["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["category"] == "text per node (baseline)"),
        "SV-3 ran its per-node text query on a standalone node"
    );
    // Vector search through each node, on the small embedded topic, answered with hits on
    // all three and on the standalone node, and the "same latency" criterion was judged.
    let vector_tasks: Vec<&Value> = sv3["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["category"]
                .as_str()
                .unwrap()
                .starts_with("vector per node")
        })
        .collect();
    assert_eq!(vector_tasks.len(), 4, "3 nodes and the standalone one");
    for t in &vector_tasks {
        assert_eq!(t["passed"], true, "{t}");
    }
    assert_eq!(
        criterion(sv3, "Vector search via each node")["judged"],
        true
    );
    // Writes went on during the per-node query on each node; every acknowledged one is on
    // every node afterwards.
    let during: Vec<&Value> = sv3["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["category"] == "text per node during ingest")
        .collect();
    assert_eq!(during.len(), 3, "one per node");
    for t in during {
        let held = t["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "writes during the task acknowledged and held on every node")
            .unwrap_or_else(|| panic!("{t}"));
        assert_eq!(held["passed"], true, "{held}");
        assert!(
            !held["detail"].as_str().unwrap().starts_with("0 records"),
            "{held}"
        );
    }
    let panics = sv3["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "panics")
        .unwrap();
    assert!(
        panics["detail"].as_str().unwrap().contains("(baseline)"),
        "the standalone node's panics are counted too: {panics}"
    );
    // Telemetry from the standalone node processes and from each of the cluster's nodes.
    let nodes = run["telemetry"].as_array().unwrap();
    assert!(nodes.len() >= 4, "{} nodes sampled", nodes.len());
    let sampled = nodes
        .iter()
        .flat_map(|n| n["samples"].as_array().unwrap())
        .filter(|s| s["reachable"] == true && s["rss_bytes"].as_u64().unwrap_or(0) > 0)
        .count();
    // Disk and network counters are sampled too (the nodes wrote their logs and indexes).
    let written = run["telemetry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["samples"].as_array().unwrap())
        .filter_map(|s| s["disk_written_bytes"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(written > 0, "no disk writes sampled");
    assert!(
        run["telemetry"][0]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["net_rx_bytes"].as_u64().is_some()),
        "no network bytes sampled"
    );
    assert!(sampled >= 10, "{sampled} telemetry samples");
    // Every node the run queried is recorded with its machine and its effective config, and
    // the cluster nodes' shared token is not in the record.
    let described = run["nodes"].as_array().unwrap();
    for target in run["environment"]["targets"].as_array().unwrap() {
        let node = described
            .iter()
            .find(|n| n["target"] == *target)
            .unwrap_or_else(|| panic!("{target} not described: {described:?}"));
        assert_eq!(node["config"]["node_id"], node["node_id"], "{node}");
        assert!(node["hardware"]["cpus"].as_u64().unwrap() >= 1, "{node}");
        assert_eq!(node["version"]["build"], build, "{node}");
    }
    let clustered: Vec<&Value> = described
        .iter()
        .filter(|n| n["config"]["cluster"]["members"].as_array().unwrap().len() == 3)
        .collect();
    assert_eq!(
        clustered.len(),
        6,
        "SV-3's and SV-4's clusters: {described:?}"
    );
    for node in &clustered {
        assert_eq!(
            node["config"]["cluster"]["token"], "(set, withheld)",
            "{node}"
        );
    }
    // As each plan set it up: SV-3 replicates every partition three times, SV-4 once.
    let mut factors: Vec<u64> = clustered
        .iter()
        .map(|n| {
            n["config"]["cluster"]["replication_factor"]
                .as_u64()
                .unwrap()
        })
        .collect();
    factors.dedup();
    assert_eq!(factors, [3, 1], "{described:?}");

    // Nothing left running or on disk from the run's nodes.
    let tmp_path = tmp.path().to_str().unwrap();
    let left = processes_mentioning(tmp_path);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let scratch: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "runs")
        .collect();
    assert!(scratch.is_empty(), "scratch left behind: {scratch:?}");

    let list = run_in(
        tmp.path(),
        &["bench", "list", "--runs-dir", runs.to_str().unwrap()],
    );
    assert!(list.status.success());
    let listed = text(&list);
    assert!(listed.contains(run["id"].as_str().unwrap()), "{listed}");
    assert!(listed.contains("SV-2a"), "{listed}");

    // The report renders this real run in headless Chromium: charts drawn from its samples,
    // every phase's criteria listed, SV-3's failover timeline shown, no console message.
    let server = crate::report::server::ReportProcess::start(&runs);
    let work = tmp.path().join("chromium");
    std::fs::create_dir_all(&work).unwrap();
    let url = format!("{}/runs/{}", server.base, run["id"].as_str().unwrap());
    let page = crate::report::chromium::render(&url, &work, None);
    assert!(
        page.console.is_empty(),
        "console messages:\n{}",
        page.console.join("\n")
    );
    assert!(page.dom.matches("<svg").count() >= 4, "charts in the DOM");
    assert!(page.dom.contains("<polyline"), "lines drawn");
    for c in run["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["criteria"].as_array().unwrap())
    {
        // As Chromium serialises text: only `&`, `<` and `>` escaped.
        let name = c["name"]
            .as_str()
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(page.dom.contains(&name), "{name}");
    }
    assert!(page.dom.contains("SIGKILL"), "the failover timeline");
    assert!(
        page.dom.contains("<h3>Nodes</h3>"),
        "the nodes and their config"
    );
    assert!(
        page.dom.contains(r#"class="queries""#),
        "per-query latency tables"
    );
    for chart in [
        "Disk writes (node process)",
        "Network in + out (whole host)",
    ] {
        assert!(page.dom.contains(chart), "{chart}");
    }
    // SV-1's provider is labelled emulated in its own section, not only in the run's header.
    let sv1_section = page
        .dom
        .split(r#"id="phase-0""#)
        .nth(1)
        .and_then(|rest| rest.split(r#"id="phase-1""#).next())
        .expect("SV-1's section");
    assert!(
        sv1_section.contains("embedding provider emulated"),
        "{sv1_section}"
    );
}

const WRONG_PLAN: &str = r#"
id = "WRONG"
title = "A plan whose assertion cannot hold"
description = "COUNT(*) answers one row, the plan claims two"

[dataset]
format = "thunderbird"
topic = "tb"

[environment]
nodes = 1
partitions = 2

[scale.tiny]
lines = 300
warmup = 0
iterations = 3

[[task]]
name = "count rows"
category = "SQL"
kind = "sql"
body = { query = "SELECT COUNT(*) FROM tb" }
assert = [{ rows_equal = 2 }]

[[task]]
name = "error"
category = "text"
kind = "search"
body = { q = "error", size = 5 }
assert = [{ complete = true }]

[[criterion]]
name = "Every answer right"
categories = ["SQL", "text"]
stat = "failed_assertions"
max = 0
unit = "count"
"#;

/// `bench run --target` against a node this test started: the first run loads the plan's
/// data, a second finds exactly that data and reuses it, and a plan of another size refuses
/// the topic instead of counting someone else's records as its own.
#[test]
fn bench_run_against_a_target_loads_once_and_refuses_foreign_data() {
    let tmp = tempfile::tempdir().unwrap();
    let server = crate::support::ServerProcess::start(&tmp.path().join("data"), &[]);
    let runs = tmp.path().join("runs");
    let run = |plan: &str| {
        run_in(
            tmp.path(),
            &[
                "bench",
                "run",
                plan,
                "--scale",
                "tiny",
                "--no-progress",
                "--target",
                &server.base,
                "--runs-dir",
                runs.to_str().unwrap(),
            ],
        )
    };
    let first = run("SV-2a");
    assert!(
        text(&first).contains("loaded 3000 thunderbird records"),
        "{}",
        text(&first)
    );
    let second = run("SV-2a");
    assert!(
        text(&second).contains("not loaded again"),
        "{}",
        text(&second)
    );
    for record in records(&runs) {
        let p = phase(&record, "SV-2a");
        // Every answer right on both runs; the latency criteria are left out, since this
        // debug build shares the machine with the other tests.
        for t in p["tasks"].as_array().unwrap() {
            assert_eq!(
                t["passed"],
                true,
                "{}: {}\n{}\n{}",
                t["name"],
                t["assertions"],
                text(&first),
                text(&second)
            );
        }
        assert_eq!(p["dataset"]["records_loaded"], 3000);
        assert_eq!(record["environment"]["kind"], "external");
        assert_eq!(record["telemetry"][0]["node"], server.base.as_str());
        // The target's own effective config is recorded, not the runner's.
        let node = &record["nodes"][0];
        assert_eq!(node["target"], server.base.as_str(), "{record}");
        assert_eq!(
            node["config"]["data_dir"],
            tmp.path().join("data").to_str().unwrap(),
            "{node}"
        );
    }
    // SV-4 loads 2,000 Thunderbird lines at this scale (SV-1 has topics of its own now).
    let other = run("SV-4");
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        text(&other).contains("already holds 3000 records")
            && text(&other).contains("--reuse-data"),
        "{}",
        text(&other)
    );
    assert_eq!(
        crate::support::sql_count(&server.base, "SELECT COUNT(*) FROM thunderbird"),
        3000
    );

    // On the data already there, SV-4 runs; its fan-out cost compares with a standalone node
    // the runner cannot start behind --target URLs, so those criteria are not judged, and
    // say why, without failing the phase.
    let earlier: Vec<Value> = records(&runs)
        .into_iter()
        .map(|r| r["id"].clone())
        .collect();
    let reused = run_in(
        tmp.path(),
        &[
            "bench",
            "run",
            "SV-4",
            "--scale",
            "tiny",
            "--no-progress",
            "--reuse-data",
            "--target",
            &server.base,
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
    );
    assert!(reused.status.success(), "{}", text(&reused));
    let record = records(&runs)
        .into_iter()
        .find(|r| !earlier.contains(&r["id"]))
        .expect("the SV-4 run is recorded");
    let p = phase(&record, "SV-4");
    assert_eq!(p["status"], "passed", "{}", text(&reused));
    let fan_out: Vec<&Value> = p["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("Remote fan-out"))
        .collect();
    assert_eq!(fan_out.len(), 2, "{p}");
    for c in fan_out {
        assert_eq!(c["judged"], false, "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .starts_with("not judged without a standalone node"),
            "{c}"
        );
    }
}

/// A fast wrong answer fails its task, the criterion and the run (exit 1), and the record
/// names what was observed. Two such runs compare side by side.
#[test]
fn a_wrong_answer_fails_the_task_and_runs_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let plan = tmp.path().join("wrong.toml");
    std::fs::write(&plan, WRONG_PLAN).unwrap();
    let args = [
        "bench",
        "run",
        plan.to_str().unwrap(),
        "--scale",
        "tiny",
        "--no-progress",
        "--runs-dir",
        runs.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let out = run_in(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("failed"), "{}", text(&out));
    }
    let all = records(&runs);
    assert_eq!(all.len(), 2);
    let run = &all[1];
    assert_eq!(run["status"], "failed");
    let p = phase(run, "WRONG");
    let task = &p["tasks"][0];
    assert_eq!(task["passed"], false);
    let detail = task["assertions"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("failed on 3 of 3 answers") && detail.contains("Some(1) rows"),
        "{detail}"
    );
    assert_eq!(p["tasks"][1]["passed"], true, "{}", p["tasks"][1]);
    let c = criterion(p, "Every answer right");
    assert_eq!(
        (c["judged"].clone(), c["passed"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );

    let a = all[0]["id"].as_str().unwrap();
    let b = all[1]["id"].as_str().unwrap();
    let out = run_in(
        tmp.path(),
        &[
            "bench",
            "compare",
            a,
            b,
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
    );
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(a) && shown.contains(b) && shown.contains("count rows"),
        "{shown}"
    );
    assert!(shown.contains("B/A") && shown.contains("FAIL"), "{shown}");

    // Bad input is named.
    for (bad, expected) in [
        (vec!["bench", "run", "SV-9"], "SV-2a"),
        (vec!["bench", "run", "SV-2a", "--scale", "huge"], "tiny"),
        (
            vec!["bench", "run", "SV-2a", "--target", "localhost:6092"],
            "not a URL",
        ),
        (
            vec![
                "bench",
                "compare",
                "nope",
                "latest",
                "--runs-dir",
                runs.to_str().unwrap(),
            ],
            "no run \"nope\"",
        ),
    ] {
        let out = run_in(tmp.path(), &bad);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{bad:?}: {}", text(&out));
    }
}

/// Ctrl-C while the demo's three node processes serve SV-3: the demo stops them (they run in
/// their own process group, so the terminal's SIGINT never reaches them), removes its scratch
/// data, marks the run interrupted and exits 1.
#[test]
fn ctrl_c_in_the_cluster_phase_stops_every_node_the_demo_started() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut demo = Command::new(binary())
        .args(["demo", "--scale", "tiny", "--exit", "--no-progress"])
        .args(["--listen", "127.0.0.1:0", "--runs-dir"])
        .arg(&runs)
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut seen = Vec::new();
    // SV-3's first task answers once the cluster is up and loaded.
    while !seen
        .iter()
        .any(|l: &String| l.contains("via each node @ node 1"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("SV-3 never started:\n{}", seen.join("\n")),
        }
    }
    let nodes = |tmp: &Path| -> Vec<String> {
        processes_mentioning(tmp.to_str().unwrap())
            .into_iter()
            .filter(|c| c.contains(" serve "))
            .collect()
    };
    assert_eq!(
        nodes(tmp.path()).len(),
        3,
        "three node processes serve SV-3"
    );

    let pid = demo.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(90),
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1));
    assert!(
        nodes(tmp.path()).is_empty(),
        "nodes left: {:?}",
        nodes(tmp.path())
    );
    let scratch: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "runs")
        .collect();
    assert!(scratch.is_empty(), "scratch left behind: {scratch:?}");
    let run = &records(&runs)[0];
    assert_eq!(run["status"], "error");
    assert_eq!(run["error"], "interrupted by Ctrl-C");
}
