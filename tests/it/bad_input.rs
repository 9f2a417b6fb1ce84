use serde_json::json;

use crate::support::{ServerProcess, post_json, post_raw, ureq_get};

fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, mentions: &str) {
    assert_eq!(status, want_status, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {body}"));
    assert!(
        message.to_lowercase().contains(&mentions.to_lowercase()),
        "error {message:?} should mention {mentions:?}"
    );
}

#[test]
fn bad_requests_get_named_errors_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[("SV_MAX_BATCH_RECORDS", "100")]);
    let base = &server.base;
    let (status, _) = post_json(
        &format!("{base}/topics"),
        &json!({ "name": "logs", "partitions": 2 }),
    );
    assert_eq!(status, 201);
    let good = json!({ "records": [ { "timestamp": 1, "label": "-", "host": "dn1", "location": "dn1/dn1",
        "component": "kernel", "pid": null, "message": "kernel panic on dn1" } ] });
    // SQL contexts are cached between writes: a write must still show up in the next query.
    let (_, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT COUNT(*) AS n FROM logs" }),
    );
    assert_eq!(b["rows"][0]["n"], 0, "{b}");
    let (status, _) = post_json(&format!("{base}/topics/logs/records"), &good);
    assert_eq!(status, 200);
    let (_, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT COUNT(*) AS n FROM logs" }),
    );
    assert_eq!(b["rows"][0]["n"], 1, "{b}");

    let (s, b) = post_raw(
        &format!("{base}/topics/logs/records"),
        b"{\"records\": [".to_vec(),
    );
    assert_error(s, &b, 400, "invalid JSON");
    let (s, b) = post_raw(&format!("{base}/_sql"), b"not json".to_vec());
    assert_error(s, &b, 400, "invalid JSON");
    let (s, b) = post_json(&format!("{base}/topics/nope/records"), &good);
    assert_error(s, &b, 404, "nope");
    let (s, b) = post_json(&format!("{base}/nope/_search"), &json!({ "q": "x" }));
    assert_error(s, &b, 404, "nope");
    let (s, b) = post_json(&format!("{base}/_sql"), &json!({ "query": "SELEC oops" }));
    assert_error(s, &b, 400, "SQL error");
    let (s, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT nosuchcolumn FROM logs" }),
    );
    assert_error(s, &b, 400, "nosuchcolumn");
    // Queries are read-only: no DDL or DML reaches the server's files.
    let (s, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'" }),
    );
    assert_eq!(s, 400, "{b}");
    let (s, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "COPY (SELECT 1) TO '/tmp/sv-appliance-copy.csv'" }),
    );
    assert_eq!(s, 400, "{b}");
    assert!(!std::path::Path::new("/tmp/sv-appliance-copy.csv").exists());
    let (s, b) = post_json(
        &format!("{base}/logs/_search"),
        &json!({ "q": "error AND (" }),
    );
    assert_error(s, &b, 400, "invalid query string");
    let (s, b) = post_json(
        &format!("{base}/logs/_search"),
        &json!({ "query": { "wildcard": { "message": "x*" } } }),
    );
    assert_error(s, &b, 400, "unsupported query type");
    let (s, b) = post_json(
        &format!("{base}/logs/_search"),
        &json!({ "query": { "term": { "hostname": "dn1" } } }),
    );
    assert_error(s, &b, 400, "unknown field");
    let many: Vec<_> = (0..101).map(|_| good["records"][0].clone()).collect();
    let (s, b) = post_json(
        &format!("{base}/topics/logs/records"),
        &json!({ "records": many }),
    );
    assert_error(s, &b, 413, "limit is 100");
    let (s, b) = post_json(
        &format!("{base}/topics/logs/records"),
        &json!({ "records": [ { "timestamp": 1, "label": "-", "host": "",
        "location": "", "component": "", "pid": null, "message": "m" } ] }),
    );
    assert_error(s, &b, 400, "records[0]: host is empty");
    let (s, b) = post_json(&format!("{base}/topics"), &json!({ "name": "../etc" }));
    assert_error(s, &b, 400, "invalid topic name");
    let (s, b) = post_json(
        &format!("{base}/topics"),
        &json!({ "name": "logs", "partitions": 5 }),
    );
    assert_error(s, &b, 409, "already exists");

    // Nothing above changed the data, and the node still answers.
    let (status, health) = ureq_get(&format!("{base}/health")).unwrap();
    assert_eq!(status, 200, "{health}");
    let (s, b) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT COUNT(*) AS n FROM logs" }),
    );
    assert_eq!(s, 200);
    assert_eq!(b["rows"][0]["n"], 1);
}
