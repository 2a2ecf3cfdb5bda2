//! `tilewave-bench`: the benchmark harness of issue 18 (BENCHMARKS.md).
//!
//! Each measure starts real etcd and the service binaries as processes
//! (with `tilewave_testkit`), measures tilewave and, in the same run, the
//! floor it is compared with (a plain loop of the etcd transactions and
//! agent calls the work needs, a health check on the same connection, the
//! raw etcd transaction rate), and reports the ratio as the median of
//! several runs with its spread. Results are printed and written as JSON
//! under `--out` (default `target/bench/`).
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/tilewave-bench overhead --runs 5
//! target/release/tilewave-bench smoke          # every measure, tiny sizes (CI)
//! ```
//!
//! Not run in CI except `smoke` (through this crate's test), which keeps
//! the harness building and working.

mod failover;
mod memory;
mod overhead;
mod reads;
#[cfg(test)]
mod reconciler_reads;
mod report;
mod scale;
mod stack;
mod throughput;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "tilewave-bench",
    about = "Measures tilewave against the floor of etcd and agent calls in the same run (issue 18, BENCHMARKS.md)",
    after_help = "Examples:\n  tilewave-bench overhead --runs 5\n  tilewave-bench reads --rounds 11\n  tilewave-bench smoke --out /tmp/bench"
)]
struct Cli {
    /// Where the JSON results go (one file per measure).
    #[arg(long, global = true, default_value = "target/bench")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 1. One tile over 70 regions, zero bake: wall time against the floor.
    Overhead(overhead::Args),
    /// 2. Concurrent roll-outs: region-steps per second against raw etcd transactions per second.
    Throughput(throughput::Args),
    /// 3. kill -9 of an owning replica: time until another replica commits.
    Failover(failover::Args),
    /// 4. GetTile and ListTiles against a health check on the same connection.
    Reads(reads::Args),
    /// 5. The registry with many tiles and revisions; audit retention.
    Scale(scale::Args),
    /// 6. Resident memory of each service, idle and loaded.
    Memory(memory::Args),
    /// Every measure with tiny sizes: keeps the harness working (CI).
    Smoke,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut report = Report::new(&cli.out);
    match cli.command {
        Command::Overhead(a) => overhead::run(&a, &mut report).await?,
        Command::Throughput(a) => throughput::run(&a, &mut report).await?,
        Command::Failover(a) => failover::run(&a, &mut report).await?,
        Command::Reads(a) => reads::run(&a, &mut report).await?,
        Command::Scale(a) => scale::run(&a, &mut report).await?,
        Command::Memory(a) => memory::run(&a, &mut report).await?,
        Command::Smoke => smoke(&mut report).await?,
    }
    report.finish()
}

/// Every measure once with tiny sizes.
async fn smoke(report: &mut Report) -> anyhow::Result<()> {
    overhead::run(&overhead::Args::smoke(), report).await?;
    throughput::run(&throughput::Args::smoke(), report).await?;
    failover::run(&failover::Args::smoke(), report).await?;
    reads::run(&reads::Args::smoke(), report).await?;
    scale::run(&scale::Args::smoke(), report).await?;
    memory::run(&memory::Args::smoke(), report).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The harness runs end to end with tiny sizes (what CI keeps).
    #[tokio::test(flavor = "multi_thread")]
    async fn smoke_runs_every_measure() -> anyhow::Result<()> {
        let dir = tilewave_testkit::TestDir::new("bench-smoke")?;
        let mut report = crate::report::Report::new(dir.path());
        crate::smoke(&mut report).await?;
        report.finish()?;
        Ok(())
    }
}
