//! Measure: memory (issue 18). Not built yet.

/// Options of `tilewave-bench memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many runs.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self { runs: 1 }
    }
}

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut crate::report::Report) -> anyhow::Result<()> {
    let _ = (args, report);
    println!("memory: not built yet");
    Ok(())
}
