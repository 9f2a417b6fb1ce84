//! `bench run | list | compare`: the plan runner's command line.

use std::path::PathBuf;

use clap::Args;

use super::faults::DeployedHosts;
use super::plan::{BUILT_IN, Plan};
use super::record::{find_run, list_runs, runs_dir};
use super::runner::{RunOptions, run_until_interrupted};
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plans to run: SV-1, SV-2a, SV-2b, SV-2c, SV-3, SV-4, `all` (`bench list` shows them),
    /// or a plan file of your own (`*.toml`, same format as configs/plans/).
    #[arg(required = true)]
    pub plans: Vec<String>,
    /// `tiny` (seconds), `demo` (minutes) or `full` (the plan's own size; needs `fetch`).
    #[arg(long, default_value = "demo")]
    pub scale: String,
    /// Run against these nodes instead of starting local ones (repeatable). The data is
    /// loaded unless the topic already holds records; SV-3's kill scenario needs local nodes
    /// or --nodes.
    #[arg(long = "target", conflicts_with = "nodes")]
    pub targets: Vec<String>,
    /// Run against the cluster `up` deployed on these hosts (comma separated, as given to
    /// `up`): queries go to their APIs, SV-3's kills go to their service manager over ssh,
    /// and the run is stored on every node with the token read from them.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// HTTP API port on every host (with --nodes).
    #[arg(long, default_value_t = 6092)]
    pub api_port: u16,
    #[command(flatten)]
    pub ssh: crate::deploy::SshArgs,
    /// Where run records go (`SV_RUNS_DIR`, default ./sv-runs).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// With --target: run on the data the topic already holds even when its size is not the
    /// scale's (COUNT checks then compare with the count found).
    #[arg(long)]
    pub reuse_data: bool,
    /// Where `fetch` put the Loghub files (full scale).
    #[arg(long, default_value = "./datasets")]
    pub datasets_dir: PathBuf,
    /// Lines to load instead of the scale's (generated, or the first N of the fetched file).
    #[arg(long)]
    pub lines: Option<u64>,
    /// No progress bars (logs, CI).
    #[arg(long)]
    pub no_progress: bool,
}

pub fn plans_from(names: &[String]) -> Result<Vec<Plan>> {
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        return BUILT_IN.iter().map(|(_, s)| Plan::parse(s)).collect();
    }
    names
        .iter()
        .map(|n| {
            if n.ends_with(".toml") {
                let text = std::fs::read_to_string(n)
                    .map_err(|e| Error::BadRequest(format!("plan file {n}: {e}")))?;
                Plan::parse(&text).map_err(|e| Error::BadRequest(format!("{n}: {e}")))
            } else {
                Plan::built_in(n)
            }
        })
        .collect()
}

pub async fn run_command(args: RunArgs) -> Result<()> {
    let mut plans = plans_from(&args.plans)?;
    if let Some(lines) = args.lines {
        if lines == 0 {
            return Err(Error::BadRequest("--lines must be at least 1".into()));
        }
        for plan in &mut plans {
            if let Some(scale) = plan.scale.get_mut(&args.scale) {
                // The record keeps the plan's text: say there what was changed.
                plan.source.push_str(&format!(
                    "\n# Run with --lines {lines}: overrides [scale.{}] lines = {}.\n",
                    args.scale, scale.lines
                ));
                scale.lines = lines;
            }
        }
    }
    for target in &args.targets {
        if !(target.starts_with("http://") || target.starts_with("https://")) {
            return Err(Error::BadRequest(format!(
                "--target {target:?} is not a URL like http://host:6092"
            )));
        }
    }
    let hosts = if args.nodes.is_empty() {
        None
    } else {
        let hosts = tokio::task::block_in_place(|| {
            DeployedHosts::probe(&args.nodes, args.api_port, &args.ssh)
        })?;
        println!(
            "deployed cluster: {}",
            hosts
                .nodes
                .iter()
                .map(|n| format!("node {} on {} ({})", n.id, n.host, n.base_url))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Some(hosts)
    };
    let targets: Vec<String> = match &hosts {
        Some(h) => h.targets(),
        None => args
            .targets
            .iter()
            .map(|t| t.trim_end_matches('/').to_string())
            .collect(),
    };
    let label = if plans.len() == BUILT_IN.len() {
        "all".to_string()
    } else {
        plans
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
            .join("+")
    };
    if cfg!(debug_assertions) {
        println!(
            "debug build: the run is recorded as such; its timings are not benchmarks (build with --release)"
        );
    }
    let record = run_until_interrupted(RunOptions {
        plans,
        scale: args.scale,
        targets,
        hosts,
        runs_dir: runs_dir(args.runs_dir),
        datasets_dir: args.datasets_dir,
        work_dir: std::env::temp_dir().join(format!("sv-bench-{}", std::process::id())),
        label,
        reuse_data: args.reuse_data,
        id: None,
        progress: !args.no_progress,
    })
    .await?;
    println!("\n{}", super::summary::render(&record));
    match record.status.as_str() {
        "passed" => Ok(()),
        status => Err(Error::Unavailable(format!(
            "run {} {status}: see the table above or `sv-appliance report`",
            record.id
        ))),
    }
}

pub fn list_command(runs: Option<PathBuf>) -> Result<()> {
    println!("plans:");
    for (id, source) in BUILT_IN {
        let plan = Plan::parse(source)?;
        let scales: Vec<String> = plan
            .scale
            .iter()
            .map(|(name, s)| format!("{name} {} lines", s.lines))
            .collect();
        println!("  {id:<6} {} ({})", plan.title, scales.join(", "));
    }
    let dir = runs_dir(runs);
    let (runs, problems) = list_runs(&dir);
    println!("\nruns in {}:", dir.display());
    print!("{}", super::compare::render_list(&runs, &problems));
    Ok(())
}

pub fn compare_command(a: &str, b: &str, runs: Option<PathBuf>) -> Result<()> {
    let dir = runs_dir(runs);
    let (a, b) = (find_run(&dir, a)?, find_run(&dir, b)?);
    print!("{}", super::compare::render_compare(&a, &b));
    Ok(())
}
