//! `elastic-pool`: run an autoscaling worker pool against load traces and score it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use elastic_pool_cli::app::{self, RunOpts};
use elastic_pool_cli::contender::DEFAULT_CONTENDERS;

#[derive(Parser)]
#[command(
    name = "elastic-pool",
    version,
    about = "Drive the elastic-pool autoscaler with open-loop load traces and score it against \
             a clairvoyant Erlang-C oracle",
    after_help = "Scores come from per-task records, with queue wait measured from each task's \
                  intended arrival. `--virtual` runs a discrete-event model in virtual time: a \
                  model, not a measurement."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one contender on a trace: progress bar, summary table, timeline.csv and timeline.svg.
    Simulate {
        #[command(flatten)]
        run: RunArgs,
        /// Contender: erlang (default), queue-wait, hill-climb, oracle, static:N, static-peak,
        /// on-demand, tpe[:CORE:MAX:QUEUE], tokio-blocking, rusty-pool.
        #[arg(long, default_value = "erlang", value_name = "NAME")]
        strategy: String,
    },
    /// Run several contenders on the same trace and seed: one table and an overlay plot.
    Compare {
        #[command(flatten)]
        run: RunArgs,
        /// Comma-separated contenders.
        #[arg(long, default_value = DEFAULT_CONTENDERS, value_name = "A,B,...")]
        contenders: String,
    },
    /// List the built-in traces.
    Traces {
        /// Print one built-in trace's TOML instead.
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// A built-in trace (see `elastic-pool traces`) or a trace file (TOML, docs/TRACES.md).
    #[arg(long, default_value = "spike", value_name = "NAME|FILE")]
    trace: String,
    /// Autoscaling policy file (TOML or JSON); default: the library's defaults with the
    /// trace's SLO as the target.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Seed of the arrival and service-time schedule.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,
    /// Output folder for the CSV and SVG files.
    #[arg(long, default_value = "elastic-pool-out", value_name = "DIR")]
    out: PathBuf,
    /// Print the scores as JSON (one object; an array for compare) instead of tables.
    #[arg(long)]
    json: bool,
    /// Run a discrete-event model in virtual time instead of real threads (a model, not a
    /// measurement; takes milliseconds).
    #[arg(long = "virtual")]
    virtual_time: bool,
    /// Play the trace F times faster: durations, periods and warm-up are divided by F; rates,
    /// service times and the SLO stay. Changes the absolute figures.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    speed: f64,
}

impl From<RunArgs> for RunOpts {
    fn from(a: RunArgs) -> RunOpts {
        RunOpts {
            trace: a.trace,
            policy: a.policy,
            seed: a.seed,
            out: a.out,
            json: a.json,
            virtual_time: a.virtual_time,
            speed: a.speed,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate { run, strategy } => app::simulate(&run.into(), &strategy),
        Command::Compare { run, contenders } => app::compare(&run.into(), &contenders),
        Command::Traces { show } => app::traces(show.as_deref()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
