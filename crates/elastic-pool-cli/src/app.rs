//! The commands: `simulate`, `compare` and `traces`, from validated input to printed tables,
//! JSON and the files in the output folder.
//!
//! Every input is checked before anything runs — trace, policy, contenders, speed, and that
//! the output folder can be written — so bad input never leaves a partial file.

use std::io::IsTerminal;
use std::path::PathBuf;

use elastic_pool::policy::Policy;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::contender::Contender;
use crate::generator::{generate, Schedule};
use crate::oracle::Oracle;
use crate::score::{score, Mode, RunData, RunMeta, Score};
use crate::timeline::{self, Row};
use crate::trace::{self, Trace, BUILT_INS};
use crate::{output, plot, pools, report, runner, virtual_sim};

/// Fastest time compression accepted.
pub const MAX_SPEED: f64 = 1000.0;

/// Options shared by `simulate` and `compare`.
#[derive(Clone, Debug)]
pub struct RunOpts {
    /// Built-in trace name or trace file.
    pub trace: String,
    /// Policy file (TOML or JSON) for our strategies.
    pub policy: Option<PathBuf>,
    /// Schedule seed.
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Print JSON instead of tables.
    pub json: bool,
    /// Run the virtual-time model instead of real threads.
    pub virtual_time: bool,
    /// Serve the pool's Prometheus metrics at this address during a real run (simulate).
    pub serve_metrics: Option<std::net::SocketAddr>,
    /// Time compression.
    pub speed: f64,
}

/// A command failure: bad input (exit 2) or a failed run (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input was wrong; nothing ran.
    #[error("{0}")]
    Input(String),
    /// The run went wrong.
    #[error("{0}")]
    Run(String),
}

impl AppError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Input(_) => 2,
            AppError::Run(_) => 1,
        }
    }
}

/// Everything a run needs, checked.
struct Prepared {
    trace: Trace,
    policy: Policy,
    oracle: Oracle,
    schedule: Schedule,
    ncpu: usize,
    mode: Mode,
}

fn prepare(opts: &RunOpts) -> Result<Prepared, AppError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0 && opts.speed <= MAX_SPEED) {
        return Err(AppError::Input(format!(
            "--speed must be a number above 0 and at most {MAX_SPEED}, got {}",
            opts.speed
        )));
    }
    let ncpu = elastic_pool::clock::cpu_count();
    let mut trace = trace::load(&opts.trace, ncpu).map_err(|e| AppError::Input(e.to_string()))?;
    if opts.speed != 1.0 {
        trace = trace.compressed(opts.speed);
    }
    let policy = match &opts.policy {
        Some(path) => Policy::from_path(path)
            .map_err(|e| AppError::Input(format!("policy file {}: {e}", path.display())))?,
        None => Policy {
            target_p99_wait_ms: trace.slo_s * 1e3,
            ..Policy::default()
        },
    };
    policy
        .validate()
        .map_err(|e| AppError::Input(e.to_string()))?;
    output::prepare(&opts.out).map_err(|e| AppError::Input(e.to_string()))?;
    let oracle = Oracle::plan(&trace, ncpu);
    let schedule = generate(&trace, opts.seed);
    Ok(Prepared {
        trace,
        policy,
        oracle,
        schedule,
        ncpu,
        mode: if opts.virtual_time {
            Mode::Virtual
        } else {
            Mode::Real
        },
    })
}

/// Whether to draw a progress bar.
fn show_progress(opts: &RunOpts) -> bool {
    !opts.json
        && !opts.virtual_time
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
}

fn progress_bar(p: &Prepared, label: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(p.trace.duration_s().ceil() as u64),
        ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos:>3}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

fn run_one(
    p: &Prepared,
    contender: &Contender,
    seed: u64,
    progress: bool,
    serve_metrics: Option<std::net::SocketAddr>,
) -> Result<(Score, Vec<Row>), AppError> {
    let data: RunData = match p.mode {
        Mode::Virtual => virtual_sim::run(
            &p.trace,
            &p.schedule,
            &p.oracle,
            contender,
            &p.policy,
            p.ncpu,
        ),
        Mode::Real => {
            let sink = pools::build(contender, &p.oracle, &p.policy).map_err(AppError::Run)?;
            // Keeps the endpoint up for the run; dropping it stops the server.
            let _server = match serve_metrics {
                None => None,
                Some(addr) => Some(serve_metrics_of(sink.as_ref(), contender, addr)?),
            };
            let pb = progress.then(|| progress_bar(p, &contender.to_string()));
            let data = runner::run(&p.trace, &p.schedule, &p.oracle, sink.as_ref(), pb.as_ref());
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            data
        }
    };
    let meta = RunMeta {
        trace: p.trace.name.clone(),
        contender: contender.to_string(),
        seed,
        mode: p.mode,
        ncpu: p.ncpu,
    };
    let s = score(&p.trace, &p.oracle, &data, &meta);
    let rows = timeline::build(&p.trace, &p.oracle, &data);
    Ok((s, rows))
}

fn write(opts: &RunOpts, name: &str, contents: &[u8]) -> Result<PathBuf, AppError> {
    output::write_atomic(&opts.out, name, contents).map_err(|e| AppError::Run(e.to_string()))
}

fn check_lost(scores: &[Score]) -> Result<(), AppError> {
    let lost: Vec<String> = scores
        .iter()
        .filter(|s| s.lost > 0)
        .map(|s| format!("{}: {} tasks", s.contender, s.lost))
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(AppError::Run(format!(
            "tasks were lost (neither finished nor refused within {} s of the end): {}",
            runner::DRAIN_LIMIT.as_secs(),
            lost.join(", ")
        )))
    }
}

/// `elastic-pool simulate`: one contender on one trace.
///
/// # Errors
/// [`AppError::Input`] for bad input, [`AppError::Run`] if the run fails or loses tasks.
pub fn simulate(opts: &RunOpts, strategy: &str) -> Result<(), AppError> {
    let contender = Contender::parse(strategy).map_err(AppError::Input)?;
    let p = prepare(opts)?;
    if !opts.json {
        println!(
            "{}",
            report::heading(
                "simulate",
                &p.trace.name,
                opts.seed,
                p.mode,
                p.ncpu,
                p.trace.speed
            )
        );
        println!("  trace      {}", p.trace.describe());
        println!(
            "  contender  {contender}: {}",
            contender.describe(&p.oracle)
        );
        if !opts.virtual_time {
            println!("  running for {:.0} s...", p.trace.duration_s());
        }
    }
    if opts.serve_metrics.is_some() && opts.virtual_time {
        return Err(AppError::Input(
            "--serve-metrics needs a real run: a virtual run has no pool to export".into(),
        ));
    }
    let (s, rows) = run_one(
        &p,
        &contender,
        opts.seed,
        show_progress(opts),
        opts.serve_metrics,
    )?;
    let csv = write(
        opts,
        "timeline.csv",
        timeline::csv(&rows, p.mode).as_bytes(),
    )?;
    let title = plot::title(
        &format!("{} · {} · seed {}", p.trace.name, contender, opts.seed),
        p.mode,
    );
    let svg = plot::timeline_svg(&rows, &title, p.trace.slo_s * 1e3).map_err(AppError::Run)?;
    let svg = write(opts, "timeline.svg", svg.as_bytes())?;
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| AppError::Run(e.to_string()))?
        );
    } else {
        println!();
        print!("{}", report::summary(&s));
        println!();
        println!("  wrote {} and {}", csv.display(), svg.display());
    }
    check_lost(std::slice::from_ref(&s))
}

/// Starts the Prometheus endpoint for the pool behind `sink` (named after the contender).
fn serve_metrics_of(
    sink: &dyn pools::Sink,
    contender: &Contender,
    addr: std::net::SocketAddr,
) -> Result<elastic_pool::export::MetricsServer, AppError> {
    let pool = sink.pool().ok_or_else(|| {
        AppError::Input(format!(
            "--serve-metrics exports an elastic-pool; {contender} is a peer's pool"
        ))
    })?;
    let exporter = elastic_pool::export::Exporter::new();
    exporter
        .register(contender.to_string(), &pool)
        .map_err(|e| AppError::Run(e.to_string()))?;
    let server = exporter
        .serve(addr)
        .map_err(|e| AppError::Input(format!("--serve-metrics {addr}: {e}")))?;
    eprintln!(
        "  serving metrics at http://{}/metrics",
        server.local_addr()
    );
    Ok(server)
}

/// `elastic-pool compare`: every contender on the same trace and seed.
///
/// # Errors
/// [`AppError::Input`] for bad input, [`AppError::Run`] if a run fails or loses tasks.
pub fn compare(opts: &RunOpts, contenders: &str) -> Result<(), AppError> {
    let list = Contender::parse_list(contenders).map_err(AppError::Input)?;
    let p = prepare(opts)?;
    if !opts.json {
        println!(
            "{}",
            report::heading(
                "compare",
                &p.trace.name,
                opts.seed,
                p.mode,
                p.ncpu,
                p.trace.speed
            )
        );
        println!("  trace  {}", p.trace.describe());
        for c in &list {
            println!("  {:<14} {}", c.to_string(), c.describe(&p.oracle));
        }
        if !opts.virtual_time {
            println!(
                "  running {} contenders for {:.0} s each...",
                list.len(),
                p.trace.duration_s()
            );
        }
    }
    let progress = show_progress(opts);
    let mut scores = Vec::with_capacity(list.len());
    let mut runs = Vec::with_capacity(list.len());
    for c in &list {
        let (s, rows) = run_one(&p, c, opts.seed, progress, None)?;
        if progress {
            eprintln!(
                "{:>14} done: burn {:.2}, worker-seconds {:.2} × oracle",
                c.to_string(),
                s.budget_burn,
                s.worker_seconds_ratio
            );
        }
        scores.push(s);
        runs.push((c.to_string(), rows));
    }
    let mut csv = String::new();
    for (name, rows) in &runs {
        let body = timeline::csv(rows, p.mode);
        for (i, line) in body.lines().enumerate() {
            if i == 0 {
                if csv.is_empty() {
                    csv.push_str("contender,");
                    csv.push_str(line);
                    csv.push('\n');
                }
            } else {
                csv.push_str(name);
                csv.push(',');
                csv.push_str(line);
                csv.push('\n');
            }
        }
    }
    let csv = write(opts, "compare.csv", csv.as_bytes())?;
    let title = plot::title(
        &format!("{} · seed {} · all contenders", p.trace.name, opts.seed),
        p.mode,
    );
    let svg = plot::overlay_svg(&runs, &title, p.trace.slo_s * 1e3).map_err(AppError::Run)?;
    let svg = write(opts, "compare.svg", svg.as_bytes())?;
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&scores).map_err(|e| AppError::Run(e.to_string()))?
        );
    } else {
        println!();
        print!("{}", report::compare_table(&scores));
        println!();
        println!("  wrote {} and {}", csv.display(), svg.display());
    }
    check_lost(&scores)
}

/// `elastic-pool traces`: the built-in traces, one line each, or one trace's TOML.
///
/// # Errors
/// [`AppError::Input`] for an unknown name.
pub fn traces(show: Option<&str>) -> Result<(), AppError> {
    let ncpu = elastic_pool::clock::cpu_count();
    if let Some(name) = show {
        let b = crate::trace::BuiltIn::find(name).ok_or_else(|| {
            AppError::Input(format!(
                "unknown trace `{name}`; built-in traces: {}",
                BUILT_INS
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        print!("{}", b.toml);
        return Ok(());
    }
    let width = BUILT_INS.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for b in BUILT_INS {
        let t = b.load(ncpu);
        let mut line = format!("{:<width$}  {}", b.name, b.summary);
        if b.per_core {
            line.push_str(&format!(
                " [here: {} CPUs, {}]",
                ncpu,
                t.phases
                    .iter()
                    .map(|p| p.rate.describe())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        println!("{line}");
    }
    println!();
    println!(
        "All: SLO p99 wait 20 ms, 10 s warm-up excluded from scores. `elastic-pool traces --show NAME` \
         prints a trace's TOML; docs/TRACES.md describes the format."
    );
    Ok(())
}
