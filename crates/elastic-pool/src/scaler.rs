//! The autoscaler's decision logic: smoothing, latency evidence, the guards every strategy
//! shares, and the stabilization of the strategy's recommendation into a new target.
//!
//! [`Scaler::tick`] is a pure function of (signals, policy, scaler state): no clock (time is
//! `now_ns` in the signals), no I/O and no allocation — the state is a handful of EWMAs and two
//! fixed ring buffers. The control thread calls it once per jittered tick and applies
//! [`Decision::to`] as the pool's target.
//!
//! # Target, ceiling and burst queue
//!
//! Between ticks the pool starts workers itself, lazily: up to the target as soon as a task is
//! queued and no worker is idle; above the target (up to [`Decision::ceiling`]) only for a
//! burst — a queue [`Decision::burst_queue`] deep, one the model's M/M/c queue at the target
//! makes rare — or, one worker at a time, for tasks that have waited out the spawn grace
//! (twice the SLO) while the backlog did not drain by itself. The
//! ordinary tail of a right-sized pool (at its Erlang-C size about 1% of tasks wait near the
//! SLO, by definition) therefore does not grow it, while a burst gets workers at once. The
//! controller owns retirement: idle workers above the target are trimmed.
//!
//! # One tick
//!
//! 1. Smooth: λ̂ starts from a mean EWMA of the window's arrival rate, corrected upwards for a
//!    trend (Brown's double smoothing, `2·S₁ − S₂`, which follows a linear climb without the
//!    EWMA's lag of slope × τ). While the pool grows on demand for known blocking work, that
//!    is λ̂: bursts are the burst queue's job. Otherwise λ̂ is the larger of it and a
//!    peak-EWMA that takes a window's rate at once when its count is a significant burst
//!    (`√n − √m > 2`, four standard deviations above the count `m` the mean predicts) and
//!    otherwise decays towards the mean — a real burst is taken at once, Poisson noise is not.
//!    Ŝ and the busy count `a` are EWMAs too (`rate_tau_s`, `service_tau_s`).
//! 2. Evidence: windows' p99 waits are merged until they hold `min_wait_samples` samples; only
//!    then does a strategy see a p99 ([`WaitEvidence`]).
//! 3. Strategy: [`Strategy::recommend`].
//! 4. Guards, in order: *app-limited* (`â < 0.5c` and `c > â + 3√â + 1`: no growth for
//!    latency), *saturated* (no idle worker all window and tasks queued: grow by
//!    [`saturation_size`] whatever the evidence, up to a strategy's cap, if any),
//!    *starvation* (tasks queued, nothing dequeued for `starvation_ms`: one more worker),
//!    *CPU-bound* (no growth when the busy workers' CPU demand `a·k`, or process CPU, fills
//!    `cpu_busy_ratio` of the cores; and when busy time is mostly CPU work, `k ≥ 0.5`, no
//!    growth beyond `⌈ncpu / k⌉`). `k`, the CPU share of the work, comes from probed tasks
//!    (cpu_probe.rs): CPU time over CPU time plus blocked time, where only a task that made a
//!    voluntary context switch has blocked time, so CPU work stretched by a contended machine
//!    still reads as CPU work. Without probes (not Linux) it falls back to process CPU over
//!    busy time.
//! 5. Stabilize: up at once within `max_step_up`; down to
//!    `max(highest recommendation in the window, ⌊0.9c⌋, c − max_step_down)`, and never back to
//!    a size whose merged p99 was over the target while the load stays within `floor_release`
//!    of the rate it failed at (p99 wait is a cliff: without this memory, any feedback that
//!    shrinks on "p99 well under target" probes below the right size forever); bounds always.
//! 6. After a change, latency evidence gathered at the old size is discarded, and so is the
//!    next window's if tasks were queued at the change (they waited at the old size).

use std::time::Duration;

use crate::erlang::queue_for_tail;
use crate::ewma::{Ewma, PeakEwma};
use crate::policy::Policy;
use crate::strategy::{
    saturation_size, AnyStrategy, Smoothed, Strategy, StrategyKind, TickSignals, WaitEvidence,
};

/// A window's arrival count is a burst (taken at once by the peak estimate) when it exceeds the
/// mean rate's expectation by this many standard deviations of the variance-stabilised count
/// (`2√n`): a step from 20/s to 200/s at a 500 ms tick is 26 of them, while steady Poisson
/// noise crosses 4 about once in 30,000 windows.
const PEAK_Z: f64 = 4.0;
/// The app-limited guard: no growth for latency while fewer than this fraction of workers are
/// busy (Netflix's `inflight < limit/2`).
const APP_LIMITED: f64 = 0.5;
/// The CPU cap applies when the CPU share of the work is at least this.
const CPU_HEAVY: f64 = 0.5;
/// Probed tasks (decayed count, see `Scaler::probes`) behind a CPU-share estimate. One is
/// enough to start: the first tick (100 ms in) usually has one, and waiting for more let
/// the model size spin work for its stretched run times (six threads on two cores in the
/// first second of `cpu-overload`). Later estimates pool a few seconds of probes.
const PROBES_MIN: f64 = 1.0;
/// Windows of latency evidence merged at most (older ones slide out).
const EVIDENCE_SLOTS: usize = 64;
/// The steady-state probability of a queue at least [`Decision::burst_queue`] deep, per
/// arrival, at most...
pub const BURST_TAIL: f64 = 1e-3;
/// ...and at most this many false bursts per second at the current rate (one a minute): at
/// 200 tasks/s a per-arrival 1e-3 would grow the pool for noise every 5 s.
pub const BURST_FALSE_PER_S: f64 = 1.0 / 60.0;
/// The shortest queue that counts as a burst, whatever the model says. At a few workers and
/// light load, the M/M/c tail makes one queued task rare enough (5 workers at λ = 20/s,
/// S = 50 ms), but a stall of the machine (a VM's steal time) leaves one behind far more
/// often than the model's tail: a real `step` run started a worker above the target for
/// it and trimmed it 3 s later, two reversals. A real burst passes two queued tasks within
/// an arrival or two.
pub const MIN_BURST_QUEUE: usize = 2;
/// Recommendations the stabilization window holds: 1024 ticks, 512 s at the default tick.
pub const WINDOW_SLOTS: usize = 1024;

/// Which rule set a decision's target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// No change.
    Hold,
    /// Grown to the model's size (Erlang-C, demand).
    Model,
    /// Grown because measured p99 wait was over the target (queue-wait feedback, Erlang trim).
    LatencyTrim,
    /// A hill-climbing step (up, or back from a step that did not pay).
    Probe,
    /// Grown because no worker was idle all window and tasks were queued.
    Saturated,
    /// One worker added because tasks were queued and none was dequeued for too long.
    Starvation,
    /// Growth refused (or cut) because the process already uses about all cores.
    CpuBound,
    /// Growth for latency refused because most workers are idle.
    AppLimited,
    /// Shrunk (within the stabilization window and the per-tick limit).
    ScaleDown,
    /// Clamped to `min_workers` / `max_workers`.
    Bounds,
}

impl Rule {
    /// Every rule, for pre-registering metric label values.
    pub const ALL: [Rule; 10] = [
        Rule::Hold,
        Rule::Model,
        Rule::LatencyTrim,
        Rule::Probe,
        Rule::Saturated,
        Rule::Starvation,
        Rule::CpuBound,
        Rule::AppLimited,
        Rule::ScaleDown,
        Rule::Bounds,
    ];

    /// A stable snake_case name, for tracing fields and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::Hold => "hold",
            Rule::Model => "model",
            Rule::LatencyTrim => "latency_trim",
            Rule::Probe => "probe",
            Rule::Saturated => "saturated",
            Rule::Starvation => "starvation",
            Rule::CpuBound => "cpu_bound",
            Rule::AppLimited => "app_limited",
            Rule::ScaleDown => "scale_down",
            Rule::Bounds => "bounds",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tick's decision and the signals behind it.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    /// When (the signals' `now_ns`).
    pub at_ns: u64,
    /// The target in force before this tick.
    pub from: usize,
    /// The new target.
    pub to: usize,
    /// The rule that set `to` (or, when `to == from`, why nothing moved).
    pub rule: Rule,
    /// The strategy in force.
    pub strategy: StrategyKind,
    /// Smoothed arrival rate λ̂ the model used, per second.
    pub lambda: f64,
    /// Smoothed mean service time Ŝ, seconds (0 until a task has completed).
    pub service_s: f64,
    /// The merged p99 wait when evidence completed this tick, else the window's own p99.
    pub wait_p99_s: Option<f64>,
    /// Mean busy workers over live workers in the window, 0..1.
    pub utilisation: f64,
    /// The model's demand in workers (additive across replicas; may exceed `max_workers`).
    pub demand_workers: f64,
    /// Queue depth at tick time.
    pub queue_depth: usize,
    /// Live workers at tick time.
    pub live: usize,
    /// How far the pool may grow on demand before the next tick (a task queued and no
    /// worker idle). Equal to `to` when the work is CPU-bound (more threads than cores only
    /// move the wait into the OS run queue); the policy's max when the work is known to
    /// block rather than compute; `to` plus headroom while that is not yet known.
    pub ceiling: usize,
    /// The queue depth that counts as a burst until the next tick: one that the model's
    /// M/M/c queue at size `to` reaches for at most 1 arrival in 1000
    /// ([`crate::erlang::queue_for_tail`]; `to` while there is no model), and at least
    /// [`MIN_BURST_QUEUE`]. A queue this deep
    /// starts workers at once (up to `ceiling`); a shorter one only after the spawn grace, so
    /// the ordinary tail of a right-sized pool does not grow it.
    pub burst_queue: usize,
}

impl Decision {
    /// The target changed.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// Windows of p99 wait merged until they hold enough samples (fixed ring, no allocation).
#[derive(Clone, Debug)]
struct Evidence {
    p99: [f64; EVIDENCE_SLOTS],
    samples: [u64; EVIDENCE_SLOTS],
    head: usize,
    len: usize,
}

impl Evidence {
    fn new() -> Self {
        Evidence {
            p99: [0.0; EVIDENCE_SLOTS],
            samples: [0; EVIDENCE_SLOTS],
            head: 0,
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    fn push(&mut self, p99: f64, samples: u64) {
        let i = (self.head + self.len) % EVIDENCE_SLOTS;
        self.p99[i] = p99;
        self.samples[i] = samples;
        if self.len < EVIDENCE_SLOTS {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % EVIDENCE_SLOTS;
        }
    }

    fn total(&self) -> u64 {
        (0..self.len)
            .map(|k| self.samples[(self.head + k) % EVIDENCE_SLOTS])
            .sum()
    }

    /// The merged p99, when at least `min` samples have gathered; the windows are then used up.
    ///
    /// Each window says about `max(1, 1%·n)` of its samples were at or above its p99 (a window
    /// of fewer than 100 samples reports its maximum). Walking the windows from the highest p99
    /// down, the merged p99 is the first whose running tail count reaches 1% of all samples.
    /// It errs high when small windows are merged, the safe side for an SLO.
    fn take(&mut self, min: u64) -> Option<WaitEvidence> {
        let total = self.total();
        if self.len == 0 || total < min.max(1) {
            return None;
        }
        let mut rows = [(0.0_f64, 0_u64); EVIDENCE_SLOTS];
        for (k, row) in rows.iter_mut().enumerate().take(self.len) {
            let i = (self.head + k) % EVIDENCE_SLOTS;
            *row = (self.p99[i], self.samples[i]);
        }
        let rows = &mut rows[..self.len];
        rows.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let need = 0.01 * total as f64;
        let mut tail = 0.0;
        let mut p99 = rows[0].0;
        for &(p, n) in rows.iter() {
            p99 = p;
            tail += (0.01 * n as f64).max(1.0);
            if tail >= need {
                break;
            }
        }
        let windows = self.len as u32;
        self.clear();
        Some(WaitEvidence {
            p99_s: p99,
            samples: total,
            windows,
        })
    }
}

/// The stabilization window: recent recommendations with their times (fixed ring).
#[derive(Clone, Debug)]
struct Window {
    at_ns: [u64; WINDOW_SLOTS],
    rec: [u32; WINDOW_SLOTS],
    head: usize,
    len: usize,
}

impl Window {
    fn new() -> Self {
        Window {
            at_ns: [0; WINDOW_SLOTS],
            rec: [0; WINDOW_SLOTS],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, at_ns: u64, rec: usize) {
        let i = (self.head + self.len) % WINDOW_SLOTS;
        self.at_ns[i] = at_ns;
        self.rec[i] = u32::try_from(rec).unwrap_or(u32::MAX);
        if self.len < WINDOW_SLOTS {
            self.len += 1;
        } else {
            self.head = (self.head + 1) % WINDOW_SLOTS;
        }
    }

    /// The highest recommendation recorded at or after `since_ns` (and not after `now_ns`).
    fn max_since(&self, since_ns: u64, now_ns: u64) -> Option<usize> {
        (0..self.len)
            .map(|k| (self.head + k) % WINDOW_SLOTS)
            .filter(|&i| self.at_ns[i] >= since_ns && self.at_ns[i] <= now_ns)
            .map(|i| self.rec[i] as usize)
            .max()
    }
}

/// The autoscaler's state machine: smoothing, evidence, the strategy, the stabilization window.
///
/// Create it once with [`Scaler::new`] and call [`Scaler::tick`] each control tick with the
/// policy in force; a different policy (including another strategy) takes effect at that tick.
#[derive(Clone, Debug)]
pub struct Scaler {
    kind: StrategyKind,
    strategy: AnyStrategy,
    lambda_mean: Ewma,
    lambda_peak: PeakEwma,
    /// An EWMA of `lambda_mean` (Brown's double smoothing): `2·mean − this` follows a linear
    /// trend without the mean's lag.
    lambda_mean2: Ewma,
    service: Ewma,
    busy_mean: Ewma,
    rate_tau_s: f64,
    service_tau_s: f64,
    evidence: Evidence,
    window: Window,
    /// Too-small memory: do not shrink below this while λ̂ ≥ `too_small_lambda·(1 − release)`.
    too_small: usize,
    too_small_lambda: f64,
    /// The next window's waits belong to tasks queued before a resize: skip them.
    skip_window: bool,
    /// The CPU share of the work, `k`, kept across windows in which nothing ran: from probed
    /// tasks (`cpu / (cpu + blocked)`) once any were seen, else process CPU over busy workers.
    cpu_share: Option<f64>,
    /// Probe sums decayed with time constant `rate_tau_s`: (tasks, CPU s, blocked s). A few
    /// seconds of probes, not one window's: with 20% spin tasks among sleep tasks, eight
    /// probes in a row put the share above 0.5 often enough to cap the pool at the cores.
    probes: (f64, f64, f64),
    /// Some task was probed: the share comes from probes only from then on.
    probed: bool,
}

fn tau(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::from_secs(1)
    }
}

impl Scaler {
    /// A scaler for `policy`, with no history.
    pub fn new(policy: &Policy) -> Self {
        Scaler {
            kind: policy.strategy,
            strategy: AnyStrategy::new(policy.strategy),
            lambda_mean: Ewma::new(tau(policy.rate_tau_s)),
            lambda_peak: PeakEwma::new(tau(policy.rate_tau_s)),
            lambda_mean2: Ewma::new(tau(policy.rate_tau_s)),
            service: Ewma::new(tau(policy.service_tau_s)),
            busy_mean: Ewma::new(tau(policy.rate_tau_s)),
            rate_tau_s: policy.rate_tau_s,
            service_tau_s: policy.service_tau_s,
            evidence: Evidence::new(),
            window: Window::new(),
            too_small: 0,
            too_small_lambda: 0.0,
            skip_window: false,
            cpu_share: None,
            probes: (0.0, 0.0, 0.0),
            probed: false,
        }
    }

    /// The strategy in force (as of the last tick).
    pub fn strategy(&self) -> StrategyKind {
        self.kind
    }

    /// Forgets all history (smoothing, evidence, window, strategy state).
    pub fn reset(&mut self, policy: &Policy) {
        *self = Scaler::new(policy);
    }

    /// Follows a swapped policy: another strategy is rebuilt (its state and the evidence start
    /// afresh), new time constants apply from now on.
    fn follow(&mut self, policy: &Policy) {
        if policy.strategy != self.kind {
            self.kind = policy.strategy;
            self.strategy = AnyStrategy::new(policy.strategy);
            self.evidence.clear();
        }
        if policy.rate_tau_s != self.rate_tau_s {
            self.rate_tau_s = policy.rate_tau_s;
            let t = tau(policy.rate_tau_s);
            self.lambda_mean.set_tau(t);
            self.lambda_peak.set_tau(t);
            self.lambda_mean2.set_tau(t);
            self.busy_mean.set_tau(t);
        }
        if policy.service_tau_s != self.service_tau_s {
            self.service_tau_s = policy.service_tau_s;
            self.service.set_tau(tau(policy.service_tau_s));
        }
    }

    /// One control tick: smoothing, evidence, strategy, guards and stabilization.
    ///
    /// Pure: no clock, no I/O, no allocation. `policy` is the policy in force at this tick
    /// (it should have passed [`Policy::validate`]; out-of-range values are tolerated, never a
    /// panic). `s.target` is the target in force; the returned [`Decision::to`] is the new one.
    pub fn tick(&mut self, s: &TickSignals, policy: &Policy) -> Decision {
        self.follow(policy);
        let now = s.now_ns;
        let min = policy.min_workers;
        let max = policy.max_workers.max(min).max(1);

        // 1. Smoothing.
        let dt = if s.dt_s.is_finite() && s.dt_s > 0.0 {
            s.dt_s
        } else {
            0.0
        };
        let (lambda_window, busy, throughput) = if dt > 0.0 {
            let n = s.arrivals as f64;
            let rate = n / dt;
            // A window is a burst when its count n is significantly above the count m the mean
            // rate predicts: √n − √m > PEAK_Z/2 (the square root makes Poisson counts' variance
            // 1/4 whatever the rate, so this is PEAK_Z standard deviations, fair at low rates
            // too). A burst's rate is taken at once; otherwise the peak decays to the mean.
            let expected = self.lambda_mean.value().unwrap_or(0.0) * dt;
            let burst = n.sqrt() - expected.sqrt() > PEAK_Z / 2.0;
            let mean = self.lambda_mean.update(rate, now);
            self.lambda_mean2.update(mean, now);
            self.lambda_peak
                .update(if burst { rate } else { mean }, now);
            let busy = if s.busy_s.is_finite() {
                (s.busy_s / dt).max(0.0)
            } else {
                0.0
            };
            self.busy_mean.update(busy, now);
            (rate, busy, s.completions as f64 / dt)
        } else {
            (0.0, 0.0, 0.0)
        };
        if let Some(sv) = s.service_mean_s.filter(|v| v.is_finite() && *v > 0.0) {
            self.service.update(sv, now);
        }
        let lambda_mean = self.lambda_mean.value().unwrap_or(0.0);
        // Whether on-demand growth absorbs bursts (see `TickSignals::on_demand`): known
        // blocking work, CPU not saturated.
        let cpu_now = s
            .cpu_util
            .filter(|u| u.is_finite())
            .map(|u| u.clamp(0.0, 1.0));
        self.update_cpu_share(s, cpu_now, busy, dt);
        let ncpu = s.ncpu.max(1) as f64;
        // CPU-bound: the process uses ~all cores, or the busy workers' CPU demand would fill
        // them (what a contended machine's process CPU cannot show).
        let cpu_high = cpu_now.is_some_and(|u| u >= policy.cpu_busy_ratio)
            || self
                .cpu_share
                .is_some_and(|k| k >= CPU_HEAVY && busy * k >= policy.cpu_busy_ratio * ncpu);
        let absorb = s.on_demand && !cpu_high && self.cpu_share.is_some_and(|k| k < CPU_HEAVY);
        // A rising rate: the mean lags a linear climb by its slope × τ; Brown's level
        // `2·S₁ − S₂` does not. Only upward: a falling rate's lag errs on the safe side.
        let lambda_level = self
            .lambda_mean2
            .value()
            .map_or(lambda_mean, |s2| lambda_mean.max(2.0 * lambda_mean - s2));
        let lambda = if absorb {
            lambda_level
        } else {
            lambda_mean.max(self.lambda_peak.value().unwrap_or(0.0))
        };
        // Standard deviation of the mean EWMA of Poisson window rates: √(λ / 2τ).
        let lambda_sigma = (lambda_mean / (2.0 * self.rate_tau_s.max(1e-3))).sqrt();
        let drain = if policy.backlog_drain_s.is_finite() && policy.backlog_drain_s > 0.0 {
            policy.backlog_drain_s
        } else {
            1.0
        };
        let q = s.queue_depth;
        let lambda_eff = lambda + q as f64 / drain;

        // 2. Latency evidence.
        if let Some(w) = s.wait_p99_s.filter(|w| w.is_finite() && *w >= 0.0) {
            if s.wait_samples > 0 && !self.skip_window {
                self.evidence.push(w, s.wait_samples);
            }
        }
        self.skip_window = false;
        let evidence = self.evidence.take(policy.min_wait_samples);

        // 3. Strategy.
        let from = s.target;
        let c = from.clamp(min, max);
        let busy_mean = self.busy_mean.value().unwrap_or(busy);
        let view = Smoothed {
            signals: *s,
            c,
            lambda_window,
            lambda,
            lambda_sigma,
            lambda_eff,
            service_s: self.service.value(),
            busy,
            busy_mean,
            busy_hi: if lambda_mean > 0.0 {
                busy_mean * (lambda / lambda_mean).max(1.0)
            } else {
                busy_mean.max(busy)
            },
            throughput,
            evidence,
            target_wait_s: policy.target_p99_wait_ms / 1000.0,
            backlogged: q > 0 || s.saturated,
        };
        // Too-small memory: a size whose p99 (gathered at that size: evidence is void after a
        // resize) was over the target, with workers busy enough to blame the size, is not
        // shrunk back to while the load stays.
        if self.too_small > 0
            && lambda < self.too_small_lambda * (1.0 - policy.floor_release) - 3.0 * lambda_sigma
        {
            self.too_small = 0;
        }
        if let Some(ev) = evidence {
            if ev.p99_s > view.target_wait_s && !app_limited(busy_mean.max(busy), c) {
                self.too_small = self.too_small.max(c + 1);
                self.too_small_lambda = lambda;
            }
        }

        let rec = self.strategy.recommend(&view, policy);
        let mut rule = rec.rule;
        let mut want = rec.workers;
        // A guard, not the strategy, set `want`: the stabilization window remembers it as is.
        let mut set_by_guard = false;

        // 4. Guards.
        // App-limited: no growth for latency while most workers are idle.
        if let Some(w) = want {
            let base = rec.without_latency.unwrap_or(0);
            if w > c && w > base && app_limited(busy_mean.max(busy), c) {
                if base > c {
                    want = Some(base);
                    rule = Rule::Model;
                } else {
                    want = Some(c);
                    rule = Rule::AppLimited;
                }
            }
        }
        // Saturated: scale up now, whatever the evidence count (unless on-demand growth is
        // already absorbing the burst).
        if s.saturated && q > 0 && !absorb {
            let mut n = saturation_size(c, s.live, lambda_window, q, drain, throughput);
            if let Some(cap) = rec.cap {
                n = n.min(cap.max(c));
            }
            if n > c && n > want.unwrap_or(c) {
                want = Some(n);
                rule = Rule::Saturated;
                set_by_guard = true;
            }
        }
        // Starvation backstop: queued work and nothing dequeued for too long.
        if q > 0 && s.since_last_dequeue_s * 1000.0 > policy.starvation_ms && !cpu_high {
            want = Some(want.unwrap_or(c).max(c + 1));
            rule = Rule::Starvation;
            set_by_guard = true;
        }
        // CPU-bound: nothing past the core count divided by the share of busy time spent on
        // a core (the model may ask for more when CPU contention stretches run times: those
        // threads would only queue for a core, so the pool is brought back down to it), and
        // no growth at all while the work already fills ~all cores.
        let cpu_cap = self
            .cpu_share
            .filter(|k| *k >= CPU_HEAVY)
            .map(|k| ((ncpu / k).ceil() as usize).max(1));
        if let Some(w) = want {
            if let Some(cap) = cpu_cap.filter(|cap| w > *cap) {
                want = Some(cap);
                rule = Rule::CpuBound;
                set_by_guard = true;
            }
        }
        if let Some(w) = want {
            if w > c && cpu_high {
                want = Some(c);
                rule = Rule::CpuBound;
            }
        }

        // 5. Stabilization.
        if let Some(w) = want {
            let remembered = if set_by_guard {
                w
            } else {
                rec.keep.unwrap_or(w)
            };
            self.window.push(now, remembered.min(max));
        }
        let mut to = match want {
            Some(w) if w > c => w.min(c.saturating_add(policy.max_step_up.max(1))),
            Some(w) if w < c => {
                let window_ns = secs_to_ns(policy.scale_down_window_s);
                let highest = self
                    .window
                    .max_since(now.saturating_sub(window_ns), now)
                    .unwrap_or(c);
                let tenth = c * 9 / 10;
                let step = c.saturating_sub(policy.max_step_down.max(1));
                // A size found not to pay (a strategy's cap) overrides the too-small memory:
                // more workers than that do not lower the wait either.
                let too_small = rec
                    .cap
                    .into_iter()
                    .chain(cpu_cap)
                    .fold(self.too_small, usize::min);
                let floor = highest.max(tenth).max(step).max(w).max(too_small);
                if floor < c {
                    rule = Rule::ScaleDown;
                    floor
                } else {
                    c
                }
            }
            _ => c,
        };
        let unclamped = to;
        to = to.clamp(min, max);
        if to != unclamped || (to == c && c != from) {
            rule = Rule::Bounds;
        }
        if to == from && !matches!(rule, Rule::CpuBound | Rule::AppLimited | Rule::Bounds) {
            rule = Rule::Hold;
        }

        // 6. After a change, evidence gathered at the old size is void.
        if to != from {
            self.evidence.clear();
            // Tasks still queued waited (partly) at the old size; their waits are reported in
            // the next window.
            self.skip_window = q > 0;
            self.strategy.on_resize(from, to);
        }

        // 7. Growth ceiling between ticks.
        let ceiling = if cpu_high {
            to
        } else {
            match self.cpu_share {
                Some(k) if k >= CPU_HEAVY => {
                    let cores = (ncpu / k).ceil() as usize;
                    to.max(cores).min(max)
                }
                Some(_) => max,
                None => to.saturating_mul(2).max(to + s.ncpu.max(1)).min(max),
            }
        }
        .max(to);
        let burst_queue = match self.service.value() {
            Some(sv) if lambda > 0.0 && sv > 0.0 => {
                let tail = BURST_TAIL.min(BURST_FALSE_PER_S / lambda);
                queue_for_tail(to, lambda * sv, tail, to.max(1).saturating_mul(2))
            }
            _ => to.max(1),
        }
        .max(MIN_BURST_QUEUE);

        Decision {
            at_ns: now,
            from,
            to,
            ceiling,
            burst_queue,
            rule,
            strategy: self.kind,
            lambda,
            service_s: self.service.value().unwrap_or(0.0),
            wait_p99_s: evidence.map(|e| e.p99_s).or(s.wait_p99_s),
            utilisation: if s.live > 0 {
                (busy / s.live as f64).min(1.0)
            } else {
                0.0
            },
            demand_workers: if rec.demand_workers.is_finite() {
                rec.demand_workers.max(0.0)
            } else {
                0.0
            },
            queue_depth: q,
            live: s.live,
        }
    }

    /// Updates the CPU share of the work from the probes of the last few seconds (once there
    /// are [`PROBES_MIN`] of them), or, until any task was probed, from process CPU over busy
    /// workers.
    fn update_cpu_share(&mut self, s: &TickSignals, cpu_now: Option<f64>, busy: f64, dt: f64) {
        let cpu = s.cpu_probe_cpu_s;
        let blocked = s.cpu_probe_blocked_s;
        if s.cpu_probes > 0 && cpu >= 0.0 && blocked >= 0.0 && (cpu + blocked).is_finite() {
            self.probed = true;
            let keep = (-dt / self.rate_tau_s.max(1e-3)).exp();
            let p = &mut self.probes;
            *p = (
                p.0 * keep + s.cpu_probes as f64,
                p.1 * keep + cpu,
                p.2 * keep + blocked,
            );
            if p.0 >= PROBES_MIN && p.1 + p.2 > 0.0 {
                self.cpu_share = Some((p.1 / (p.1 + p.2)).clamp(0.0, 1.0));
            }
        } else if !self.probed {
            if let Some(u) = cpu_now {
                if busy >= 0.5 {
                    self.cpu_share = Some((u * s.ncpu.max(1) as f64 / busy).min(1.0));
                }
            }
        }
    }
}

/// Most workers are idle: `a < 0.5c`, and `c` is above what square-root staffing would ever
/// ask for at this load (`a + 3√a + 1`). The second condition matters for small pools only:
/// M/M/c needs 4 workers for λ = 20/s at S = 50 ms (a = 1) and T = 20 ms, where `a < 0.5c`
/// alone would forbid growing past 2.
fn app_limited(a: f64, c: usize) -> bool {
    let c = c as f64;
    a < APP_LIMITED * c && c > a + 3.0 * a.max(0.0).sqrt() + 1.0
}

fn secs_to_ns(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e9).min(u64::MAX as f64) as u64
    } else {
        0
    }
}
