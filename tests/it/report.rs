//! The report page: `sv-appliance report` over a runs dir holding a realistic record, checked
//! over HTTP (pages, JSON, CSV, errors, path refusal) and rendered in headless Chromium (charts
//! in the DOM, no console messages).

pub mod chromium;
mod fixture;
pub mod server;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sv_appliance::bench::record::RunRecord;

use fixture::fixture_run;
use server::{ReportProcess, get, raw_status};

/// The same escaping the pages use, for looking up file-provided text in the HTML.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Where two JSON values differ (numbers within 1e-12 relative: serde_json without
/// `float_roundtrip` may move a parsed float by one ulp).
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(va, vb, &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            ((x - y).abs() > 1e-12 * x.abs().max(y.abs())).then(|| format!("{path}: {x} vs {y}"))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

/// RFC 4180 records (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The fixture, a later run of the same plan (for compare), an unreadable file, and a valid
/// record outside the runs dir that no request may reach.
fn runs_dir_with_fixture(root: &Path) -> (std::path::PathBuf, RunRecord, RunRecord) {
    let runs = root.join("runs");
    let run = fixture_run();
    run.save(&runs).unwrap();
    let mut later = run.clone();
    later.id = format!("{}-again", run.id.replacen("2026", "2027", 1));
    later.started_at = later.started_at.replacen("2026", "2027", 1);
    later.finished_at = later.finished_at.map(|t| t.replacen("2026", "2027", 1));
    for task in later.phases.iter_mut().flat_map(|p| p.tasks.iter_mut()) {
        task.latency_ms.p50 = task.latency_ms.p50.map(|v| v * 0.5);
        task.throughput *= 1.5;
    }
    for node in &mut later.nodes {
        node.config["vector"]["ef_search"] = 128.into();
    }
    later.save(&runs).unwrap();
    std::fs::write(runs.join("20250101T000000Z-broken.json"), "{ not json").unwrap();
    let mut secret = run.clone();
    secret.id = "secret".to_string();
    secret.label = "SECRET-OUTSIDE-RUNS-DIR".to_string();
    secret.save(root).unwrap();
    (runs, run, later)
}

#[test]
fn report_serves_pages_json_and_csv_and_refuses_paths_outside_the_runs_dir() {
    let root = tempfile::tempdir().unwrap();
    let (runs, run, later) = runs_dir_with_fixture(root.path());
    let server = ReportProcess::start(&runs);
    let base = &server.base;

    let list = get(&format!("{base}/"), None);
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&html_escaped(&run.id)) && list.body.contains(&later.id));
    assert!(list.body.contains(&format!("badge st-{}", run.status)));
    assert!(
        list.body.find(&later.id) < list.body.find(&run.id),
        "newest first"
    );
    assert!(
        list.body.contains("20250101T000000Z-broken.json"),
        "problems are listed"
    );
    assert!(list.body.contains(r#"action="/compare""#));

    let page = get(&format!("{base}/runs/{}", run.id), None);
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(page.body.contains("<svg"));
    for phase in &run.phases {
        for criterion in &phase.criteria {
            assert!(
                page.body.contains(&html_escaped(&criterion.name)),
                "{}",
                criterion.name
            );
        }
        for task in &phase.tasks {
            assert!(
                page.body.contains(&html_escaped(&task.name)),
                "{}",
                task.name
            );
        }
    }
    if run
        .phases
        .iter()
        .flat_map(|p| &p.criteria)
        .any(|c| !c.passed)
    {
        assert!(
            page.body
                .contains(r#"<span class="badge st-failed">fail</span>"#)
        );
    }
    if run.version.build == "debug" {
        assert!(page.body.contains("timings are not benchmarks"));
    }
    assert!(!page.body.contains("<local>"), "labels are escaped");
    // Each node's machine and effective config, as the nodes described themselves.
    for node in &run.nodes {
        assert!(
            page.body.contains(&node.hardware.hostname),
            "{}",
            node.target
        );
        let data_dir = node.config["data_dir"].as_str().unwrap();
        assert!(
            page.body
                .contains(&data_dir.replace('<', "&lt;").replace('>', "&gt;")),
            "{data_dir}"
        );
        assert!(!page.body.contains(data_dir), "config values are escaped");
    }

    let api = get(&format!("{base}/api/runs/{}", run.id), None);
    assert_eq!(api.status, 200);
    let served: Value = serde_json::from_str(&api.body).unwrap();
    let expected = serde_json::to_value(&run).unwrap();
    if let Some(difference) = first_difference(&served, &expected, "") {
        panic!("/api/runs/{} differs from the record: {difference}", run.id);
    }
    serde_json::from_value::<RunRecord>(served).expect("the API serves a RunRecord");
    let etag = api.headers["etag"].to_str().unwrap().to_string();
    let again = get(&format!("{base}/api/runs/{}", run.id), Some(&etag));
    assert_eq!(
        again.status, 304,
        "unchanged record answers 304 to its ETag"
    );

    let summaries: Value =
        serde_json::from_str(&get(&format!("{base}/api/runs"), None).body).unwrap();
    let ids: Vec<&str> = summaries["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [later.id.as_str(), run.id.as_str()]);
    assert_eq!(summaries["problems"].as_array().unwrap().len(), 1);

    let csv = get(&format!("{base}/runs/{}.csv", run.id), None);
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let rows = parse_csv(&csv.body);
    assert_eq!(rows[0][..3], ["phase", "task", "category"]);
    let tasks: Vec<(&str, &str)> = run
        .phases
        .iter()
        .flat_map(|p| {
            p.tasks
                .iter()
                .map(move |t| (p.plan.as_str(), t.name.as_str()))
        })
        .collect();
    assert_eq!(rows.len(), 1 + tasks.len(), "a header and one row per task");
    for (row, (plan, name)) in rows[1..].iter().zip(&tasks) {
        assert_eq!(row.len(), rows[0].len());
        assert_eq!((row[0].as_str(), row[1].as_str()), (*plan, *name));
    }

    let download = get(&format!("{base}/runs/{}.json", run.id), None);
    assert_eq!(download.status, 200);
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&download.body).unwrap()["id"],
        run.id.as_str()
    );

    let compare = get(&format!("{base}/compare?a={}&b={}", run.id, later.id), None);
    assert_eq!(compare.status, 200);
    assert!(compare.body.contains("B/A") && compare.body.contains("0.50×"));
    // The one setting the runs' nodes did not share is named; a node's own identity is not.
    assert!(
        compare
            .body
            .contains("<tr><td><code>vector.ef_search</code></td><td>64</td><td>128</td></tr>"),
        "{}",
        compare.body
    );
    assert!(!compare.body.contains("<code>data_dir</code>"));
    assert_eq!(
        get(&format!("{base}/compare?a={}", run.id), None).status,
        400
    );

    let missing = get(&format!("{base}/runs/20990101T000000Z-nothing"), None);
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no run") && missing.body.contains("<html"));
    let missing_api = get(&format!("{base}/api/runs/20990101T000000Z-nothing"), None);
    assert_eq!(missing_api.status, 404);
    let error: Value = serde_json::from_str(&missing_api.body).unwrap();
    assert!(error["error"].as_str().unwrap().contains("no run"));

    // `root/secret.json` is a valid record one level up: every way of naming it is refused.
    for path in [
        "/api/runs/..%2Fsecret",
        "/runs/..%2Fsecret",
        "/runs/..%2Fsecret.json",
        "/runs/..",
        "/api/runs/..",
        "/runs/%2E%2E",
    ] {
        let status = raw_status(base, path);
        assert_eq!(status, 400, "{path}");
    }
    let refused = get(&format!("{base}/api/runs/..%2Fsecret"), None);
    assert!(!refused.body.contains("SECRET-OUTSIDE-RUNS-DIR"));
    assert!(refused.body.contains("refused"), "{}", refused.body);

    // Chromium does not log failed loads as console messages, so check every asset a page
    // refers to here.
    for html in [&list.body, &page.body, &compare.body] {
        let refs: Vec<&str> = html
            .split("\"/assets/")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert!(refs.len() >= 2, "stylesheet and script are linked");
        for asset in refs {
            assert_eq!(
                get(&format!("{base}/assets/{asset}"), None).status,
                200,
                "{asset}"
            );
        }
    }
    for (asset, content_type) in [("report.css", "text/css"), ("report.js", "text/javascript")] {
        let fetched = get(&format!("{base}/assets/{asset}"), None);
        assert_eq!(fetched.status, 200, "{asset}");
        assert!(
            fetched.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type)
        );
    }
    assert_eq!(get(&format!("{base}/assets/nothing.js"), None).status, 404);
}

/// The console check must be able to fail: a page that logs an error and throws is caught.
#[test]
fn chromium_console_check_catches_page_errors() {
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("broken.html");
    std::fs::write(
        &page,
        "<!doctype html><html><body><script>console.error('deliberate error');\
         null.boom();</script></body></html>",
    )
    .unwrap();
    let rendered = chromium::render(&format!("file://{}", page.display()), work.path(), None);
    let console = rendered.console.join("\n");
    assert!(
        console.contains("deliberate error") && console.contains("Uncaught TypeError"),
        "the console check missed the page's errors; chromium stderr:\n{}",
        rendered.stderr
    );
}

#[test]
fn report_pages_render_in_headless_chromium_without_console_messages() {
    let root = tempfile::tempdir().unwrap();
    let (runs, run, later) = runs_dir_with_fixture(root.path());
    // A run still going: its page polls the API and must do so without errors.
    let mut running = run.clone();
    running.id = "20280101T000000Z-live".to_string();
    running.status = "running".to_string();
    running.finished_at = None;
    running.save(&runs).unwrap();
    let server = ReportProcess::start(&runs);
    let base = &server.base;

    let page = chromium::render(&format!("{base}/runs/{}", run.id), root.path(), None);
    assert!(
        page.console.is_empty(),
        "console messages:\n{}",
        page.console.join("\n")
    );
    let dom = &page.dom;
    assert!(dom.matches("<svg").count() >= 4, "charts in the DOM");
    assert!(
        dom.contains("<polyline") && dom.contains("<rect"),
        "lines and bars drawn"
    );
    assert!(dom.contains(r#"class="criteria""#));
    for criterion in run.phases.iter().flat_map(|p| &p.criteria) {
        assert!(
            dom.contains(&html_escaped(&criterion.name)),
            "{}",
            criterion.name
        );
    }

    // The live page's script runs its poll (virtual time skips the 2 s waits) and says so.
    let live = chromium::render(
        &format!("{base}/runs/{}", running.id),
        root.path(),
        Some(5_000),
    );
    assert!(
        live.console.is_empty(),
        "console messages:\n{}",
        live.console.join("\n")
    );
    assert!(live.dom.contains("data-poll="));
    assert!(
        live.dom.contains("last checked"),
        "the live page never polled"
    );

    for url in [
        format!("{base}/"),
        format!("{base}/compare?a={}&b={}", run.id, later.id),
    ] {
        let rendered = chromium::render(&url, root.path(), Some(3_000));
        assert!(
            rendered.console.is_empty(),
            "{url}:\n{}",
            rendered.console.join("\n")
        );
    }
}

/// A page of a run still going reloads itself when the record changes, and stops polling once
/// the run is over. The record is rewritten (atomically, as the harness does) every 100 ms
/// for 3 s, then finished; Chromium's virtual time lets the 2 s polls run without waiting.
#[test]
fn live_run_page_reloads_until_the_run_finishes() {
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("runs");
    let mut live = fixture_run();
    live.id = "20280101T000000Z-live".to_string();
    live.status = "running".to_string();
    live.finished_at = None;
    live.label = "live-0".to_string();
    live.save(&runs).unwrap();
    let server = ReportProcess::start(&runs);

    let writer = {
        let (runs, mut live) = (runs.clone(), live.clone());
        std::thread::spawn(move || {
            for n in 1..=30 {
                std::thread::sleep(Duration::from_millis(100));
                live.label = format!("live-{n}");
                live.save(&runs).unwrap();
            }
            live.label = "finished-run".to_string();
            live.status = "passed".to_string();
            live.finished_at = Some("2028-01-01T00:00:30Z".to_string());
            live.save(&runs).unwrap();
        })
    };
    let url = format!("{}/runs/{}", server.base, live.id);
    let rendered = chromium::render(&url, root.path(), Some(20_000));
    writer.join().unwrap();
    assert!(
        rendered.console.is_empty(),
        "console messages:\n{}",
        rendered.console.join("\n")
    );
    assert!(
        rendered.dom.contains("finished-run"),
        "the page did not reload to the finished run; it shows: {:?}",
        rendered
            .dom
            .split("<h1>")
            .nth(1)
            .map(|h| &h[..h.len().min(80)])
    );
    assert!(
        !rendered.dom.contains("data-poll="),
        "a finished run's page does not poll"
    );
}
