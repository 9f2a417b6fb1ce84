//! The report on a node: a real node (a one-node local cluster, so its raft port is open)
//! takes run records on `PUT /internal/runs/{id}` only with the cluster token, refuses bad ids
//! and bodies, and serves them under `/report/` on its API with links that keep the prefix.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sv_appliance::bench::record::RunRecord;

use crate::cluster::{Down, cluster, nodes};
use crate::report::server::get;

const ID: &str = "20260501T120000Z-SV-2a-node";
const TOKEN_HEADER: &str = "x-sv-cluster-token";

/// The smallest valid record: no phases yet, as when a run has just started.
fn record(id: &str, status: &str, updated_at: &str) -> Value {
    json!({
        "schema": 1, "id": id, "label": "SV-2a <nodes>", "scale": "tiny", "status": status,
        "error": null, "started_at": "2026-05-01T12:00:00Z", "finished_at": null,
        "updated_at": updated_at,
        "version": { "package": "0.1.0", "git": "test", "build": "debug" },
        "hardware": { "hostname": "it", "os": "linux", "cpu_model": "test", "cpus": 2,
                      "memory_bytes": 1_073_741_824u64 },
        "environment": { "kind": "local cluster of 1", "targets": [], "notes": [] },
        "phases": [], "telemetry": []
    })
}

/// PUT `body` to `url`, with `token` when given; returns (status, JSON body).
fn put(url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .put(url)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(30))
        .body(body);
    if let Some(token) = token {
        request = request.header(TOKEN_HEADER, token);
    }
    let response = request.send().expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn state(dir: &Path) -> (String, String, String, std::path::PathBuf) {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cluster.json")).unwrap()).unwrap();
    let node = &nodes(dir)[0];
    (
        format!("http://{}", node["api"].as_str().unwrap()),
        format!("http://{}", node["raft"].as_str().unwrap()),
        state["token"].as_str().unwrap().to_string(),
        Path::new(node["dir"].as_str().unwrap()).join("data/runs"),
    )
}

#[test]
fn a_node_stores_published_runs_with_the_token_and_serves_them_under_report() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cluster");
    let _down = Down(&dir);
    cluster(&dir, &["up", "--local", "1", "--timeout", "60"]);
    let (api, internal, token, runs_dir) = state(&dir);
    let url = format!("{internal}/internal/runs/{ID}");
    let body = serde_json::to_vec(&record(ID, "running", "2026-05-01T12:00:05Z")).unwrap();

    // An empty runs dir is a page, not an error.
    let empty = get(&format!("{api}/report/"), None);
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("No runs yet"), "{}", empty.body);

    let (status, answer) = put(&url, None, body.clone());
    assert_eq!(status, 401, "no token: {answer}");
    let (status, answer) = put(&url, Some("0123456789abcdef-wrong"), body.clone());
    assert_eq!(status, 401, "wrong token: {answer}");
    assert!(!runs_dir.join(format!("{ID}.json")).exists());

    let (status, answer) = put(&url, Some(&token), body.clone());
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["stored"], true, "{answer}");
    let stored = RunRecord::load(&runs_dir.join(format!("{ID}.json"))).unwrap();
    assert_eq!(stored.status, "running");

    // Refused with a JSON error: an id that is not a file name, a body for another run, a
    // body that is no run record.
    let bad_id = format!("{internal}/internal/runs/..%2Fx");
    let other = serde_json::to_vec(&record("../x", "running", "")).unwrap();
    for (url, body, why) in [
        (&bad_id, other, "bad id"),
        (
            &url,
            serde_json::to_vec(&record("20260501T120000Z-other", "passed", "")).unwrap(),
            "id differs",
        ),
        (&url, b"{\"schema\": 1, \"id\": \"x\"".to_vec(), "not JSON"),
        (&url, b"{\"schema\": 1}".to_vec(), "not a record"),
    ] {
        let (status, answer) = put(url, Some(&token), body);
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(answer["error"].is_string(), "{why}: {answer}");
    }
    assert!(!runs_dir.parent().unwrap().join("x.json").exists());

    // The final record replaces the live one; a late copy of the live one does not come back.
    let done = serde_json::to_vec(&record(ID, "passed", "2026-05-01T12:09:00Z")).unwrap();
    let (status, answer) = put(&url, Some(&token), done);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = put(&url, Some(&token), body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], false, "{answer}");

    for list_url in [format!("{api}/report/"), format!("{api}/report")] {
        let list = get(&list_url, None);
        assert_eq!(list.status, 200, "{list_url}: {}", list.body);
        assert!(
            list.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert!(
            list.body.contains(&format!(r#"href="/report/runs/{ID}""#)),
            "{list_url}: {}",
            list.body
        );
        assert!(list.body.contains("SV-2a &lt;nodes&gt;"), "label escaped");
        assert!(list.body.contains(r#"href="/report/assets/report.css""#));
        assert!(
            !list.body.contains(r#""/assets/"#),
            "a link left the prefix"
        );
    }

    let page = get(&format!("{api}/report/runs/{ID}"), None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<span class="badge st-passed">passed</span>"#)
    );
    assert!(
        page.body
            .contains(&format!(r#"href="/report/runs/{ID}.json""#))
    );
    assert!(!page.body.contains("<script>"), "no inline script");
    let api_list = crate::support::ureq_get(&format!("{api}/report/api/runs")).unwrap();
    assert_eq!(api_list.0, 200);
    assert_eq!(api_list.1["runs"][0]["id"], ID, "{}", api_list.1);
    let script = get(&format!("{api}/report/assets/report.js"), None);
    assert_eq!(script.status, 200);
    let missing = get(&format!("{api}/report/no-such-page"), None);
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("/report/no-such-page"),
        "{}",
        missing.body
    );
    // The node's own API is untouched by the nesting.
    assert_eq!(get(&format!("{api}/health"), None).status, 200);

    // The harness's side: one call per run, one failure line per node that refused it.
    let mut run: RunRecord =
        serde_json::from_slice(&std::fs::read(runs_dir.join(format!("{ID}.json"))).unwrap())
            .unwrap();
    run.id = "20260501T130000Z-SV-2b".to_string();
    run.updated_at = Some("2026-05-01T13:00:00Z".to_string());
    let targets = vec![
        (internal.clone(), token.clone()),
        (format!("{internal}/"), "0123456789abcdef-wrong".to_string()),
    ];
    let failures = tokio::runtime::Runtime::new().unwrap().block_on(
        sv_appliance::report::publish::publish_run(&reqwest::Client::new(), &targets, &run),
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("401"), "{failures:?}");
    let page = get(&format!("{api}/report/runs/{}", run.id), None);
    assert_eq!(page.status, 200, "{}", page.body);

    // `bench run --target` stores its record on the target's nodes when given the token,
    // finding their raft ports through /_cluster/status; without it, it says how.
    let bench = |token: Option<&str>| {
        let mut command = std::process::Command::new(crate::support::binary());
        command
            .args(["bench", "run", "SV-2a", "--scale", "tiny", "--no-progress"])
            .args(["--target", &api, "--reuse-data"])
            .arg("--runs-dir")
            .arg(root.path().join("runs"))
            .env_remove("SV_CLUSTER_TOKEN");
        if let Some(token) = token {
            command.env("SV_CLUSTER_TOKEN", token);
        }
        let out = command.output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let kept = bench(None);
    assert!(kept.contains("set SV_CLUSTER_TOKEN"), "{kept}");
    let published = bench(Some(&token));
    assert!(
        published.contains("run published to 1 of 1 nodes"),
        "{published}"
    );
    let listed = crate::support::ureq_get(&format!("{api}/report/api/runs"))
        .unwrap()
        .1;
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["label"] == "SV-2a")
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "only the run given the token: {listed}");
    let shown = get(&format!("{api}/report/runs/{}", ids[0]), None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("SV-2a"), "{}", shown.body);
}
