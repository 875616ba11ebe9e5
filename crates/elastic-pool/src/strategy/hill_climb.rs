//! The `hill-climb` strategy: throughput probing for CPU-bound work or work that blocks an
//! unknown amount (control.md, "Strategy C").
//!
//! .NET's thread pool hill-climbs with a square-wave probe and Goertzel filters; its own
//! maintainers report it slow to respond to blocking, poor at low thread counts and noisy on few
//! cores. This is a simpler, robust variant:
//!
//! - **No backlog** (queue empty, some worker idle): size for the demand by square-root
//!   staffing on the busy count, `⌈â + 2√â⌉` (at least `⌈â⌉ + 1`; `â` burst-aware), and let the
//!   stabilization window remember 10% (at least one worker) more, so noise in `â` gives no
//!   reversals.
//! - **Backlog**: hold the size for `probe_ticks` ticks (or until the saturation guard moves
//!   it) and measure throughput `X` there. Then
//!   - if the last step up (from `c₀` to `c`) did not raise `X` by at least `min_gain` of the
//!     proportional gain `(c − c₀)/c₀`, it did not pay: go back to `c₀` and keep `c₀` as a
//!     ceiling — a cap the scaler's saturation guard respects too, so work serialised on a lock
//!     or a slow dependency does not grow the pool to `max_workers`. Every `ceiling_hold_s` the
//!     ceiling lets one more `probe_step` through; a step that pays clears it;
//!   - otherwise step up, to `max(c + probe_step, ncpu + blocked)` (at most `2c`), where
//!     `blocked = a − cpu·ncpu` estimates busy workers that are not on a core — the robust
//!     `c = ncpu + blocked` rule for few cores.
//!
//! A step up is tentative: the stabilization window remembers the size before it, so a step
//! that did not pay is undone at once. The scaler's CPU guard stops growth at ~95% CPU, which
//! is what keeps CPU-bound work near the core count.

use crate::policy::Policy;
use crate::scaler::Rule;

use super::{ceil_workers, Recommendation, Smoothed, Strategy};

/// β of square-root staffing `c = a + β√a` when there is no backlog.
const STAFFING_BETA: f64 = 2.0;

/// State of the `hill-climb` strategy.
#[derive(Clone, Debug, Default)]
pub struct HillClimb {
    /// The size being measured.
    level_c: usize,
    /// Ticks measured at `level_c` under backlog.
    level_ticks: u32,
    /// Completions and seconds measured at `level_c`.
    level_done: u64,
    level_dt: f64,
    /// The previous judged level: (size, throughput).
    prev: Option<(usize, f64)>,
    /// The largest size known to pay (0: none); raised by a probe step every `ceiling_hold_s`,
    /// cleared when a step pays.
    ceiling: usize,
    ceiling_until_ns: u64,
    last_demand: f64,
}

impl HillClimb {
    /// A fresh strategy.
    pub fn new() -> Self {
        HillClimb::default()
    }

    fn reset_level(&mut self, c: usize) {
        self.level_c = c;
        self.level_ticks = 0;
        self.level_done = 0;
        self.level_dt = 0.0;
    }
}

impl Strategy for HillClimb {
    fn name(&self) -> &'static str {
        "hill-climb"
    }

    fn recommend(&mut self, s: &Smoothed, policy: &Policy) -> Recommendation {
        let p = &policy.hill_climb;
        let sig = &s.signals;
        let c = s.c;
        let hold_ns = (p.ceiling_hold_s.max(0.0) * 1e9).min(u64::MAX as f64) as u64;
        if self.ceiling > 0 && sig.now_ns >= self.ceiling_until_ns {
            // The ceiling has held long enough: allow one more step, as a probe.
            self.ceiling = self.ceiling.saturating_add(p.probe_step);
            self.ceiling_until_ns = sig.now_ns.saturating_add(hold_ns);
        }

        if !s.backlogged {
            self.reset_level(c);
            self.prev = None;
            // Square-root staffing on the (burst-aware) busy count, one more worker remembered.
            let a = s.busy_hi.max(0.0);
            let n = if a > 0.0 {
                ceil_workers(a + STAFFING_BETA * a.sqrt()).max(ceil_workers(a) + 1)
            } else {
                0
            };
            self.last_demand = s.busy_mean;
            let keep = if n == 0 {
                0
            } else {
                (n + 1).max(ceil_workers(1.1 * (a + STAFFING_BETA * a.sqrt())))
            };
            return Recommendation {
                keep: Some(keep),
                ..Recommendation::model(n, Rule::Model, self.last_demand)
            };
        }

        // A level ends when its probe_ticks are measured, or early when the size moved (the
        // saturation guard grows the pool between judgements): either way it is judged on
        // what was measured at it.
        let mut judged = None;
        if self.level_c != c {
            if self.level_ticks > 0 && self.level_dt > 0.0 {
                judged = Some((self.level_c, self.level_done as f64 / self.level_dt));
            }
            self.reset_level(c);
        }
        if sig.dt_s.is_finite() && sig.dt_s > 0.0 {
            self.level_ticks += 1;
            self.level_done += sig.completions;
            self.level_dt += sig.dt_s;
        }
        if judged.is_none() && self.level_ticks >= p.probe_ticks && self.level_dt > 0.0 {
            judged = Some((c, self.level_done as f64 / self.level_dt));
            self.reset_level(c);
        }
        let cap = (self.ceiling > 0).then_some(self.ceiling);
        let Some((cl, x)) = judged else {
            // Measuring: no opinion (records nothing, so a tentative step can be undone).
            return Recommendation {
                cap,
                ..Recommendation::none(self.last_demand.max(c as f64))
            };
        };

        if let Some((c0, x0)) = self.prev {
            if c0 < cl && c0 > 0 {
                let expected = (cl - c0) as f64 / c0 as f64;
                let gain = if x0 > 0.0 { x / x0 - 1.0 } else { 1.0 };
                if gain < p.min_gain * expected {
                    // The step did not pay: back to c0, and not above it for a while.
                    self.ceiling = c0;
                    self.ceiling_until_ns = sig.now_ns.saturating_add(hold_ns);
                    self.prev = Some((c0, x0));
                    self.last_demand = c0 as f64;
                    return Recommendation {
                        cap: Some(c0),
                        ..Recommendation::model(c0, Rule::Probe, self.last_demand)
                    };
                }
            }
        }
        if self.prev.is_some_and(|(c0, _)| c0 < cl) {
            // The step paid: whatever limited the pool before does not any more.
            self.ceiling = 0;
        }
        self.prev = Some((cl, x));

        let ncpu = sig.ncpu.max(1);
        let blocked = match sig.cpu_util {
            Some(u) if u.is_finite() => (s.busy - u.clamp(0.0, 1.0) * ncpu as f64).max(0.0),
            _ => 0.0,
        };
        let mut want = (c + p.probe_step)
            .max(ncpu + ceil_workers(blocked))
            .min(c.saturating_mul(2).max(c + p.probe_step));
        if self.ceiling > 0 {
            want = want.min(self.ceiling.max(c));
        }
        self.last_demand = want as f64;
        let cap = (self.ceiling > 0).then_some(self.ceiling);
        if want <= c {
            return Recommendation {
                cap,
                ..Recommendation::model(c, Rule::Hold, self.last_demand)
            };
        }
        Recommendation {
            workers: Some(want),
            without_latency: Some(want),
            // Tentative: the window remembers the judged size, so an unpaid step is undone.
            keep: Some(c),
            rule: Rule::Probe,
            demand_workers: self.last_demand,
            cap,
        }
    }
}
