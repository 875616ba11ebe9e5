//! The `queue-wait` strategy: model-free feedback on measured p99 wait, applied to spare
//! capacity rather than to the whole pool (control.md, "Strategy A").
//!
//! With `r = p99 / T`, `a` the mean busy workers and `c` the current size:
//!
//! - saturated (no worker idle and tasks queued) or `c − a < 0.5`: arrivals over throughput is
//!   linear in `c`, so the ratio form is valid: [`super::saturation_size`];
//! - not enough wait samples yet: no opinion (hold, record nothing) — unless the pool is idle
//!   (under one arrival a window, under one worker busy): then shrink to what is busy;
//! - `hold_low ≤ r ≤ hold_high`: hold — `T` is a ceiling, not a setpoint;
//! - otherwise `c' = ⌈a + (c − a)·clamp(r, hold_low, max_ratio)⌉`: only the spare capacity
//!   `c − a` is scaled, because p99 wait does not scale like `1/c` (HPA's ratio on the whole pool
//!   oscillates, see `docs/SCALING.md`).
//!
//! p99 wait is a cliff (it drops to exactly 0 once fewer than 1% of tasks wait), so a feedback
//! loop that shrinks on "p99 well under target" would probe below the right size forever; the
//! scaler's too-small memory (`floor_release`, see [`crate::scaler`]) stops that. The strategy
//! also remembers the smallest size that met the target at this load, and grows no further
//! than that after a miss: one step back instead of the formula's overshoot.

use crate::policy::Policy;
use crate::scaler::Rule;

use super::{ceil_workers, saturation_size, Recommendation, Smoothed, Strategy};

/// State of the `queue-wait` strategy: the last demand estimate, reported between evidence
/// windows.
#[derive(Clone, Debug, Default)]
pub struct QueueWait {
    last_demand: f64,
    /// Smallest size seen meeting the target (0: none), and the arrival rate then.
    good: usize,
    good_lambda: f64,
}

impl QueueWait {
    /// A fresh strategy.
    pub fn new() -> Self {
        QueueWait::default()
    }
}

impl Strategy for QueueWait {
    fn name(&self) -> &'static str {
        "queue-wait"
    }

    fn recommend(&mut self, s: &Smoothed, policy: &Policy) -> Recommendation {
        let p = &policy.queue_wait;
        let c = s.c;
        let a = s.busy_mean.max(s.busy);
        let sig = &s.signals;

        if (sig.saturated && sig.queue_depth > 0) || (a > 0.0 && c as f64 - a < 0.5) {
            let n = saturation_size(
                c,
                sig.live,
                s.lambda_window,
                sig.queue_depth,
                policy.backlog_drain_s,
                s.throughput,
            );
            self.last_demand = n as f64;
            return Recommendation::model(n, Rule::Saturated, self.last_demand);
        }

        let Some(ev) = s.evidence else {
            // No evidence comes without traffic: an idle pool (under one arrival a window, not
            // one worker busy) shrinks to what is busy rather than holding forever.
            if !s.backlogged && s.lambda * sig.dt_s.max(0.0) < 1.0 && s.busy_hi < 1.0 {
                self.last_demand = s.busy_hi;
                let n = ceil_workers(s.busy_hi);
                return Recommendation::model(n, Rule::ScaleDown, self.last_demand);
            }
            return Recommendation::none(self.last_demand.max(s.busy_mean));
        };
        let r = if s.target_wait_s > 0.0 {
            ev.p99_s / s.target_wait_s
        } else {
            p.max_ratio
        };
        let r = if r.is_nan() { p.max_ratio } else { r };
        let a = a.min(c as f64);
        // The smallest size that met the target stays known-good until the load grows past
        // `floor_release`; growth after a miss goes no further than it, so a miss near the
        // boundary costs one worker, not the formula's overshoot.
        if self.good > 0
            && s.lambda > self.good_lambda * (1.0 + policy.floor_release) + 3.0 * s.lambda_sigma
        {
            self.good = 0;
        }
        if r <= p.hold_high && (self.good == 0 || c < self.good) {
            self.good = c;
            self.good_lambda = s.lambda;
        } else if r > p.hold_high && self.good > 0 && c >= self.good {
            // The smallest good size missed (it was luck, or the load crept up): the next
            // size up is the best guess.
            self.good = c + 1;
        }
        if (p.hold_low..=p.hold_high).contains(&r) {
            self.last_demand = c as f64;
            return Recommendation {
                workers: Some(c),
                without_latency: None,
                keep: None,
                rule: Rule::Hold,
                demand_workers: self.last_demand,
                cap: None,
            };
        }
        let wanted = a + (c as f64 - a) * r.clamp(p.hold_low, p.max_ratio);
        self.last_demand = wanted;
        let mut n = ceil_workers(wanted);
        if n > c && self.good > c {
            n = n.min(self.good);
        }
        if n == c {
            return Recommendation {
                workers: Some(c),
                without_latency: None,
                keep: None,
                rule: Rule::Hold,
                demand_workers: wanted,
                cap: None,
            };
        }
        Recommendation {
            workers: Some(n),
            without_latency: None,
            keep: None,
            rule: if n > c {
                Rule::LatencyTrim
            } else {
                Rule::ScaleDown
            },
            demand_workers: wanted,
            cap: None,
        }
    }
}
