//! `sv-appliance demo`: the offline main job — every plan (SV-1 … SV-4) at demo scale on nodes
//! it starts (standalone node processes, and a local cluster of three for SV-3 and SV-4), the
//! verdict in the terminal and on the report page.

use std::path::PathBuf;

use crate::bench::runner::RunOptions;
use crate::error::{Error, Result};

pub struct DemoOptions {
    /// `demo` (the README's main job, minutes) or `tiny` (seconds, for tests).
    pub scale: String,
    /// Address of the report page.
    pub listen: String,
    /// Keep serving the report after the run until Ctrl-C.
    pub keep_serving: bool,
    pub runs_dir: PathBuf,
    pub progress: bool,
}

/// Runs every plan (SV-1 … SV-4) at the chosen scale on nodes it starts itself, with the
/// report page live from the start; prints the verdicts; serves the report until Ctrl-C.
pub async fn run(options: DemoOptions) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot listen on {} for the report: {e} (try --listen 127.0.0.1:0)",
                options.listen
            ))
        })?;
    let addr = listener.local_addr()?;
    let report = crate::report::router(options.runs_dir.clone());
    let server = tokio::spawn(async move { axum::serve(listener, report).await });
    println!(
        "sv-appliance demo: every plan at {} scale, offline",
        options.scale
    );
    println!(
        "report (live while the run goes) at http://{addr}/ — runs kept in {}",
        options.runs_dir.display()
    );
    if cfg!(debug_assertions) {
        println!(
            "this is a debug build: the run is labelled so and its timings are not benchmarks (cargo run --release -- demo)"
        );
    }
    let plans = crate::bench::command::plans_from(&["all".to_string()])?;
    let run = crate::bench::runner::run_until_interrupted(RunOptions {
        plans,
        scale: options.scale.clone(),
        targets: Vec::new(),
        runs_dir: options.runs_dir.clone(),
        datasets_dir: PathBuf::from("./datasets"),
        work_dir: std::env::temp_dir().join(format!("sv-appliance-demo-{}", std::process::id())),
        label: "demo".into(),
        reuse_data: false,
        hosts: None,
        id: None,
        progress: options.progress,
    });
    let record = run.await?;
    println!("\n{}", crate::bench::summary::render(&record));
    println!("report: http://{addr}/runs/{}", record.id);
    if options.keep_serving {
        println!("serving the report until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
    }
    server.abort();
    if record.status == "error" {
        return Err(Error::Unavailable(format!(
            "the demo run could not finish: {}",
            record.error.unwrap_or_default()
        )));
    }
    Ok(())
}
