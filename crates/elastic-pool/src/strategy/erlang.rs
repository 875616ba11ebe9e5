//! The `erlang` strategy: Little's law / Erlang-C sizing from the arrival rate and service time,
//! with a slow feedback trim on measured p99 (control.md, "Strategy B").
//!
//! With `λ_eff = λ̂ + Q/H` (the backlog drained over `H = backlog_drain_s`) and the smoothed
//! service time `Ŝ`, the offered load is `a = λ_eff·Ŝ` and the size is the fewest `c > a` with
//! `P(Wq > T_eff) = C(c, a)·e^(−(c − a)·T_eff/Ŝ) ≤ 0.01` ([`crate::erlang::workers_for_wait`]).
//!
//! The model assumes Poisson arrivals and exponential service. The trim absorbs the mismatch:
//! a merged p99 above the SLO `T` for `trim_after` evidence windows in a row tightens the
//! effective target (`T_eff ×= trim_factor`, floor `trim_floor·T`); below `T/2` for
//! `relax_after` windows relaxes it (`×= relax_factor`, up to `T`). The trim only tightens when
//! the pool actually had the size the model asked for: a p99 over target at a size capped by
//! `max_workers`, the CPU guard or the step limit says nothing about the model.
//!
//! Since the pool spawns on demand up to the target, the target is a ceiling: the λ̂ it is sized
//! for is peak-aware (a burst is taken at once and forgotten over `rate_tau_s`), and the
//! stabilization window remembers the size for `λ̂·(1 + hysteresis) + 3σ` (σ the Poisson noise
//! of the mean-rate estimate; hysteresis 0 by default), so noise in λ̂ rarely makes the size
//! flip between neighbouring sizes: 0–3 reversals in ten minutes of steady load (the scaler
//! tests), against a trace target of 2 a minute.

use crate::erlang::workers_for_wait;
use crate::policy::{Policy, MAX_WORKERS_LIMIT};
use crate::scaler::Rule;

use super::{Recommendation, Smoothed, Strategy};

/// The tail mass of a p99 target.
const TAIL: f64 = 0.01;
/// Below this many expected arrivals per window the load counts as none.
const IDLE_ARRIVALS: f64 = 0.01;
/// Standard deviations of λ̂'s noise added to the rate the stabilization window remembers.
const KEEP_Z: f64 = 3.0;

/// State of the `erlang` strategy: the trim of the effective target.
#[derive(Clone, Debug)]
pub struct ErlangSizing {
    /// `T_eff / T`, in `[trim_floor, 1]`.
    trim: f64,
    /// Consecutive evidence windows over the target.
    over: u32,
    /// Consecutive evidence windows under half the target.
    under: u32,
    /// The size asked for at the previous tick (trim eligibility).
    last_rec: usize,
}

impl Default for ErlangSizing {
    fn default() -> Self {
        Self::new()
    }
}

impl ErlangSizing {
    /// A fresh strategy with no trim.
    pub fn new() -> Self {
        ErlangSizing {
            trim: 1.0,
            over: 0,
            under: 0,
            last_rec: 0,
        }
    }

    /// `T_eff / T`: 1.0 untrimmed, down to the policy's `erlang.trim_floor`.
    pub fn trim(&self) -> f64 {
        self.trim
    }
}

impl Strategy for ErlangSizing {
    fn name(&self) -> &'static str {
        "erlang"
    }

    fn recommend(&mut self, s: &Smoothed, policy: &Policy) -> Recommendation {
        let p = &policy.erlang;
        let t = s.target_wait_s;

        // Slow trim on merged p99 evidence.
        if let Some(ev) = s.evidence {
            if ev.p99_s > t {
                self.under = 0;
                if s.c >= self.last_rec {
                    self.over += 1;
                    if self.over >= p.trim_after {
                        self.trim = (self.trim * p.trim_factor).max(p.trim_floor);
                        self.over = 0;
                    }
                } else {
                    self.over = 0;
                }
            } else if ev.p99_s < 0.5 * t {
                self.over = 0;
                self.under += 1;
                if self.under >= p.relax_after {
                    self.trim = (self.trim * p.relax_factor).min(1.0);
                    self.under = 0;
                }
            } else {
                self.over = 0;
                self.under = 0;
            }
        }
        // The trim may outlive a policy swap that changed its bounds.
        self.trim = self.trim.clamp(p.trim_floor.min(1.0), 1.0);

        let lambda = s.lambda_eff;
        if lambda * s.signals.dt_s.max(0.0) < IDLE_ARRIVALS {
            // No load (or what is left of it as the estimate decays): no workers needed.
            return Recommendation::model(0, Rule::ScaleDown, 0.0);
        }
        let Some(service) = s.service_s else {
            // No completed task yet: no model. The guards (saturation, starvation) still act.
            return Recommendation::none(s.busy_mean);
        };
        // Search bound: above max_workers so the demand can say "more than this pod has".
        let cap = policy
            .max_workers
            .saturating_mul(2)
            .saturating_add(16)
            .min(2 * MAX_WORKERS_LIMIT);
        let t_eff = t * self.trim;
        let base = workers_for_wait(lambda, service, t, TAIL, cap);
        let trimmed = if self.trim < 1.0 {
            workers_for_wait(lambda, service, t_eff, TAIL, cap)
        } else {
            base
        };
        // What the window remembers: the size for a rate this much higher than the estimate,
        // relative (hysteresis) plus three standard deviations of the estimate's own noise.
        let high = lambda * (1.0 + p.hysteresis.max(0.0)) + KEEP_Z * s.lambda_sigma;
        let keep = if high > lambda {
            workers_for_wait(high, service, t_eff, TAIL, cap)
        } else {
            trimmed
        };
        self.last_rec = trimmed;

        let offered = lambda * service;
        let demand = if base >= cap {
            offered.max(base as f64)
        } else {
            base as f64
        };
        let rule = if trimmed > base {
            Rule::LatencyTrim
        } else {
            Rule::Model
        };
        Recommendation {
            workers: Some(trimmed),
            without_latency: Some(base),
            keep: Some(keep.max(trimmed)),
            rule,
            demand_workers: demand,
            cap: None,
        }
    }

    fn on_resize(&mut self, _from: usize, _to: usize) {
        // Streaks were measured at the old size.
        self.over = 0;
        self.under = 0;
    }
}
