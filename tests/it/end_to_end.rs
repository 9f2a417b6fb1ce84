use std::collections::HashMap;
use std::process::Command;

use serde_json::json;
use sv_appliance::dataset::{LogFormat, parse_line};
use sv_appliance::record::LogRecord;

use crate::support::{ServerProcess, binary, post_json, sql_count, ureq_get};

/// Tokens as the index's default analyser makes them: alphanumeric runs, lowercased.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
        .collect()
}

fn contains_phrase(tokens: &[String], phrase: &[&str]) -> bool {
    tokens
        .windows(phrase.len())
        .any(|w| w.iter().zip(phrase).all(|(a, b)| a == b))
}

fn search_total(base: &str, body: serde_json::Value) -> u64 {
    let (status, response) = post_json(&format!("{base}/tb/_search"), &body);
    assert_eq!(status, 200, "{body}: {response}");
    response["hits"]["total"]["value"]
        .as_u64()
        .expect("hits.total.value")
}

#[test]
fn loaded_lines_are_counted_and_found_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tb.log");
    let status = Command::new(binary())
        .args([
            "gen",
            "thunderbird",
            "--lines",
            "30000",
            "--seed",
            "11",
            "--malformed-rate",
            "0.002",
            "-o",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());

    // A small flush threshold so the data spans Parquet files and the hot buffer.
    let server = ServerProcess::start(&dir.path().join("data"), &[("SV_FLUSH_ROWS", "3000")]);
    let output = Command::new(binary())
        .args([
            "load",
            "--topic",
            "tb",
            "--format",
            "thunderbird",
            "--no-progress",
            "--batch-size",
            "2000",
            "--target",
        ])
        .arg(&server.base)
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "load failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The independent scan: parse each line (parser fidelity is tested against Loghub's CSVs).
    let text = std::fs::read_to_string(&input).unwrap();
    let mut records: Vec<LogRecord> = Vec::new();
    let mut bad = 0u64;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(LogFormat::Thunderbird, line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    assert!(bad > 0, "the generator was asked for malformed lines");
    assert!(
        stdout.contains(&format!("accepted:   {}", records.len())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("rejected:   {bad}")), "{stdout}");

    let base = &server.base;
    let total = records.len() as i64;
    assert_eq!(sql_count(base, "SELECT COUNT(*) FROM tb"), total);
    let hot = sql_count(base, "SELECT COUNT(*) AS n FROM tb_hot");
    let cold = sql_count(base, "SELECT COUNT(*) AS n FROM tb_cold");
    assert_eq!(hot + cold, total, "hot {hot} + cold {cold}");
    assert!(
        cold > 0 && hot > 0,
        "expected both tables populated: hot {hot} cold {cold}"
    );
    let alerts = records.iter().filter(|r| r.label != "-").count() as i64;
    assert!(alerts > 0);
    assert_eq!(
        sql_count(base, "SELECT COUNT(*) FROM tb WHERE alert"),
        alerts
    );

    // GROUP BY severity, the plan's query, adds up and puts alerts under ALERT.
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT severity, COUNT(*) AS n FROM tb GROUP BY severity ORDER BY severity" }),
    );
    assert_eq!(status, 200, "{body}");
    let groups: HashMap<String, i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["severity"].as_str().unwrap().to_string(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups.values().sum::<i64>(), total);
    assert_eq!(groups.get("ALERT").copied().unwrap_or(0), alerts);

    // Per-host counts equal the scan's.
    let mut by_host: HashMap<&str, i64> = HashMap::new();
    for r in &records {
        *by_host.entry(r.host.as_str()).or_default() += 1;
    }
    let (top_host, top_count) = by_host.iter().max_by_key(|(_, c)| **c).unwrap();
    assert_eq!(
        sql_count(
            base,
            &format!("SELECT COUNT(*) FROM tb WHERE host = '{top_host}'")
        ),
        *top_count
    );

    // The plan's WHERE and time-range queries return only matching rows, within the limit.
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT * FROM tb_hot WHERE severity = 'ERROR' LIMIT 50" }),
    );
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert!(rows.len() <= 50 && rows.iter().all(|r| r["severity"] == "ERROR"));
    let middle = records[records.len() / 2].timestamp;
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": format!("SELECT * FROM thunderbird_missing_check LIMIT 1") }),
    );
    assert_eq!(status, 400, "unknown table is the caller's error: {body}");
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": format!("SELECT * FROM tb WHERE timestamp > {middle} LIMIT 20") }),
    );
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|r| r["timestamp"].as_i64().unwrap() > middle)
    );
    assert_eq!(
        body["truncated"], false,
        "the query's own LIMIT is not a truncation"
    );
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT * FROM tb", "limit": 5 }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["row_count"], 5);
    assert_eq!(body["truncated"], true, "the response limit cut the result");

    // Text search: hit counts equal the scan for terms, AND, phrases and DSL.
    let token_lists: Vec<Vec<String>> = records.iter().map(|r| tokens(&r.message)).collect();
    for term in [
        "error",
        "warning",
        "failure",
        "timeout",
        "kernel",
        "synchronized",
        "ntpd",
    ] {
        let expected = token_lists
            .iter()
            .filter(|t| t.iter().any(|x| x == term))
            .count() as u64;
        assert_eq!(
            search_total(base, json!({ "q": term })),
            expected,
            "q={term}"
        );
        assert_eq!(
            search_total(base, json!({ "query": { "match": { "message": term } } })),
            expected,
            "match {term}"
        );
    }
    let both = token_lists
        .iter()
        .filter(|t| t.iter().any(|x| x == "error") && t.iter().any(|x| x == "kernel"))
        .count();
    assert_eq!(
        search_total(base, json!({ "q": "error AND kernel" })),
        both as u64
    );
    let phrase = token_lists
        .iter()
        .filter(|t| contains_phrase(t, &["disk", "i", "o", "error"]))
        .count();
    assert_eq!(
        search_total(base, json!({ "q": "\"disk I/O error\"" })),
        phrase as u64
    );

    let host_session = records
        .iter()
        .zip(&token_lists)
        .filter(|(r, t)| r.host == *top_host && !t.iter().any(|x| x == "synchronized"))
        .count();
    let dsl = json!({ "query": { "bool": {
        "filter": [ { "term": { "host": top_host } } ],
        "must_not": [ { "match": { "message": "synchronized" } } ]
    } } });
    assert_eq!(search_total(base, dsl), host_session as u64);
    let after = records.iter().filter(|r| r.timestamp >= middle).count();
    assert_eq!(
        search_total(
            base,
            json!({ "query": { "range": { "timestamp": { "gte": middle } } } })
        ),
        after as u64
    );

    // Hits carry their source and the page size is honoured.
    let (status, body) = post_json(
        &format!("{base}/_search"),
        &json!({ "q": "kernel", "size": 3 }),
    );
    assert_eq!(status, 200);
    let hits = body["hits"]["hits"].as_array().unwrap();
    assert!(hits.len() <= 3);
    for hit in hits {
        assert_eq!(hit["_index"], "tb");
        assert!(
            tokens(hit["_source"]["message"].as_str().unwrap()).contains(&"kernel".to_string())
        );
    }
    // Paging is exact across partitions: page 2 is the tail of the longer first page.
    let ids = |from: usize, size: usize| -> Vec<String> {
        let (status, body) = post_json(
            &format!("{base}/tb/_search"),
            &json!({ "q": "synchronized", "from": from, "size": size }),
        );
        assert_eq!(status, 200, "{body}");
        body["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ids(0, 25);
    assert_eq!(first.len(), 25);
    assert_eq!(ids(10, 15), first[10..25].to_vec());
    let (status, topic) = ureq_get(&format!("{base}/topics/tb")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(topic["records"].as_i64().unwrap(), total);
    assert_eq!(topic["partitions"].as_array().unwrap().len(), 6);
    assert_eq!(
        topic["index_lag"], 0,
        "the loader waited until everything was searchable"
    );

    // Prometheus text with latency histograms and the index lag gauge.
    let metrics = reqwest::blocking::get(format!("{base}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("chronik_http_request_duration_seconds_bucket{route=\"/{index}/_search\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("chronik_index_lag_records{topic=\"tb\""),
        "{metrics}"
    );
}
