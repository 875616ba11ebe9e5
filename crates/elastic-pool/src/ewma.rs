//! Time-aware exponentially weighted moving averages: [`Ewma`] and [`PeakEwma`] (the peak-EWMA
//! of tower's `load::PeakEwma`, after Finagle's).
//!
//! Samples arrive at irregular times (the control tick is jittered), so the weight of a sample
//! depends on the time since the previous one rather than on a fixed per-sample alpha:
//!
//! ```text
//! est ← est·e^(−Δt/τ) + x·(1 − e^(−Δt/τ))
//! ```
//!
//! After `Δt = τ` the old estimate keeps `e^−1 ≈ 37%` of its weight; after `Δt = τ·ln 2` it keeps
//! half. Time is an injected `now_ns` (nanoseconds since any fixed origin, such as
//! [`Clock::now_ns`](crate::clock::Clock::now_ns)), so tests and simulations run on virtual time.
//! Both types are plain values owned by the control thread: O(1) memory, no atomics.

use std::time::Duration;

/// An exponentially weighted moving average that decays with elapsed time, time constant `τ`.
///
/// - The first sample primes it: the first [`update`](Self::update) returns `x`.
/// - A `now_ns` earlier than the latest one seen counts as `Δt = 0` (the sample then has no
///   weight), and the latest time is kept, so a clock step backwards never inflates a later `Δt`.
/// - A `τ` of zero means no smoothing: the estimate is always the last sample.
/// - Non-finite samples (NaN, ±∞) are ignored: the state, time included, is left unchanged.
#[derive(Clone, Debug)]
pub struct Ewma {
    tau_ns: f64,
    est: Option<f64>,
    last_ns: u64,
}

impl Ewma {
    /// An empty average with time constant `tau`.
    pub fn new(tau: Duration) -> Self {
        Ewma {
            tau_ns: tau.as_nanos() as f64,
            est: None,
            last_ns: 0,
        }
    }

    /// Folds in sample `x` taken at `now_ns` and returns the new estimate.
    ///
    /// A non-finite `x` is ignored and the current estimate returned (NaN if there is none yet).
    pub fn update(&mut self, x: f64, now_ns: u64) -> f64 {
        if !x.is_finite() {
            return self.est.unwrap_or(f64::NAN);
        }
        let est = match self.est {
            None => x,
            Some(prev) => {
                let dt_ns = now_ns.saturating_sub(self.last_ns) as f64;
                prev + (x - prev) * self.weight(dt_ns)
            }
        };
        self.est = Some(est);
        self.last_ns = self.last_ns.max(now_ns);
        est
    }

    /// The weight `1 − e^(−Δt/τ)` of a new sample after `dt_ns`; 1 when `τ = 0`.
    #[inline]
    fn weight(&self, dt_ns: f64) -> f64 {
        if self.tau_ns == 0.0 {
            1.0
        } else {
            // exp_m1 keeps precision when Δt ≪ τ.
            -(-dt_ns / self.tau_ns).exp_m1()
        }
    }

    /// The current estimate, or `None` before the first (finite) sample.
    pub fn value(&self) -> Option<f64> {
        self.est
    }

    /// Forgets the estimate and the last sample time; the next sample primes it again. `τ` is kept.
    pub fn reset(&mut self) {
        self.est = None;
        self.last_ns = 0;
    }

    /// Changes the time constant for later updates; the current estimate is kept.
    pub fn set_tau(&mut self, tau: Duration) {
        self.tau_ns = tau.as_nanos() as f64;
    }
}

/// A peak-sensitive [`Ewma`]: a sample above the estimate is taken at once; a sample at or below
/// it is folded in like [`Ewma`], so the estimate falls with time constant `τ`.
///
/// This reacts to a load spike within one sample and forgets it slowly, as tower's `PeakEwma`
/// does for latency. Priming, time going backwards, `τ = 0` and non-finite samples behave as for
/// [`Ewma`].
#[derive(Clone, Debug)]
pub struct PeakEwma {
    inner: Ewma,
}

impl PeakEwma {
    /// An empty peak average with time constant `tau`.
    pub fn new(tau: Duration) -> Self {
        PeakEwma {
            inner: Ewma::new(tau),
        }
    }

    /// Folds in sample `x` taken at `now_ns` and returns the new estimate.
    ///
    /// A non-finite `x` is ignored and the current estimate returned (NaN if there is none yet).
    pub fn update(&mut self, x: f64, now_ns: u64) -> f64 {
        match self.inner.est {
            Some(est) if x > est && x.is_finite() => {
                self.inner.est = Some(x);
                self.inner.last_ns = self.inner.last_ns.max(now_ns);
                x
            }
            _ => self.inner.update(x, now_ns),
        }
    }

    /// The current estimate, or `None` before the first (finite) sample.
    pub fn value(&self) -> Option<f64> {
        self.inner.value()
    }

    /// Forgets the estimate and the last sample time; the next sample primes it again. `τ` is kept.
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Changes the time constant for later updates; the current estimate is kept.
    pub fn set_tau(&mut self, tau: Duration) {
        self.inner.set_tau(tau);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    /// Δt = τ·ln 2 in nanoseconds, for τ = 1 s.
    fn half_life_ns() -> u64 {
        (std::f64::consts::LN_2 * 1e9).round() as u64
    }

    #[test]
    fn first_sample_primes() {
        let mut e = Ewma::new(Duration::from_secs(5));
        assert_eq!(e.value(), None);
        assert_eq!(e.update(42.0, 7 * SEC), 42.0);
        assert_eq!(e.value(), Some(42.0));
        let mut p = PeakEwma::new(Duration::from_secs(5));
        assert_eq!(p.value(), None);
        assert_eq!(p.update(-3.0, 0), -3.0);
        assert_eq!(p.value(), Some(-3.0));
    }

    #[test]
    fn half_life_moves_halfway() {
        let mut e = Ewma::new(Duration::from_secs(1));
        e.update(0.0, 10 * SEC);
        let v = e.update(100.0, 10 * SEC + half_life_ns());
        assert!(close(v, 50.0), "{v}");
        // Another half-life towards 100: 75.
        let v = e.update(100.0, 10 * SEC + 2 * half_life_ns());
        assert!(close(v, 75.0), "{v}");
        // After Δt = τ, the old estimate keeps e^-1 of its weight.
        let v = e.update(0.0, 10 * SEC + 2 * half_life_ns() + SEC);
        assert!(close(v, 75.0 / std::f64::consts::E), "{v}");
    }

    #[test]
    fn same_instant_sample_has_no_weight_and_long_gap_forgets() {
        let mut e = Ewma::new(Duration::from_secs(1));
        e.update(10.0, SEC);
        assert_eq!(e.update(1_000.0, SEC), 10.0);
        let v = e.update(1_000.0, 1_000 * SEC);
        assert!(close(v, 1_000.0), "{v}");
    }

    #[test]
    fn time_going_backwards_is_zero_dt_and_keeps_latest_time() {
        let mut e = Ewma::new(Duration::from_secs(1));
        e.update(0.0, 10 * SEC);
        assert_eq!(e.update(100.0, 5 * SEC), 0.0);
        // Δt is measured from 10 s, not from 5 s.
        let v = e.update(100.0, 10 * SEC + half_life_ns());
        assert!(close(v, 50.0), "{v}");

        let mut p = PeakEwma::new(Duration::from_secs(1));
        p.update(100.0, 10 * SEC);
        assert_eq!(p.update(0.0, 5 * SEC), 100.0);
        // A peak is still taken at once, whatever the clock says.
        assert_eq!(p.update(200.0, 3 * SEC), 200.0);
        let v = p.update(0.0, 10 * SEC + half_life_ns());
        assert!(close(v, 100.0), "{v}");
    }

    #[test]
    fn peak_is_taken_at_once_and_decays_slowly() {
        let mut p = PeakEwma::new(Duration::from_secs(1));
        let mut e = Ewma::new(Duration::from_secs(1));
        p.update(10.0, 0);
        e.update(10.0, 0);
        assert_eq!(p.update(90.0, 1), 90.0);
        assert!(e.update(90.0, 1) < 10.001);
        // Below the estimate: decays like an Ewma (90 → 50 after one half-life towards 10).
        let v = p.update(10.0, 1 + half_life_ns());
        assert!(close(v, 50.0), "{v}");
        // Equal to the estimate: unchanged.
        assert!(close(p.update(v, 2 + half_life_ns()), v));
    }

    #[test]
    fn tau_zero_means_last_sample() {
        let mut e = Ewma::new(Duration::ZERO);
        e.update(1.0, 0);
        assert_eq!(e.update(5.0, 0), 5.0);
        assert_eq!(e.update(3.0, SEC), 3.0);
        let mut p = PeakEwma::new(Duration::ZERO);
        p.update(9.0, 0);
        assert_eq!(p.update(2.0, 0), 2.0);
        // set_tau switches smoothing on for later updates without losing the estimate.
        e.set_tau(Duration::from_secs(1));
        assert_eq!(e.value(), Some(3.0));
        let v = e.update(5.0, SEC + half_life_ns());
        assert!(close(v, 4.0), "{v}");
    }

    #[test]
    fn non_finite_samples_are_ignored() {
        let mut e = Ewma::new(Duration::from_secs(1));
        assert!(e.update(f64::NAN, 0).is_nan());
        assert_eq!(e.value(), None);
        e.update(0.0, SEC);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(e.update(bad, 100 * SEC), 0.0);
        }
        // The ignored samples did not move the time either: Δt is from 1 s.
        let v = e.update(100.0, SEC + half_life_ns());
        assert!(close(v, 50.0), "{v}");

        let mut p = PeakEwma::new(Duration::from_secs(1));
        assert!(p.update(f64::INFINITY, 0).is_nan());
        assert_eq!(p.value(), None);
        p.update(1.0, 0);
        assert_eq!(p.update(f64::INFINITY, 1), 1.0);
        assert_eq!(p.update(f64::NAN, 1), 1.0);
    }

    #[test]
    fn reset_forgets_estimate_and_time() {
        let mut e = Ewma::new(Duration::from_secs(1));
        e.update(7.0, 100 * SEC);
        e.reset();
        assert_eq!(e.value(), None);
        assert_eq!(e.update(3.0, SEC), 3.0);
        // Time restarted from 1 s.
        let v = e.update(5.0, SEC + half_life_ns());
        assert!(close(v, 4.0), "{v}");
        let mut p = PeakEwma::new(Duration::from_secs(1));
        p.update(7.0, 0);
        p.reset();
        assert_eq!(p.value(), None);
        assert_eq!(p.update(2.0, 0), 2.0);
    }
}
