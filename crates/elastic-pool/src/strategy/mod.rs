//! Sizing strategies: what the pool measured per tick ([`TickSignals`]), what the scaler made of
//! it ([`Smoothed`]), the [`Strategy`] trait, and the three implementations.
//!
//! A strategy is a pure function of (smoothed signals, policy, its own state): it never reads a
//! clock (time is `now_ns` in the signals), never allocates and never does I/O, so a synthetic
//! signal sequence gives the same decisions on every run. The guards every strategy needs
//! (saturation, app-limited, CPU-bound, starvation) and the stabilization of its output live in
//! [`crate::scaler`]; a strategy only says how many workers it wants and why.
//!
//! - [`erlang::ErlangSizing`] (`"erlang"`, the default): Little's law / Erlang-C sizing from the
//!   arrival rate and service time, with a slow trim of the target on measured p99.
//! - [`queue_wait::QueueWait`] (`"queue-wait"`): model-free feedback on p99 wait, applied to
//!   spare capacity.
//! - [`hill_climb::HillClimb`] (`"hill-climb"`): throughput probing for CPU-bound work or work
//!   that blocks an unknown amount.

pub mod erlang;
pub mod hill_climb;
pub mod queue_wait;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::scaler::Rule;

/// What the pool measured over the window since the last tick.
///
/// Counters are deltas over the window, never all-time totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickSignals {
    /// The injectable clock: nanoseconds since any fixed origin.
    pub now_ns: u64,
    /// Length of this window, seconds.
    pub dt_s: f64,
    /// Tasks accepted in the window.
    pub arrivals: u64,
    /// Tasks finished in the window.
    pub completions: u64,
    /// Tasks taken by workers in the window.
    pub dequeued: u64,
    /// Busy-time integral over the window (worker-seconds busy); `busy_s / dt_s` is the mean
    /// number of busy workers `a`.
    pub busy_s: f64,
    /// Mean run time of the tasks completed in the window, seconds.
    pub service_mean_s: Option<f64>,
    /// p99 queue wait of the window, seconds (`None`: no samples).
    pub wait_p99_s: Option<f64>,
    /// Wait samples behind `wait_p99_s`.
    pub wait_samples: u64,
    /// Queue depth at tick time.
    pub queue_depth: usize,
    /// Live workers at tick time.
    pub live: usize,
    /// Idle workers at tick time.
    pub idle: usize,
    /// No worker was idle at any moment of the window.
    pub saturated: bool,
    /// Process CPU time over `dt × ncpu`, 0..1 (`None` if unknown). The pool reads the
    /// process clock at most once a second, so this may span more than the window.
    pub cpu_util: Option<f64>,
    /// Tasks probed in the window for CPU versus blocking work (0: none, or not Linux).
    pub cpu_probes: u64,
    /// Thread CPU time of the probed tasks, seconds.
    pub cpu_probe_cpu_s: f64,
    /// Wall time beyond CPU time of the probed tasks that blocked, seconds (a task that never
    /// blocked adds nothing: its extra wall time was spent waiting for a core). The CPU share
    /// of the work, `cpu / (cpu + blocked)`, unlike process CPU over busy time, stays at 1
    /// for CPU-bound work on a contended machine.
    pub cpu_probe_blocked_s: f64,
    /// Available cores.
    pub ncpu: usize,
    /// Seconds since any worker last dequeued a task.
    pub since_last_dequeue_s: f64,
    /// The target (ceiling for on-demand growth) in force.
    pub target: usize,
    /// The pool starts workers on demand between ticks (a task queued past the spawn grace
    /// and no worker idle, up to [`Decision::ceiling`](crate::scaler::Decision::ceiling)).
    /// When it does and the work is known not to be CPU-bound, bursts are absorbed by that
    /// growth, so the target follows the mean arrival rate instead of burst peaks and the
    /// saturation guard does not raise it (on-demand workers are trimmed once idle).
    pub on_demand: bool,
}

/// The strategies a policy can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum StrategyKind {
    /// `"erlang"`: Erlang-C sizing with a slow p99 trim (the default; I/O-like work).
    #[default]
    Erlang,
    /// `"queue-wait"`: model-free feedback on p99 wait, applied to spare capacity.
    QueueWait,
    /// `"hill-climb"`: throughput probing (CPU-bound work, unknown blocking).
    HillClimb,
}

impl StrategyKind {
    /// Every strategy, in the order of their names in error messages.
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::Erlang,
        StrategyKind::QueueWait,
        StrategyKind::HillClimb,
    ];

    /// The name used in policy files, tracing events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Erlang => "erlang",
            StrategyKind::QueueWait => "queue-wait",
            StrategyKind::HillClimb => "hill-climb",
        }
    }

    /// Looks a strategy up by name; `_` and `-` are interchangeable (`queue_wait` works).
    pub fn from_name(name: &str) -> Option<StrategyKind> {
        let n = name.trim();
        StrategyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == n || k.as_str().replace('-', "_") == n)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<StrategyKind> for &'static str {
    fn from(k: StrategyKind) -> &'static str {
        k.as_str()
    }
}

impl TryFrom<String> for StrategyKind {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        StrategyKind::from_name(&name).ok_or_else(|| {
            format!(
                "unknown strategy `{name}`, expected one of \"erlang\", \"queue-wait\", \
                 \"hill-climb\""
            )
        })
    }
}

/// A p99 queue wait backed by enough samples: the merge of the windows since the evidence was
/// last used (or discarded by a resize).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaitEvidence {
    /// Merged p99 queue wait, seconds.
    pub p99_s: f64,
    /// Samples behind it (at least the policy's `min_wait_samples`).
    pub samples: u64,
    /// Windows (ticks) merged.
    pub windows: u32,
}

/// What the scaler made of the signals: smoothed rates and merged latency evidence, handed to
/// the strategy each tick.
#[derive(Clone, Copy, Debug)]
pub struct Smoothed {
    /// This tick's raw signals.
    pub signals: TickSignals,
    /// The current target, clamped to the policy's bounds (`c` in the formulas).
    pub c: usize,
    /// Arrival rate of this window, per second.
    pub lambda_window: f64,
    /// Smoothed arrival rate λ̂, per second: the larger of a mean EWMA and a peak-EWMA that takes
    /// a significant rise at once.
    pub lambda: f64,
    /// Standard deviation of the mean-rate estimate under Poisson arrivals, `√(λ̄ / 2τ)`, per
    /// second: the noise a size must not follow.
    pub lambda_sigma: f64,
    /// λ̂ plus the backlog to drain, `Q / backlog_drain_s`, per second.
    pub lambda_eff: f64,
    /// Smoothed mean service time Ŝ, seconds (`None` until a task has completed).
    pub service_s: Option<f64>,
    /// Mean busy workers of this window, `a = busy_s / dt_s`.
    pub busy: f64,
    /// Smoothed (mean EWMA) busy workers.
    pub busy_mean: f64,
    /// Burst-aware busy workers: the mean scaled by λ̂ / λ̄ while a burst lifts λ̂ above the
    /// mean rate (Little's law: `a = λS`).
    pub busy_hi: f64,
    /// Completions per second in this window.
    pub throughput: f64,
    /// Merged p99 wait evidence, present on the ticks where enough samples have gathered.
    pub evidence: Option<WaitEvidence>,
    /// The SLO, seconds.
    pub target_wait_s: f64,
    /// Tasks are waiting: the queue is not empty, or no worker was idle all window.
    pub backlogged: bool,
}

/// A strategy's answer for one tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recommendation {
    /// Workers wanted; `None` is no opinion this tick (hold, and record nothing in the
    /// stabilization window).
    pub workers: Option<usize>,
    /// The part of `workers` that does not rest on measured latency: when most workers are
    /// idle (the app-limited guard), growth is cut back to this. `None`: all of it does.
    pub without_latency: Option<usize>,
    /// What the stabilization window remembers for this tick (hysteresis, at least `workers`);
    /// `None` means `workers`.
    pub keep: Option<usize>,
    /// Why.
    pub rule: Rule,
    /// The model's demand in workers (additive across replicas, may exceed `max_workers`).
    pub demand_workers: f64,
    /// Sizes above this were found not to pay (hill-climbing): the saturation guard grows no
    /// further. `None`: no such limit.
    pub cap: Option<usize>,
}

impl Recommendation {
    /// No opinion this tick.
    pub fn none(demand_workers: f64) -> Self {
        Recommendation {
            workers: None,
            without_latency: None,
            keep: None,
            rule: Rule::Hold,
            demand_workers,
            cap: None,
        }
    }

    /// A recommendation that does not rest on measured latency.
    pub fn model(workers: usize, rule: Rule, demand_workers: f64) -> Self {
        Recommendation {
            workers: Some(workers),
            without_latency: Some(workers),
            keep: None,
            rule,
            demand_workers,
            cap: None,
        }
    }
}

/// A sizing strategy. Implementations keep their own state (trims, probes) and must not
/// allocate, read clocks or do I/O in [`Strategy::recommend`].
pub trait Strategy: Send {
    /// The strategy's name, as in policy files.
    fn name(&self) -> &'static str;

    /// Workers wanted for this tick, before the shared guards and stabilization.
    fn recommend(&mut self, s: &Smoothed, policy: &Policy) -> Recommendation;

    /// The target changed from `from` to `to`: latency evidence gathered at the old size is
    /// void. The default does nothing.
    fn on_resize(&mut self, from: usize, to: usize) {
        let _ = (from, to);
    }
}

/// One of the three strategies, by value: switching strategy on a policy swap rebuilds this
/// without allocating.
#[derive(Clone, Debug)]
pub enum AnyStrategy {
    /// Erlang-C sizing.
    Erlang(erlang::ErlangSizing),
    /// Feedback on p99 wait.
    QueueWait(queue_wait::QueueWait),
    /// Throughput probing.
    HillClimb(hill_climb::HillClimb),
}

impl AnyStrategy {
    /// A fresh strategy of the given kind.
    pub fn new(kind: StrategyKind) -> Self {
        match kind {
            StrategyKind::Erlang => AnyStrategy::Erlang(erlang::ErlangSizing::new()),
            StrategyKind::QueueWait => AnyStrategy::QueueWait(queue_wait::QueueWait::new()),
            StrategyKind::HillClimb => AnyStrategy::HillClimb(hill_climb::HillClimb::new()),
        }
    }

    /// Which strategy this is.
    pub fn kind(&self) -> StrategyKind {
        match self {
            AnyStrategy::Erlang(_) => StrategyKind::Erlang,
            AnyStrategy::QueueWait(_) => StrategyKind::QueueWait,
            AnyStrategy::HillClimb(_) => StrategyKind::HillClimb,
        }
    }
}

impl Strategy for AnyStrategy {
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    fn recommend(&mut self, s: &Smoothed, policy: &Policy) -> Recommendation {
        match self {
            AnyStrategy::Erlang(x) => x.recommend(s, policy),
            AnyStrategy::QueueWait(x) => x.recommend(s, policy),
            AnyStrategy::HillClimb(x) => x.recommend(s, policy),
        }
    }

    fn on_resize(&mut self, from: usize, to: usize) {
        match self {
            AnyStrategy::Erlang(x) => x.on_resize(from, to),
            AnyStrategy::QueueWait(x) => x.on_resize(from, to),
            AnyStrategy::HillClimb(x) => x.on_resize(from, to),
        }
    }
}

/// The saturation sizing rule (control.md, Strategy A): when no worker is idle, arrivals over
/// throughput is linear in `c`, so the ratio form is valid:
/// `min(max(c + 1, ⌈1.1·live·(λ + Q/H)/X⌉), max(c + 4, 2c))` — the cap is HPA's +4 or +100%.
/// Without completions to measure `X`, one more worker.
pub fn saturation_size(
    c: usize,
    live: usize,
    lambda: f64,
    queue: usize,
    drain_s: f64,
    throughput: f64,
) -> usize {
    let c = c.max(1);
    let cap = (c + 4).max(c.saturating_mul(2));
    let wanted = if throughput > 0.0 && lambda.is_finite() {
        let load = lambda.max(0.0) + queue as f64 / drain_s.max(1e-3);
        let x = (1.1 * live.max(1) as f64 * load / throughput).ceil();
        if x.is_finite() && x < cap as f64 {
            x as usize
        } else {
            cap
        }
    } else {
        c + 1
    };
    wanted.max(c + 1).min(cap)
}

/// `x.ceil()` as a worker count, saturating (NaN and negatives give 0).
pub(crate) fn ceil_workers(x: f64) -> usize {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= usize::MAX as f64 {
        usize::MAX
    } else {
        x.ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in StrategyKind::ALL {
            assert_eq!(StrategyKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(
            StrategyKind::from_name("queue_wait"),
            Some(StrategyKind::QueueWait)
        );
        assert_eq!(StrategyKind::from_name("pid"), None);
    }

    #[test]
    fn saturation_rule_caps_at_double() {
        // 4 workers doing 80/s, 200/s arriving: wants 11+, capped at 8.
        assert_eq!(saturation_size(4, 4, 200.0, 0, 1.0, 80.0), 8);
        // Mild overload: at least one more.
        assert_eq!(saturation_size(10, 10, 100.0, 0, 1.0, 100.0), 11);
        // No completions: one more.
        assert_eq!(saturation_size(3, 3, 100.0, 50, 1.0, 0.0), 4);
        // Large pools: +100%.
        assert_eq!(saturation_size(40, 40, 1e6, 0, 1.0, 1.0), 80);
    }
}
