//! A phase's data: generated at the plan's scale (seeded) or taken from the fetched Loghub
//! file, loaded through the normal write path, and waited for until searchable (and embedded,
//! when vectors are wanted). A target that already holds the topic is not loaded again.
//!
//! The `services` dataset (SV-1) is three topics of generated JSON lines, each loaded the same
//! way with `--format jsonl`, as a user would load their own JSON logs.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::plan::{DatasetSpec, ExtraTopic, Scale};
use super::record::DatasetRecord;
use crate::dataset::generate::{ServiceTopic, generate_services};
use crate::dataset::{InputFormat, LogFormat};
use crate::error::{Error, Result};
use crate::ingest::loader::{LoadOptions, load, wait_visible};

pub struct DatasetPlan<'a> {
    pub spec: &'a DatasetSpec,
    pub scale: &'a Scale,
    pub vectors: bool,
    pub partitions: u32,
    /// Where `fetch` put the Loghub files (`--datasets-dir`).
    pub datasets_dir: &'a Path,
    pub work: &'a Path,
    pub progress: bool,
    /// Run on whatever the target's topic already holds (`--reuse-data`).
    pub reuse: bool,
}

/// Loads the dataset (and the extra topic) into `target`; returns what was loaded.
pub async fn load_dataset(
    target: &str,
    targets: &[String],
    plan: &DatasetPlan<'_>,
) -> Result<DatasetRecord> {
    if plan.spec.is_services() {
        return load_services(target, targets, plan).await;
    }
    let client = super::http_client();
    let format = plan.spec.log_format();
    let topic = &plan.spec.topic;
    if let Some(existing) = existing_records(&client, target, topic).await? {
        // Data someone else loaded is only used when it is what the plan would load, or when
        // asked to: otherwise COUNT = records loaded would compare the data with itself.
        if !plan.reuse && existing != plan.scale.lines {
            return Err(Error::Conflict(format!(
                "{topic} on {target} already holds {existing} records, and this scale loads {}: use an empty node, or pass --reuse-data to run on what is there",
                plan.scale.lines
            )));
        }
        if plan.vectors {
            let stats: serde_json::Value = serde_json::from_str(
                &super::get(&client, &format!("{target}/_vector/{topic}/stats")).await?,
            )
            .map_err(Error::internal)?;
            if stats["total_vectors"].as_u64().unwrap_or(0) == 0 {
                return Err(Error::Conflict(format!(
                    "{topic} on {target} holds no vectors and this plan needs them: load it with vectors, or use an empty node"
                )));
            }
        }
        println!("  {topic} already holds {existing} records on {target}: not loaded again");
        if let Some(extra) = &plan.spec.extra_topic
            && existing_records(&client, target, &extra.topic)
                .await?
                .is_none()
        {
            load_extra(target, targets, plan, extra).await?;
        }
        return Ok(DatasetRecord {
            format: format.name().into(),
            source: format!(
                "already on the target ({existing} records; COUNT checks compare with that)"
            ),
            topic: topic.clone(),
            lines: existing,
            records_loaded: existing,
            rejected: 0,
            load_secs: 0.0,
            records_per_sec: 0.0,
            searchable_secs: 0.0,
            vectors: None,
            embed_secs: None,
        });
    }
    let (input, source) = input_file(plan, format, plan.scale.lines, plan.spec.seed).await?;
    let summary = load_topic(
        target,
        plan,
        topic.clone(),
        format.into(),
        input,
        plan.vectors,
        plan.progress,
    )
    .await?;
    let load_secs = summary.elapsed.as_secs_f64();
    let mut record = DatasetRecord {
        format: format.name().into(),
        source,
        topic: topic.clone(),
        lines: summary.lines_read,
        records_loaded: summary.accepted,
        rejected: summary.rejected,
        load_secs,
        records_per_sec: summary.lines_per_sec(),
        searchable_secs: summary
            .visible_after
            .map_or(0.0, |v| (v.as_secs_f64() - load_secs).max(0.0)),
        vectors: None,
        embed_secs: None,
    };
    println!(
        "  loaded {} {} records into {topic} in {load_secs:.1} s ({:.0}/s)",
        summary.accepted,
        format.name(),
        summary.lines_per_sec()
    );
    if let Some(extra) = &plan.spec.extra_topic {
        load_extra(target, targets, plan, extra).await?;
    }
    if targets.len() > 1 {
        // The load waited on the node it wrote to; a follower may still be applying. The
        // tasks compare nodes, so every one must hold and index all records first.
        let started = Instant::now();
        for target in targets {
            wait_visible(&client, target, topic, summary.accepted).await?;
        }
        println!(
            "  searchable on all {} nodes {:.1} s later",
            targets.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if plan.vectors {
        let started = Instant::now();
        let vectors = embedded_on_every_node(&client, targets, topic).await?;
        record.vectors = Some(vectors);
        record.embed_secs = Some(started.elapsed().as_secs_f64());
        println!(
            "  {vectors} records embedded and indexed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(record)
}

/// Loads only the extra topic into `target` (a baseline holding just that data).
pub async fn load_extra_topic(target: &str, plan: &DatasetPlan<'_>) -> Result<()> {
    match &plan.spec.extra_topic {
        Some(extra) => load_extra(target, &[target.to_string()], plan, extra).await,
        None => Err(Error::Config(
            "the plan's dataset has no extra topic".into(),
        )),
    }
}

/// The extra topic of multi-topic queries: a fraction of the main dataset's lines, loaded
/// through `target` and, when it has vectors, embedded on every one of `targets` before it
/// returns, so no embedding runs under the queries.
async fn load_extra(
    target: &str,
    targets: &[String],
    plan: &DatasetPlan<'_>,
    extra: &ExtraTopic,
) -> Result<()> {
    let extra_format: LogFormat = extra
        .format
        .parse()
        .map_err(|e| Error::Config(format!("{e}")))?;
    let lines = ((plan.scale.lines as f64 * extra.fraction).ceil() as u64).max(1);
    let (input, _) = input_file(plan, extra_format, lines, plan.spec.seed + 1).await?;
    let summary = load_topic(
        target,
        plan,
        extra.topic.clone(),
        extra_format.into(),
        input,
        extra.vectors,
        false,
    )
    .await?;
    println!(
        "  loaded {} {} records into {}",
        summary.accepted, extra.format, extra.topic
    );
    if extra.vectors {
        let started = Instant::now();
        let vectors = embedded_on_every_node(&super::http_client(), targets, &extra.topic).await?;
        println!(
            "  {vectors} records of {} embedded and indexed on every node in {:.1} s",
            extra.topic,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The three topics of the `services` dataset, `scale.lines` records each, with vectors when
/// the plan wants them. A topic the target already holds is kept (under the same rules as a
/// single-topic dataset); the record sums the three topics.
async fn load_services(
    target: &str,
    targets: &[String],
    plan: &DatasetPlan<'_>,
) -> Result<DatasetRecord> {
    let client = super::http_client();
    let lines = plan.scale.lines;
    let seed = plan.spec.seed;
    let names: Vec<&str> = ServiceTopic::ALL.iter().map(|t| t.name()).collect();
    let mut record = DatasetRecord {
        format: "services (jsonl)".into(),
        source: format!(
            "generated {} ({lines} records each, seed {seed})",
            names.join(", ")
        ),
        topic: names.join(", "),
        lines: 0,
        records_loaded: 0,
        rejected: 0,
        load_secs: 0.0,
        records_per_sec: 0.0,
        searchable_secs: 0.0,
        vectors: None,
        embed_secs: None,
    };
    let mut reused = Vec::new();
    // Records each topic holds on the first target, for the wait on the other nodes.
    let mut per_topic: Vec<(&str, u64)> = Vec::new();
    for topic in ServiceTopic::ALL {
        let name = topic.name();
        if let Some(existing) = existing_records(&client, target, name).await? {
            if !plan.reuse && existing != lines {
                return Err(Error::Conflict(format!(
                    "{name} on {target} already holds {existing} records, and this scale loads {lines}: use an empty node, or pass --reuse-data to run on what is there"
                )));
            }
            println!("  {name} already holds {existing} records on {target}: not loaded again");
            reused.push(name);
            per_topic.push((name, existing));
            record.lines += existing;
            record.records_loaded += existing;
            continue;
        }
        let input = plan.work.join(format!("{name}-{lines}-seed{seed}.jsonl"));
        if !input.exists() {
            let path = input.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
                generate_services(topic, lines, seed, &mut out)?;
                Ok(())
            })
            .await
            .map_err(Error::internal)??;
        }
        let summary = load_topic(
            target,
            plan,
            name.to_string(),
            InputFormat::Jsonl,
            input,
            plan.vectors,
            plan.progress,
        )
        .await?;
        let load_secs = summary.elapsed.as_secs_f64();
        println!(
            "  loaded {} generated {name} records in {load_secs:.1} s ({:.0}/s)",
            summary.accepted,
            summary.lines_per_sec()
        );
        per_topic.push((name, summary.accepted));
        record.lines += summary.lines_read;
        record.records_loaded += summary.accepted;
        record.rejected += summary.rejected;
        record.load_secs += load_secs;
        record.searchable_secs += summary
            .visible_after
            .map_or(0.0, |v| (v.as_secs_f64() - load_secs).max(0.0));
    }
    if !reused.is_empty() {
        record.source += &format!(
            "; {} already on the target (COUNT checks compare with that)",
            reused.join(", ")
        );
    }
    record.records_per_sec = record.records_loaded as f64 / record.load_secs.max(1e-9);
    if targets.len() > 1 {
        // As for one topic: every node must hold and index all records before tasks compare.
        for node in targets {
            for (name, expected) in &per_topic {
                wait_visible(&client, node, name, *expected).await?;
            }
        }
    }
    if plan.vectors {
        let started = Instant::now();
        let mut vectors = 0;
        for topic in ServiceTopic::ALL {
            vectors += embedded_on_every_node(&client, targets, topic.name()).await?;
        }
        let embed_secs = started.elapsed().as_secs_f64();
        record.vectors = Some(vectors);
        record.embed_secs = Some(embed_secs);
        println!(
            "  {vectors} records of the three topics embedded and indexed {embed_secs:.1} s after the loads"
        );
    }
    Ok(record)
}

/// Waits until every node has embedded and indexed all of `topic`'s records (every replica
/// embeds its own copy), and returns how many that is.
async fn embedded_on_every_node(
    client: &reqwest::Client,
    targets: &[String],
    topic: &str,
) -> Result<u64> {
    let mut vectors = 0;
    for node in targets {
        vectors =
            super::wait_for_vectors(client, node, topic, Duration::from_secs(6 * 3600)).await?;
    }
    Ok(vectors)
}

/// Loads `input` into `topic` through the normal write path with the plan's partitions, and
/// waits until it is searchable: every load of a plan's data goes through here.
async fn load_topic(
    target: &str,
    plan: &DatasetPlan<'_>,
    topic: String,
    format: InputFormat,
    input: PathBuf,
    vectors: bool,
    progress: bool,
) -> Result<crate::ingest::loader::LoadSummary> {
    load(&LoadOptions {
        target: target.to_string(),
        topic,
        format,
        input,
        batch_size: 5000,
        concurrency: 4,
        partitions: Some(plan.partitions),
        vector: Some(vectors),
        progress,
        wait_visible: true,
    })
    .await
}

/// Records the target already holds in `topic`, if the topic exists and is not empty.
async fn existing_records(
    client: &reqwest::Client,
    target: &str,
    topic: &str,
) -> Result<Option<u64>> {
    let response = client
        .get(format!("{target}/topics/{topic}"))
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("{target}: {e}")))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let table = crate::router::sql::sql_table_name(topic);
    let answer = super::post(
        client,
        &format!("{target}/_sql"),
        &json!({ "query": format!("SELECT COUNT(*) FROM {table}") }),
    )
    .await?;
    let count = super::assertions::scalar(&answer).unwrap_or(0);
    Ok((count > 0).then_some(count))
}

/// The file to load: generated (seeded) for `generate`, or the first `lines` of the fetched
/// Loghub file for `fetch`.
async fn input_file(
    plan: &DatasetPlan<'_>,
    format: LogFormat,
    lines: u64,
    seed: u64,
) -> Result<(PathBuf, String)> {
    let name = format.name();
    if plan.scale.source == "generate" {
        let path = plan.work.join(format!("{name}-{lines}-seed{seed}.log"));
        if !path.exists() {
            let started = Instant::now();
            super::generate_file(&path, format, lines, seed).await?;
            println!(
                "  generated {lines} {name}-like lines (seed {seed}) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        return Ok((path, format!("generated {name}-like lines (seed {seed})")));
    }
    let stem = match format {
        LogFormat::Thunderbird => "Thunderbird",
        LogFormat::Bgl => "BGL",
        LogFormat::Hdfs => "HDFS",
    };
    let full = plan.datasets_dir.join(format!("{stem}_full.log"));
    let verified = plan.datasets_dir.join(format!("{stem}_full.log.verified"));
    if !full.is_file() || !verified.is_file() {
        return Err(Error::NotFound(format!(
            "this scale needs the real {stem} dataset in {}: run `sv-appliance fetch {name} --dir {}` first (or pass --datasets-dir)",
            plan.datasets_dir.display(),
            plan.datasets_dir.display()
        )));
    }
    // The marker `fetch` wrote records the verified line count: the whole file needs no copy.
    let fetched_lines = std::fs::read(&verified)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["lines"].as_u64());
    if fetched_lines.is_some_and(|n| n <= lines) {
        return Ok((
            full.clone(),
            format!("{} (verified by fetch)", full.display()),
        ));
    }
    let subset = plan.work.join(format!("{stem}-first-{lines}.log"));
    let (full2, subset2) = (full.clone(), subset.clone());
    let copied = tokio::task::spawn_blocking(move || -> Result<u64> {
        let reader = std::io::BufReader::new(std::fs::File::open(&full2)?);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&subset2)?);
        let mut n = 0;
        for line in reader.split(b'\n') {
            if n == lines {
                break;
            }
            out.write_all(&line?)?;
            out.write_all(b"\n")?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    })
    .await
    .map_err(Error::internal)??;
    Ok((
        subset,
        format!("first {copied} lines of {}", full.display()),
    ))
}
