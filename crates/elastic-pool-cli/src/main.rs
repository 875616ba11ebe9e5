//! `elastic-pool`: run an autoscaling worker pool against load traces and score it.

use std::path::PathBuf;

mod bench;

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
        /// Serve the pool's Prometheus metrics at ADDR (e.g. 127.0.0.1:9464) during the run;
        /// port 0 picks a free port (printed on stderr).
        #[arg(long, value_name = "ADDR")]
        serve_metrics: Option<std::net::SocketAddr>,
    },
    /// Run several contenders on the same trace and seed: one table and an overlay plot.
    Compare {
        #[command(flatten)]
        run: RunArgs,
        /// Comma-separated contenders.
        #[arg(long, default_value = DEFAULT_CONTENDERS, value_name = "A,B,...")]
        contenders: String,
    },
    /// Benchmark this pool against its peers in one process (BENCHMARKS.md).
    Bench {
        /// Fewer rounds and samples: under 60 s in all.
        #[arg(long)]
        quick: bool,
        /// Print a JSON array of scenarios instead of tables.
        #[arg(long)]
        json: bool,
        /// Run one scenario (or one entry such as `wake-p99`).
        #[arg(long, value_name = "NAME")]
        scenario: Option<String>,
    },
    /// Soak the pool: a random mix of every operation and fault, every invariant checked;
    /// exits 1 if any fails (docs/RELIABILITY.md).
    Soak {
        /// How long: seconds, or a number with a unit (500ms, 60s, 30m, 2h).
        #[arg(long, default_value = "60s", value_name = "D", value_parser = elastic_pool_cli::soak::parse_duration)]
        duration: std::time::Duration,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1, value_name = "N")]
        seed: u64,
        /// Print the report as JSON (progress lines still go to stderr).
        #[arg(long)]
        json: bool,
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
            serve_metrics: None,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate {
            run,
            strategy,
            serve_metrics,
        } => {
            let mut opts: RunOpts = run.into();
            opts.serve_metrics = serve_metrics;
            app::simulate(&opts, &strategy)
        }
        Command::Soak {
            duration,
            seed,
            json,
        } => {
            use elastic_pool_cli::soak;
            let r = soak::run(soak::SoakOptions {
                duration,
                seed,
                progress: true,
                ..Default::default()
            });
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).expect("a report serializes")
                );
            } else {
                soak::print_human(&r);
            }
            std::process::exit(if r.ok { 0 } else { 1 });
        }
        Command::Compare { run, contenders } => app::compare(&run.into(), &contenders),
        Command::Traces { show } => app::traces(show.as_deref()),
        Command::Bench {
            quick,
            json,
            scenario,
        } => bench::run(&bench::BenchOpts {
            quick,
            json,
            scenario,
        }),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
