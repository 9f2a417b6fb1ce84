//! `sv-appliance demo`: the offline main job as far as it is built today — a single node, a
//! generated Thunderbird-like dataset, the load, and the plan's SV-2a queries timed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{ConfigOverrides, NodeConfig};
use crate::dataset::LogFormat;
use crate::dataset::generate::{GenOptions, generate};
use crate::error::{Error, Result};
use crate::ingest::loader::{LoadOptions, load};
use crate::node::Node;
use crate::router::{AppState, app};

/// The plan's SV-2a text queries (`warning` also with size 100).
pub const TEXT_QUERIES: &[(&str, usize)] = &[
    ("error", 10),
    ("warning", 10),
    ("failure", 10),
    ("timeout", 10),
    ("kernel", 10),
    ("network interface down", 10),
    ("disk I/O error", 10),
    ("memory allocation failed", 10),
    ("error AND kernel", 10),
    ("warning AND network AND interface", 10),
    ("warning", 100),
];

/// The plan's SV-2a SQL queries; the time-range bound is filled in from the data.
pub const SQL_QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM thunderbird_hot",
    "SELECT COUNT(*) FROM thunderbird",
    "SELECT severity, COUNT(*) FROM thunderbird GROUP BY severity",
    "SELECT * FROM thunderbird_hot WHERE severity = 'ERROR' LIMIT 50",
    "SELECT * FROM thunderbird WHERE timestamp > {MID} LIMIT 20",
];

pub struct DemoOptions {
    pub lines: u64,
    pub iterations: usize,
    pub listen: String,
    /// Keep serving after the queries until Ctrl-C.
    pub keep_serving: bool,
}

pub async fn run(options: DemoOptions) -> Result<()> {
    let work = tempfile_dir()?;
    let env = std::collections::HashMap::new();
    let overrides = ConfigOverrides {
        data_dir: Some(work.join("data")),
        listen: Some(options.listen.clone()),
        node_id: None,
    };
    let config = NodeConfig::load(None, &env, &overrides)?;
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot listen on {}: {e} (try --listen 127.0.0.1:0)",
                config.api.listen
            ))
        })?;
    let addr = listener.local_addr()?;
    let node = Node::start(config).await?;
    let state = AppState::new(node.clone())?;
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let base = format!("http://{addr}");
    println!(
        "sv-appliance demo: single node at {base}, data in {}",
        work.display()
    );
    println!(
        "not built yet: the demo on a 3-node cluster and the SV-3/4 plans (the cluster itself runs with `cluster up --local 3`), the report page; `bench sv1` and `bench sv2b` run the vector plans at full size"
    );
    if cfg!(debug_assertions) {
        println!(
            "this is a debug build: its timings are not benchmarks (scripts/bench-sv2a.sh builds release)"
        );
    }

    let input = work.join("thunderbird.log");
    let started = Instant::now();
    let lines = options.lines;
    let input_for_gen = input.clone();
    tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input_for_gen)?);
        let n = generate(
            LogFormat::Thunderbird,
            &GenOptions {
                lines,
                seed: 7,
                ..GenOptions::default()
            },
            &mut out,
        )?;
        std::io::Write::flush(&mut out)?;
        Ok(n)
    })
    .await
    .map_err(Error::internal)??;
    println!(
        "generated {lines} Thunderbird-like lines in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let summary = load(&LoadOptions {
        target: base.clone(),
        topic: "thunderbird".into(),
        format: LogFormat::Thunderbird,
        input: input.clone(),
        batch_size: 5000,
        concurrency: 4,
        partitions: None,
        vector: None,
        progress: true,
        wait_visible: true,
    })
    .await?;
    print!("{}", summary.render());

    print_sv2a_table(&base, "thunderbird", options.iterations).await?;
    print_vector_table(&base, "thunderbird", options.iterations).await?;
    if options.keep_serving {
        println!(
            "\nserving at {base} until Ctrl-C (POST /_search, /_sql, /_vector/{{topic}}/search, /_query; GET /topics, /metrics)"
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    server.abort();
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Waits for the topic's vectors, then times the plan's semantic (SV-2b) and hybrid (SV-2c)
/// queries, first call (embeds the query) and cached, and one orchestrator query.
pub async fn print_vector_table(base: &str, topic: &str, iterations: usize) -> Result<()> {
    use crate::bench::{HYBRID_QUERIES, SEMANTIC_QUERIES, print_header, print_row};
    let client = reqwest::Client::new();
    let started = Instant::now();
    let vectors =
        crate::bench::wait_for_vectors(&client, base, topic, Duration::from_secs(3600)).await?;
    println!(
        "\n{vectors} records embedded with the local model and indexed in HNSW ({:.1} s after the load finished)",
        started.elapsed().as_secs_f64()
    );
    print_header("query (SV-2b/c), k=10");
    let search = format!("{base}/_vector/{topic}/search");
    for q in SEMANTIC_QUERIES {
        let body = json!({ "query": q, "k": 10 });
        let (first, _) = crate::bench::timed(&client, &search, &body, 0, 1).await?;
        let (cached, response) =
            crate::bench::timed(&client, &search, &body, 0, iterations).await?;
        print_row(&format!("vector {q:?}"), &cached);
        print_row("  first call (embeds the query)", &first);
        if let Some(top) = response["results"][0]["text_preview"].as_str() {
            println!("  top hit: {}", top.chars().take(70).collect::<String>());
        }
    }
    for q in HYBRID_QUERIES {
        let body = json!({ "query": q, "k": 10 });
        let url = format!("{base}/_vector/{topic}/hybrid");
        let (times, _) = crate::bench::timed(&client, &url, &body, 1, iterations).await?;
        print_row(&format!("hybrid {q:?}"), &times);
    }
    let body = json!({ "sources": [{ "topic": topic, "modes": ["text", "vector"] }],
        "q": { "text": HYBRID_QUERIES[0] }, "k": 10 });
    let (times, response) =
        crate::bench::timed(&client, &format!("{base}/_query"), &body, 1, iterations).await?;
    print_row("orchestrator text+vector", &times);
    println!(
        "  backends complete: {}, candidates: {}",
        response["stats"]["complete"], response["stats"]["candidates"]
    );
    Ok(())
}

/// Times the plan's SV-2a queries against `base` (topic `topic`) and prints one row per query.
pub async fn print_sv2a_table(base: &str, topic: &str, iterations: usize) -> Result<()> {
    let client = reqwest::Client::new();
    let table = crate::router::sql::sql_table_name(topic);
    let mid = sql_scalar(
        &client,
        base,
        &format!("SELECT CAST(AVG(timestamp) AS BIGINT) FROM {table}"),
    )
    .await?;
    println!(
        "\n{:<52} {:>8} {:>10} {:>10}",
        "query (SV-2a)", "hits", "p50 ms", "max ms"
    );
    for (q, size) in TEXT_QUERIES {
        let body = json!({ "q": q, "size": size });
        let url = format!("{base}/{topic}/_search");
        let (times, response) = crate::bench::timed(&client, &url, &body, 1, iterations).await?;
        let hits = response["hits"]["total"]["value"].as_u64().unwrap_or(0);
        print_row(&format!("text {q:?} size={size}"), hits, &times);
    }
    for q in SQL_QUERIES {
        let query = q
            .replace("{MID}", &mid.to_string())
            .replace("thunderbird", &table);
        let body = json!({ "query": query });
        let (times, response) =
            crate::bench::timed(&client, &format!("{base}/_sql"), &body, 1, iterations).await?;
        let rows = response["row_count"].as_u64().unwrap_or(0);
        print_row(&query, rows, &times);
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sv-appliance-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn sql_scalar(client: &reqwest::Client, base: &str, query: &str) -> Result<i64> {
    let response =
        crate::bench::post(client, &format!("{base}/_sql"), &json!({ "query": query })).await?;
    response["rows"][0]
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::internal(format!("no scalar in {response}")))
}

fn print_row(name: &str, hits: u64, times: &[Duration]) {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let p50 = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    let name: String = name.chars().take(52).collect();
    println!("{name:<52} {hits:>8} {p50:>10.2} {max:>10.2}");
}
