//! The command line: `serve`, `gen`, `fetch`, `load`, `validate`, `bench`, `demo`, `cluster`, `up`,
//! `down`, `status`, `logs`, `supervise`, `report`, and what each one runs.

use axum::serve::ListenerExt;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigOverrides, NodeConfig};
use crate::dataset::generate::{GenOptions, ServiceTopic, generate, generate_services};
use crate::dataset::{InputFormat, LogFormat};
use crate::error::{Error, Result};
use crate::ingest::loader::{LoadOptions, load};
use crate::node::Node;
use crate::router::{AppState, app};

/// A search node and the harness that measures it.
#[derive(Debug, Parser)]
#[command(name = "sv-appliance", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: HTTP API, raft groups, indexes.
    Serve(ServeArgs),
    /// Write realistic synthetic log lines (deterministic for a seed).
    Gen(GenArgs),
    /// Download a Loghub-2.0 dataset from Zenodo: resumable, md5-checked, unpacked, line-counted.
    Fetch(FetchArgs),
    /// Parse a log file and load it into a topic on a running node.
    Load(LoadArgs),
    /// Check a node configuration without starting anything (exit 0 valid, 1 invalid).
    Validate(ValidateArgs),
    /// The scale-test plans: run them (on nodes it starts, --target URLs or --nodes hosts),
    /// list and compare runs.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Offline demo: every plan (SV-1 … SV-4) at demo scale on nodes it starts, the verdict
    /// in the terminal and on the report page.
    Demo(DemoArgs),
    /// A cluster of node processes on this machine: up, status, kill, restart, down.
    #[command(subcommand)]
    Cluster(crate::cluster::command::ClusterCommand),
    /// Install or upgrade the cluster on hosts over SSH and start it (systemd units).
    Up(UpArgs),
    /// Stop and disable the service on the hosts (data kept unless --purge).
    Down(DownArgs),
    /// Per host: service state, version, raft role, partitions led, lag.
    Status(crate::deploy::HostsArgs),
    /// The node's recent log lines on one host.
    Logs(LogsArgs),
    /// Keep one node running: validate, serve, restart on failure (the systemd unit's job, for
    /// hosts without systemd; `up --service-manager process` starts it).
    Supervise(SuperviseArgs),
    /// The benchmark report: a web page over the recorded runs (tables, charts, compare, CSV).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub hosts: crate::deploy::HostsArgs,
    /// Print every change instead of making it (hosts are still probed, read-only).
    #[arg(long)]
    pub dry_run: bool,
    /// Binary to install (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// How long to wait for the cluster to become healthy.
    #[arg(long, default_value_t = 180)]
    pub wait_secs: u64,
    /// Copies of each partition (default: one per host). Applies to topics created after it
    /// is set; `bench run SV-4 --nodes` measures fan-out at 1.
    #[arg(long)]
    pub replication_factor: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub hosts: crate::deploy::HostsArgs,
    /// Also delete each node's data directory.
    #[arg(long)]
    pub purge: bool,
    /// Print every change instead of making it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The host whose node log to show.
    pub host: String,
    /// Lines from the end.
    #[arg(long, default_value_t = 200)]
    pub lines: usize,
    #[command(flatten)]
    pub ssh: crate::deploy::SshArgs,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    /// Node configuration file.
    #[arg(long)]
    pub config: PathBuf,
    /// Where the pid files go (the node's output goes to this command's stdout/stderr).
    #[arg(long)]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Address of the report page (loopback unless you choose otherwise; port 0: any free).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory of run records (default: `SV_RUNS_DIR`, else ./sv-runs).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run plans (SV-1 … SV-4 or `all`): set up nodes or use --target, load the data, run
    /// the tasks, judge the plan's criteria, and record the run for `report`.
    Run(crate::bench::command::RunArgs),
    /// The plans and the recorded runs.
    List {
        #[arg(long)]
        runs_dir: Option<PathBuf>,
    },
    /// Two recorded runs side by side (ids, unique id prefixes, or `latest`).
    Compare {
        run_a: String,
        run_b: String,
        #[arg(long)]
        runs_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// `demo` (minutes on 2 cores) or `tiny` (seconds; what the tests run).
    #[arg(long, default_value = "demo")]
    pub scale: String,
    /// Address of the report page.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where the run record goes (`SV_RUNS_DIR`, default ./sv-runs).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Exit after the run instead of serving the report until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Node configuration file (TOML); see configs/default.toml.
    #[arg(long, env = "SV_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the config's data_dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// API address, e.g. 127.0.0.1:6092 (overrides api.listen).
    #[arg(long)]
    pub listen: Option<String>,
    /// Node id (overrides node_id).
    #[arg(long)]
    pub node_id: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Log format: thunderbird, bgl or hdfs; or a topic of SV-1's services dataset, written as
    /// JSON lines (`load --format jsonl`): app-logs, support-tickets or system-events.
    pub format: GenDataset,
    /// Number of lines.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// Seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Output file (`-` for stdout).
    #[arg(short, long, default_value = "-")]
    pub output: PathBuf,
    /// Share of alert lines (Thunderbird's full log: 0.0154).
    #[arg(long, default_value_t = 0.015)]
    pub alert_rate: f64,
    /// Share of lines that break the grammar, to exercise reject paths.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// End lines with CRLF like the Loghub v1 files.
    #[arg(long)]
    pub crlf: bool,
}

/// What `gen` writes: Loghub-like lines of a format, or one topic of the services dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenDataset {
    Log(LogFormat),
    Services(ServiceTopic),
}

impl std::str::FromStr for GenDataset {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Ok(format) = s.parse::<LogFormat>() {
            return Ok(GenDataset::Log(format));
        }
        s.parse::<ServiceTopic>()
            .map(GenDataset::Services)
            .map_err(|_| {
                format!(
                    "unknown dataset `{s}`: expected thunderbird, bgl, hdfs, app-logs, support-tickets or system-events"
                )
            })
    }
}

impl std::fmt::Display for GenDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenDataset::Log(format) => format.fmt(f),
            GenDataset::Services(topic) => topic.fmt(f),
        }
    }
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Dataset: thunderbird (16,601,745 lines), bgl or hdfs.
    pub dataset: LogFormat,
    /// Where `<Name>_full.log` goes.
    #[arg(long, default_value = "./datasets")]
    pub dir: PathBuf,
    /// A server with Zenodo's paths (`/api/records/8275861`, `/records/8275861/files/NAME.zip`).
    #[arg(long, env = "SV_DATASET_MIRROR")]
    pub mirror: Option<String>,
    /// No network: succeed only if the dataset is already here and verified.
    #[arg(long)]
    pub offline: bool,
    /// Lines to expect instead of the published count (a mirror of another version).
    #[arg(long)]
    pub expect_lines: Option<u64>,
    /// The archive's md5 as you trust it (from Zenodo's record page): verified instead of the
    /// md5 the record serves, which on a mirror is the mirror's own word.
    #[arg(long, value_name = "HEX")]
    pub md5: Option<String>,
    /// Seconds a download connection may send nothing before it is dropped and resumed.
    #[arg(long, default_value_t = 60.0, value_parser = positive_secs)]
    pub read_timeout_secs: f64,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// File to load: plain, .gz or .zst; `-` reads stdin.
    pub input: PathBuf,
    /// Topic to load into (created if missing).
    #[arg(long, default_value = "thunderbird")]
    pub topic: String,
    /// Line format: thunderbird, bgl, hdfs, or jsonl (one JSON object per line with the
    /// record's fields: timestamp in epoch seconds, host and message required; label,
    /// location, component, pid and level optional).
    #[arg(long, default_value = "thunderbird")]
    pub format: InputFormat,
    /// Node API base URL.
    #[arg(long, env = "SV_TARGET", default_value = "http://127.0.0.1:6092")]
    pub target: String,
    /// Records per request.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Partitions if the topic is created here (default: the node's default).
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Embed the records for vector search, if the topic is created here (default: the
    /// node's `vector.enabled`).
    #[arg(long)]
    pub vector: Option<bool>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Don't wait for the loaded records to become searchable.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Node configuration file to check.
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            crate::telemetry::init_logging("info");
            runtime()?.block_on(serve(args))
        }
        Command::Gen(args) => gen_command(args),
        Command::Fetch(args) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(fetch_command(args))
        }
        Command::Load(args) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(load_command(args))
        }
        Command::Bench(BenchCommand::Run(args)) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(crate::bench::command::run_command(args))
        }
        Command::Bench(BenchCommand::List { runs_dir }) => {
            crate::bench::command::list_command(runs_dir)
        }
        Command::Bench(BenchCommand::Compare {
            run_a,
            run_b,
            runs_dir,
        }) => crate::bench::command::compare_command(&run_a, &run_b, runs_dir),
        Command::Demo(args) => {
            crate::telemetry::init_logging("warn");
            let options = crate::demo::DemoOptions {
                scale: args.scale,
                listen: args.listen,
                keep_serving: !args.exit,
                runs_dir: crate::bench::record::runs_dir(args.runs_dir),
                progress: !args.no_progress,
            };
            runtime()?.block_on(crate::demo::run(options))
        }
        Command::Cluster(command) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(crate::cluster::command::run(command))
        }
        Command::Up(args) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(crate::deploy::up::run(crate::deploy::up::UpOptions {
                hosts: args.hosts,
                dry_run: args.dry_run,
                binary: args.binary,
                wait: std::time::Duration::from_secs(args.wait_secs),
                replication_factor: args.replication_factor,
            }))
        }
        Command::Down(args) => crate::deploy::ops::down(&args.hosts, args.purge, args.dry_run),
        Command::Status(hosts) => {
            crate::telemetry::init_logging("warn");
            runtime()?.block_on(crate::deploy::ops::status(&hosts))
        }
        Command::Logs(args) => crate::deploy::ops::logs(&args.host, &args.ssh, args.lines),
        Command::Supervise(args) => {
            runtime()?.block_on(crate::deploy::supervise::run(args.config, args.run_dir))
        }
        Command::Report(args) => {
            crate::telemetry::init_logging("warn");
            let runs_dir = crate::bench::record::runs_dir(args.runs_dir);
            runtime()?.block_on(crate::report::serve(&args.listen, runs_dir))
        }
        Command::Validate(args) => {
            // The same layers `serve` applies (SV_* environment included), so the unit's
            // ExecStartPre checks the config that will be served.
            let env: HashMap<String, String> = std::env::vars().collect();
            let config = NodeConfig::load(Some(&args.config), &env, &ConfigOverrides::default())?;
            println!(
                "{}: valid (node {}, api {})",
                args.config.display(),
                config.node_id,
                config.api.listen
            );
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::internal)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = ConfigOverrides {
        node_id: args.node_id,
        data_dir: args.data_dir,
        listen: args.listen,
    };
    let config = NodeConfig::load(args.config.as_deref(), &env, &overrides)?;
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.api.listen)))?;
    let addr = listener.local_addr()?;
    // Bound before the node starts so a taken port fails fast, and so peers can reach the
    // raft groups as soon as they exist.
    let raft_listener = if config.cluster.is_clustered() {
        let raft_addr = &config.cluster.raft_listen;
        Some(
            tokio::net::TcpListener::bind(raft_addr)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {raft_addr}: {e}")))?,
        )
    } else {
        None
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The router state exists before the node finishes opening: the raft port serves the
    // query parts peers send (which run on the router's engines) as soon as it listens.
    let mut state_slot = None;
    let node = Node::start_with(config, |node| {
        let state = AppState::new(node.clone());
        if let (Some(listener), Ok(state)) = (raft_listener, &state) {
            let reads = crate::router::remote::internal_routes(state.clone());
            let internal = crate::cluster::rpc::app(node.clone(), reads);
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener.tap_io(no_delay), internal)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "raft port stopped");
                }
            });
        }
        state_slot = Some(state);
    })
    .await?;
    let state = state_slot.ok_or_else(|| Error::internal("node started without a router"))??;
    tracing::info!(%addr, data_dir = %node.config.data_dir.display(), "sv-appliance node serving");
    eprintln!("sv-appliance: API on http://{addr}");
    if node.config.cluster.is_clustered() {
        eprintln!(
            "sv-appliance: node {} raft on {}",
            node.config.node_id, node.config.cluster.raft_listen
        );
    }
    // Listening and data open: systemd may consider the unit started.
    crate::deploy::notify::notify("READY=1");
    axum::serve(listener.tap_io(no_delay), app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    crate::deploy::notify::notify("STOPPING=1");
    let _ = stop_tx.send(true);
    node.shutdown().await;
    Ok(())
}

/// Answers go out as written: with Nagle's algorithm a body written after its headers waits
/// for the client's delayed ACK (about 40 ms on Linux), which dwarfed a peer's scan answer.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn gen_command(args: GenArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.alert_rate) || !(0.0..=1.0).contains(&args.malformed_rate) {
        return Err(Error::bad_request(
            "--alert-rate and --malformed-rate must be between 0 and 1",
        ));
    }
    let options = GenOptions {
        lines: args.lines,
        seed: args.seed,
        alert_rate: args.alert_rate,
        malformed_rate: args.malformed_rate,
        crlf: args.crlf,
        ..GenOptions::default()
    };
    let started = Instant::now();
    let to_stdout = args.output.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&args.output).map_err(|e| {
            Error::bad_request(format!("cannot create {}: {e}", args.output.display()))
        })?)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let n = match args.format {
        GenDataset::Log(format) => generate(format, &options, &mut out)?,
        // JSON lines have no alert labels, malformed lines or CRLF variant.
        GenDataset::Services(topic) => generate_services(topic, args.lines, args.seed, &mut out)?,
    };
    out.flush()?;
    // The summary goes to stderr, and only for files, so piped output stays pure log lines.
    if !to_stdout {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "wrote {n} {} lines to {} in {secs:.2} s ({:.0} lines/s)",
            args.format,
            args.output.display(),
            n as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// A duration in seconds that is a number above zero.
fn positive_secs(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!("{text:?} is not a number of seconds above 0")),
    }
}

async fn fetch_command(args: FetchArgs) -> Result<()> {
    use crate::dataset::fetch::{FetchOptions, fetch};
    let pinned = args.md5.is_some();
    let options = FetchOptions {
        format: args.dataset,
        dir: args.dir,
        mirror: args.mirror,
        offline: args.offline,
        expect_lines: args.expect_lines,
        md5: args.md5,
        read_timeout: std::time::Duration::from_secs_f64(args.read_timeout_secs),
        progress: !args.no_progress,
    };
    let outcome = fetch(&options).await?;
    let what = match (outcome.already, pinned) {
        (true, _) => "already fetched (nothing to do)",
        (false, true) => "fetched, md5 (as pinned with --md5) and line count verified",
        (false, false) => "fetched, md5 and line count verified",
    };
    println!(
        "{}: {what}: {} lines, {} bytes",
        outcome.log.display(),
        outcome.lines,
        outcome.bytes
    );
    Ok(())
}

async fn load_command(args: LoadArgs) -> Result<()> {
    let options = LoadOptions {
        target: args.target,
        topic: args.topic,
        format: args.format,
        input: args.input,
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        partitions: args.partitions,
        vector: args.vector,
        progress: !args.no_progress,
        wait_visible: !args.no_wait,
    };
    let summary = load(&options).await?;
    print!("{}", summary.render());
    Ok(())
}
