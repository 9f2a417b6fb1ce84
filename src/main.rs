//! The `sv-appliance` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// The static (musl) build: musl's allocator is much slower under parallel index building.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = sv_appliance::cli::Cli::parse();
    match sv_appliance::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sv-appliance: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
