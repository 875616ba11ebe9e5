//! Scores from per-task records: queue wait from the intended arrival, SLO budget burn,
//! worker-seconds against the oracle, reversals, recovery after a step.
//!
//! Everything here is computed from what the runner recorded for each task (intended arrival,
//! start, end) and from the sampled worker count, never from a controller's own histograms. A
//! task's wait runs from its *intended* arrival, so a generator that fell behind hides nothing
//! (coordinated omission). Only tasks whose intended arrival lies in `[warmup, end)` count.

use serde::Serialize;

use crate::oracle::Oracle;
use crate::trace::Trace;

/// What happened to one task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRecord {
    /// Intended arrival, ns since the run's start.
    pub intended_ns: u64,
    /// When a worker started it.
    pub start_ns: Option<u64>,
    /// When it finished.
    pub end_ns: Option<u64>,
    /// Whether it spun on a core.
    pub spin: bool,
    /// The pool refused it.
    pub rejected: bool,
}

impl TaskRecord {
    /// Queue wait, ns, if it started.
    pub fn wait_ns(&self) -> Option<u64> {
        self.start_ns.map(|s| s.saturating_sub(self.intended_ns))
    }

    /// Sojourn (wait + service), ns, if it finished.
    pub fn sojourn_ns(&self) -> Option<u64> {
        self.end_ns.map(|e| e.saturating_sub(self.intended_ns))
    }
}

/// The pool as sampled during the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// When, ns since the run's start.
    pub t_ns: u64,
    /// Live workers.
    pub live: usize,
    /// Tasks running.
    pub busy: usize,
    /// Tasks submitted and not yet started.
    pub queued: usize,
}

/// Sampling period of the worker count, both modes.
pub const SAMPLE_NS: u64 = 100_000_000;

/// Everything a run produced, before scoring.
#[derive(Clone, Debug, Default)]
pub struct RunData {
    /// One record per scheduled task, in schedule order.
    pub records: Vec<TaskRecord>,
    /// Worker count every [`SAMPLE_NS`], from t = 0 to past the end.
    pub samples: Vec<Sample>,
    /// Exact `∫ live dt` over the scored window when the runner knows it (virtual time).
    pub worker_seconds_exact: Option<f64>,
    /// Threads the pool started.
    pub threads_spawned: u64,
    /// CPU time of the pool's control thread (or of the decision function in virtual time).
    pub controller_cpu_ns: u64,
}

/// Real threads or the virtual-time model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Measured on real threads.
    Real,
    /// A discrete-event model in virtual time: not a measurement.
    Virtual,
}

impl Mode {
    /// `real` or `virtual`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Virtual => "virtual",
        }
    }

    /// How to read the figures.
    pub fn note(self) -> &'static str {
        match self {
            Mode::Real => "measured on real threads",
            Mode::Virtual => "MODEL: virtual-time simulation (instant spawn), not a measurement",
        }
    }
}

/// Identifies a run in its score.
#[derive(Clone, Debug)]
pub struct RunMeta {
    /// Trace name.
    pub trace: String,
    /// Contender name.
    pub contender: String,
    /// Seed of the schedule.
    pub seed: u64,
    /// Real or virtual.
    pub mode: Mode,
    /// Cores available.
    pub ncpu: usize,
}

/// The scores of one run: the `--json` object.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Score {
    /// Trace name.
    pub trace: String,
    /// Contender name.
    pub contender: String,
    /// Seed of the schedule.
    pub seed: u64,
    /// `real` or `virtual`.
    pub mode: Mode,
    /// How to read the figures (a model is labelled as such).
    pub note: String,
    /// Time compression (`--speed`); 1 for none.
    pub speed: f64,
    /// Trace length, seconds (after `--speed`).
    pub duration_s: f64,
    /// SLO: p99 queue wait, ms.
    pub slo_ms: f64,
    /// Cores available.
    pub ncpu: usize,
    /// Tasks submitted (the whole schedule).
    pub submitted: u64,
    /// Tasks that finished.
    pub completed: u64,
    /// Tasks the pool refused.
    pub rejected: u64,
    /// Tasks neither finished nor refused (must be 0).
    pub lost: u64,
    /// Tasks in the scored window (after warm-up).
    pub scored_tasks: u64,
    /// Median queue wait, ms.
    pub wait_p50_ms: f64,
    /// p99 queue wait, ms.
    pub wait_p99_ms: f64,
    /// Longest queue wait, ms.
    pub wait_max_ms: f64,
    /// Tasks over the SLO (refused and lost ones included) over 1% of the tasks: 1.0 is
    /// exactly at the SLO.
    pub budget_burn: f64,
    /// Share of 1 s windows (by intended arrival) whose p99 wait is over the SLO.
    pub windows_over_slo_fraction: f64,
    /// `∫ live workers dt` over the scored window.
    pub worker_seconds: f64,
    /// The oracle's `Σ c*·tick` over the scored window.
    pub oracle_worker_seconds: f64,
    /// `worker_seconds / oracle_worker_seconds`.
    pub worker_seconds_ratio: f64,
    /// Worker-seconds not spent running a task.
    pub idle_worker_seconds: f64,
    /// Sign changes of the worker count's steps (sampled every 100 ms), per minute.
    pub reversals_per_min: f64,
    /// Seconds from a rate step until three consecutive 1 s windows with ≥ 100 tasks and p99
    /// wait within the SLO begin (worst step); `null` when the trace has no step.
    pub recovery_s: Option<f64>,
    /// Most live workers seen.
    pub max_workers: usize,
    /// The oracle's largest `c*`.
    pub oracle_max_workers: usize,
    /// Threads started.
    pub threads_spawned: u64,
    /// CPU time of the control thread, ms (0 where there is none).
    pub controller_cpu_ms: f64,
    /// Spin tasks only: completions in the scored window over those of an ideal server with
    /// `ncpu/(share·S)` tasks/s of capacity (min(λ + backlog, capacity); see
    /// [`ideal_completions`]).
    pub throughput_ratio: Option<f64>,
    /// Spin tasks only: median sojourn (wait + service), ms.
    pub sojourn_p50_ms: Option<f64>,
    /// Spin tasks only: p99 sojourn, ms.
    pub sojourn_p99_ms: Option<f64>,
    /// Spin tasks only: longest sojourn, ms.
    pub sojourn_max_ms: Option<f64>,
}

/// Nearest-rank quantile of sorted values (`q` in 0..=1); `None` if empty.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Waits of the tasks intended in `[t0, t1)` (ns), `u64::MAX` for a task refused or never
/// started, sorted.
fn waits_in(records: &[TaskRecord], t0: u64, t1: u64) -> Vec<u64> {
    let mut w: Vec<u64> = records
        .iter()
        .filter(|r| r.intended_ns >= t0 && r.intended_ns < t1)
        .map(|r| {
            if r.rejected {
                u64::MAX
            } else {
                r.wait_ns().unwrap_or(u64::MAX)
            }
        })
        .collect();
    w.sort_unstable();
    w
}

/// Scores one run.
pub fn score(trace: &Trace, oracle: &Oracle, data: &RunData, meta: &RunMeta) -> Score {
    let dur = trace.duration_s();
    let warm = trace.warmup_s.min(dur);
    let t0 = (warm * 1e9) as u64;
    let t1 = (dur * 1e9) as u64;
    let slo_ns = (trace.slo_s * 1e9) as u64;
    let recs = &data.records;

    let submitted = recs.len() as u64;
    let completed = recs.iter().filter(|r| r.end_ns.is_some()).count() as u64;
    let rejected = recs.iter().filter(|r| r.rejected).count() as u64;
    let lost = submitted - completed - rejected;

    let scored: Vec<&TaskRecord> = recs
        .iter()
        .filter(|r| r.intended_ns >= t0 && r.intended_ns < t1)
        .collect();
    let mut waits: Vec<u64> = scored.iter().filter_map(|r| r.wait_ns()).collect();
    waits.sort_unstable();
    let over = scored
        .iter()
        .filter(|r| r.rejected || r.wait_ns().map_or(true, |w| w > slo_ns))
        .count();
    let budget_burn = if scored.is_empty() {
        0.0
    } else {
        over as f64 / (0.01 * scored.len() as f64)
    };

    // 1 s windows from the end of the warm-up.
    let mut windows = 0usize;
    let mut windows_over = 0usize;
    let mut w0 = t0;
    while w0 < t1 {
        let w1 = (w0 + 1_000_000_000).min(t1);
        let w = waits_in(recs, w0, w1);
        if let Some(p99) = quantile(&w, 0.99) {
            windows += 1;
            if p99 > slo_ns {
                windows_over += 1;
            }
        }
        w0 = w1;
    }

    let worker_seconds = data
        .worker_seconds_exact
        .unwrap_or_else(|| sampled_worker_seconds(&data.samples, t0, t1));
    let busy_seconds: f64 = recs
        .iter()
        .filter_map(|r| Some((r.start_ns?, r.end_ns?)))
        .map(|(s, e)| (e.min(t1).saturating_sub(s.max(t0))) as f64 / 1e9)
        .sum();
    let oracle_ws = oracle.worker_seconds(warm, dur);

    let minutes = (dur - warm) / 60.0;
    let reversals = reversals(&data.samples, t0, t1);

    let recovery_s = recovery(trace, recs, slo_ns);

    let spin = trace.has_spin();
    let (throughput_ratio, sojourn) = if spin {
        let capacity = ideal_completions(trace, meta.ncpu, warm, dur);
        let done = recs
            .iter()
            .filter(|r| r.end_ns.is_some_and(|e| e >= t0 && e < t1))
            .count() as f64;
        let mut soj: Vec<u64> = scored.iter().filter_map(|r| r.sojourn_ns()).collect();
        soj.sort_unstable();
        (
            (capacity > 0.0).then(|| done / capacity),
            Some((
                quantile(&soj, 0.5).map(ms),
                quantile(&soj, 0.99).map(ms),
                soj.last().copied().map(ms),
            )),
        )
    } else {
        (None, None)
    };

    Score {
        trace: meta.trace.clone(),
        contender: meta.contender.clone(),
        seed: meta.seed,
        mode: meta.mode,
        note: meta.mode.note().to_string(),
        speed: trace.speed,
        duration_s: dur,
        slo_ms: trace.slo_s * 1e3,
        ncpu: meta.ncpu,
        submitted,
        completed,
        rejected,
        lost,
        scored_tasks: scored.len() as u64,
        wait_p50_ms: quantile(&waits, 0.5).map_or(0.0, ms),
        wait_p99_ms: quantile(&waits, 0.99).map_or(0.0, ms),
        wait_max_ms: waits.last().copied().map_or(0.0, ms),
        budget_burn,
        windows_over_slo_fraction: if windows == 0 {
            0.0
        } else {
            windows_over as f64 / windows as f64
        },
        worker_seconds,
        oracle_worker_seconds: oracle_ws,
        worker_seconds_ratio: if oracle_ws > 0.0 {
            worker_seconds / oracle_ws
        } else {
            0.0
        },
        idle_worker_seconds: (worker_seconds - busy_seconds).max(0.0),
        reversals_per_min: if minutes > 0.0 {
            reversals as f64 / minutes
        } else {
            0.0
        },
        recovery_s,
        max_workers: data.samples.iter().map(|s| s.live).max().unwrap_or(0),
        oracle_max_workers: oracle.peak(),
        threads_spawned: data.threads_spawned,
        controller_cpu_ms: data.controller_cpu_ns as f64 / 1e6,
        throughput_ratio,
        sojourn_p50_ms: sojourn.and_then(|s| s.0),
        sojourn_p99_ms: sojourn.and_then(|s| s.1),
        sojourn_max_ms: sojourn.and_then(|s| s.2),
    }
}

/// Completions over `[t0, t1)` of an ideal CPU-bound server: a fluid queue fed at λ(t) and
/// served at `min(λ + backlog, ncpu/(share·S))` tasks/s, integrated on 1 ms steps from the
/// start of the trace (so backlog built before `t0` counts).
pub fn ideal_completions(trace: &Trace, ncpu: usize, t0: f64, t1: f64) -> f64 {
    let h = 0.001;
    let n = (trace.duration_s() / h).ceil() as usize;
    let mut backlog = 0.0;
    let mut done = 0.0;
    for i in 0..n {
        let t = (i as f64 + 0.5) * h;
        let p = trace.phase_at(t);
        let lambda = p.rate.at(t - p.start_s, p.duration_s);
        let share = p.task.kind.spin_share();
        let cap = if share > 0.0 {
            ncpu as f64 / (share * p.task.mean_s)
        } else {
            f64::INFINITY
        };
        let offered = backlog + lambda * h;
        let out = offered.min(cap * h);
        backlog = offered - out;
        if t >= t0 && t < t1 {
            done += out;
        }
    }
    done
}

/// `∫ live dt` over `[t0, t1)` from samples, each holding until the next.
pub fn sampled_worker_seconds(samples: &[Sample], t0: u64, t1: u64) -> f64 {
    let mut total = 0.0;
    for (i, s) in samples.iter().enumerate() {
        let a = s.t_ns;
        let b = samples.get(i + 1).map_or(t1.max(a), |n| n.t_ns);
        let overlap = b.min(t1).saturating_sub(a.max(t0));
        total += s.live as f64 * overlap as f64 / 1e9;
    }
    total
}

/// Sign changes of the non-zero steps of the live count within `[t0, t1)`.
fn reversals(samples: &[Sample], t0: u64, t1: u64) -> usize {
    let mut last: Option<usize> = None;
    let mut last_dir = 0i8;
    let mut n = 0;
    for s in samples.iter().filter(|s| s.t_ns >= t0 && s.t_ns < t1) {
        if let Some(prev) = last {
            let dir = match s.live.cmp(&prev) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
            if dir != 0 {
                if last_dir != 0 && dir != last_dir {
                    n += 1;
                }
                last_dir = dir;
            }
        }
        last = Some(s.live);
    }
    n
}

/// Fewest tasks a window needs for its p99 to count towards recovery.
pub const RECOVERY_MIN_TASKS: usize = 100;
/// Consecutive good windows that mark recovery.
pub const RECOVERY_WINDOWS: usize = 3;

/// Worst recovery over the trace's steps: seconds from the step to the start of the first run
/// of [`RECOVERY_WINDOWS`] consecutive 1 s windows (aligned on the step), each with at least
/// [`RECOVERY_MIN_TASKS`] tasks and p99 wait within the SLO. A step that never recovers counts
/// as the time from the step to the end of the trace (a lower bound).
fn recovery(trace: &Trace, recs: &[TaskRecord], slo_ns: u64) -> Option<f64> {
    let steps = trace.steps();
    if steps.is_empty() {
        return None;
    }
    let end_ns = (trace.duration_s() * 1e9) as u64;
    let mut worst: f64 = 0.0;
    for step in steps {
        let at = (step.at_s * 1e9) as u64;
        let n_windows = (end_ns.saturating_sub(at)) / 1_000_000_000;
        let good: Vec<bool> = (0..n_windows)
            .map(|k| {
                let w0 = at + k * 1_000_000_000;
                let w = waits_in(recs, w0, w0 + 1_000_000_000);
                w.len() >= RECOVERY_MIN_TASKS && quantile(&w, 0.99).is_some_and(|p| p <= slo_ns)
            })
            .collect();
        let first = good
            .windows(RECOVERY_WINDOWS)
            .position(|w| w.iter().all(|&g| g));
        let rec = match first {
            Some(k) => k as f64,
            None => (end_ns - at) as f64 / 1e9,
        };
        worst = worst.max(rec);
    }
    Some(worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{parse_str, BuiltIn};
    use std::path::Path;

    fn meta() -> RunMeta {
        RunMeta {
            trace: "t".into(),
            contender: "c".into(),
            seed: 1,
            mode: Mode::Virtual,
            ncpu: 2,
        }
    }

    fn rec(at_ms: u64, wait_ms: u64, service_ms: u64) -> TaskRecord {
        let i = at_ms * 1_000_000;
        let s = i + wait_ms * 1_000_000;
        TaskRecord {
            intended_ns: i,
            start_ns: Some(s),
            end_ns: Some(s + service_ms * 1_000_000),
            spin: false,
            rejected: false,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn burn_wait_and_worker_seconds_from_records() {
        let t = parse_str(
            "warmup_s = 1\n[[phase]]\nduration_s = 3\nrate = 100\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let o = Oracle::plan(&t, 2);
        // 200 tasks after warm-up, 10 ms apart; 4 of them wait 50 ms, the rest 1 ms.
        let mut records: Vec<TaskRecord> = (0..10).map(|i| rec(i * 10, 0, 5)).collect();
        for i in 0..200 {
            let wait = if i % 50 == 0 { 50 } else { 1 };
            records.push(rec(1000 + i * 10, wait, 5));
        }
        let samples: Vec<Sample> = (0..40)
            .map(|i| Sample {
                t_ns: i * SAMPLE_NS,
                live: 3,
                busy: 1,
                queued: 0,
            })
            .collect();
        let data = RunData {
            records,
            samples,
            worker_seconds_exact: None,
            threads_spawned: 3,
            controller_cpu_ns: 2_000_000,
        };
        let s = score(&t, &o, &data, &meta());
        assert_eq!(s.submitted, 210);
        assert_eq!(s.completed, 210);
        assert_eq!(s.lost, 0);
        assert_eq!(s.scored_tasks, 200);
        assert_eq!(s.wait_p50_ms, 1.0);
        assert_eq!(s.wait_p99_ms, 50.0);
        assert_eq!(s.wait_max_ms, 50.0);
        // 4 over the SLO of 200 tasks: 4 / 2 = 2.0.
        assert!((s.budget_burn - 2.0).abs() < 1e-9);
        // Each 1 s window holds 100 tasks, two of them at 50 ms: p99 = 50 ms, over.
        assert_eq!(s.windows_over_slo_fraction, 1.0);
        assert!((s.worker_seconds - 6.0).abs() < 1e-9);
        // 200 tasks × 5 ms busy.
        assert!((s.idle_worker_seconds - 5.0).abs() < 1e-6);
        assert_eq!(s.max_workers, 3);
        assert_eq!(s.controller_cpu_ms, 2.0);
        assert_eq!(s.reversals_per_min, 0.0);
        assert_eq!(s.recovery_s, None);
        assert_eq!(s.throughput_ratio, None);
        assert!(s.oracle_worker_seconds > 0.0);
    }

    #[test]
    fn reversals_count_direction_changes() {
        let live = [2, 3, 3, 4, 2, 2, 5, 5, 1];
        let samples: Vec<Sample> = live
            .iter()
            .enumerate()
            .map(|(i, &l)| Sample {
                t_ns: i as u64 * SAMPLE_NS,
                live: l,
                ..Sample::default()
            })
            .collect();
        // up, up, down, up, down: three reversals.
        assert_eq!(reversals(&samples, 0, u64::MAX), 3);
    }

    #[test]
    fn recovery_after_the_step() {
        let t = BuiltIn::find("step").unwrap().load(2);
        // 200 tasks/s from t = 30 s: the first 2 s wait 100 ms, then 1 ms.
        let mut recs = Vec::new();
        for i in 0..(60 * 200) {
            let at = 30_000 + i * 5;
            let wait = if at < 32_000 { 100 } else { 1 };
            recs.push(rec(at, wait, 1));
        }
        assert_eq!(recovery(&t, &recs, 20_000_000), Some(2.0));
        // Never good: censored at the end of the trace.
        let bad: Vec<TaskRecord> = recs
            .iter()
            .map(|r| TaskRecord {
                start_ns: r.start_ns.map(|s| s + 50_000_000),
                ..*r
            })
            .collect();
        assert_eq!(recovery(&t, &bad, 20_000_000), Some(120.0));
    }

    #[test]
    fn refused_tasks_burn_the_budget() {
        let t = parse_str(
            "warmup_s = 0\n[[phase]]\nduration_s = 1\nrate = 100\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let o = Oracle::plan(&t, 2);
        let mut records: Vec<TaskRecord> = (0..100).map(|i| rec(i * 10, 0, 1)).collect();
        records[5] = TaskRecord {
            start_ns: None,
            end_ns: None,
            rejected: true,
            ..records[5]
        };
        let data = RunData {
            records,
            ..RunData::default()
        };
        let s = score(&t, &o, &data, &meta());
        assert_eq!(s.rejected, 1);
        assert_eq!(s.lost, 0);
        assert!((s.budget_burn - 1.0).abs() < 1e-9);
    }
}
