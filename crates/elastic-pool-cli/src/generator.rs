//! The open-loop load generator's schedule: Poisson arrivals by thinning λ(t), each with its
//! service time, precomputed from the seed.
//!
//! Thinning (Lewis & Shedler): candidates arrive as a Poisson process at each phase's peak
//! rate λ̄, and a candidate at `t` is kept with probability λ(t)/λ̄. The kept points are a
//! non-homogeneous Poisson process with rate λ(t). Arrival times and service times draw from
//! two separate seeded streams, so changing a task's distribution leaves the arrival times
//! unchanged. The whole schedule exists before the run starts: a generator that falls behind
//! submits late, and each task's wait is still measured from its intended arrival.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};

use crate::task::Work;
use crate::trace::{Dist, TaskKind, TaskSpec, Trace};

/// One intended arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Intended arrival, nanoseconds since the run's start.
    pub at_ns: u64,
    /// What the task does.
    pub work: Work,
}

/// The precomputed arrivals of one run, in time order.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Arrivals, sorted by `at_ns`.
    pub arrivals: Vec<Arrival>,
    /// The seed it came from.
    pub seed: u64,
}

/// Mixes the seed for the service-time stream.
const SERVICE_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// Generates the schedule of `trace` for `seed`.
pub fn generate(trace: &Trace, seed: u64) -> Schedule {
    let mut arrivals_rng = StdRng::seed_from_u64(seed);
    let mut service_rng = StdRng::seed_from_u64(seed ^ SERVICE_STREAM);
    let expected = trace.expected_arrivals(0.0, trace.duration_s());
    let mut arrivals = Vec::with_capacity((expected * 1.05 + 64.0) as usize);
    for p in &trace.phases {
        let peak = p.rate.peak(p.duration_s);
        if peak <= 0.0 {
            continue;
        }
        let gap = Exp::new(peak).expect("peak rate is positive and finite");
        let sampler = ServiceSampler::new(&p.task);
        let mut t = 0.0;
        loop {
            t += gap.sample(&mut arrivals_rng);
            if t >= p.duration_s {
                break;
            }
            let keep: f64 = arrivals_rng.random();
            if keep * peak <= p.rate.at(t, p.duration_s) {
                arrivals.push(Arrival {
                    at_ns: ((p.start_s + t) * 1e9) as u64,
                    work: sampler.sample(&mut service_rng),
                });
            }
        }
    }
    Schedule { arrivals, seed }
}

/// Draws service times for one task description.
struct ServiceSampler {
    kind: TaskKind,
    mean_s: f64,
    dist: DistSampler,
}

enum DistSampler {
    Constant,
    Exponential(Exp<f64>),
    Lognormal(LogNormal<f64>),
}

impl ServiceSampler {
    fn new(task: &TaskSpec) -> Self {
        let dist = match task.dist {
            Dist::Constant => DistSampler::Constant,
            Dist::Exponential => {
                DistSampler::Exponential(Exp::new(1.0 / task.mean_s).expect("mean is positive"))
            }
            Dist::Lognormal { cv2 } => {
                // Mean m and cv²: σ² = ln(1 + cv²), μ = ln m − σ²/2.
                let s2 = (1.0 + cv2).ln();
                let mu = task.mean_s.ln() - s2 / 2.0;
                DistSampler::Lognormal(
                    LogNormal::new(mu, s2.sqrt()).expect("σ is positive and finite"),
                )
            }
        };
        ServiceSampler {
            kind: task.kind,
            mean_s: task.mean_s,
            dist,
        }
    }

    fn sample(&self, rng: &mut StdRng) -> Work {
        let s = match &self.dist {
            DistSampler::Constant => self.mean_s,
            DistSampler::Exponential(e) => e.sample(rng),
            DistSampler::Lognormal(l) => l.sample(rng),
        };
        // Whole nanoseconds, at least one; capped at an hour so a wild lognormal draw
        // cannot hold a worker for the rest of the run.
        let ns = (s * 1e9).clamp(1.0, 3.6e12) as u64;
        let spin = match self.kind {
            TaskKind::Sleep => false,
            TaskKind::Spin => true,
            TaskKind::Mixed { spin_fraction } => rng.random::<f64>() < spin_fraction,
        };
        if spin {
            Work::Spin(ns)
        } else {
            Work::Sleep(ns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::BuiltIn;

    fn trace(name: &str) -> Trace {
        BuiltIn::find(name).unwrap().load(2)
    }

    /// Realised arrivals per window against ∫λ, within 4.5 Poisson standard deviations.
    fn assert_rate_follows(t: &Trace, seed: u64, window_s: f64) {
        let s = generate(t, seed);
        assert!(s.arrivals.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        let mut start = 0.0;
        while start < t.duration_s() {
            let end = (start + window_s).min(t.duration_s());
            let want = t.expected_arrivals(start, end);
            let got = s
                .arrivals
                .iter()
                .filter(|a| {
                    let x = a.at_ns as f64 / 1e9;
                    x >= start && x < end
                })
                .count() as f64;
            let tol = 4.5 * want.sqrt().max(1.0);
            assert!(
                (got - want).abs() <= tol,
                "{} seed {seed} [{start}, {end}): {got} arrivals, λ says {want:.1} ± {tol:.1}",
                t.name
            );
            start = end;
        }
    }

    #[test]
    fn realised_rate_stays_within_tolerance_of_lambda() {
        for name in ["step", "spike", "ramp", "diurnal", "onoff"] {
            for seed in [1, 2, 3] {
                assert_rate_follows(&trace(name), seed, 5.0);
            }
        }
    }

    #[test]
    fn the_onoff_bursts_land_in_the_on_windows() {
        let t = trace("onoff");
        let s = generate(&t, 7);
        let on = s
            .arrivals
            .iter()
            .filter(|a| (a.at_ns as f64 / 1e9) % 10.0 < 2.0)
            .count() as f64;
        // 12 periods: 2 s at 300/s on, 8 s at 20/s off.
        let want_on = 12.0 * 600.0;
        assert!((on - want_on).abs() < 4.5 * want_on.sqrt(), "{on}");
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let t = trace("spike");
        assert_eq!(generate(&t, 5).arrivals, generate(&t, 5).arrivals);
        assert_ne!(generate(&t, 5).arrivals, generate(&t, 6).arrivals);
    }

    #[test]
    fn service_times_have_the_stated_mean_and_spread() {
        let stats = |t: &Trace| {
            let s = generate(t, 11);
            let xs: Vec<f64> = s
                .arrivals
                .iter()
                .map(|a| a.work.ns() as f64 / 1e9)
                .collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            (mean, var / (mean * mean), s)
        };
        let (mean, cv2, _) = stats(&trace("step"));
        assert!((mean - 0.050).abs() < 0.002, "{mean}");
        assert!((cv2 - 1.0).abs() < 0.1, "{cv2}");
        let (mean, cv2, _) = stats(&trace("heavy-tail"));
        assert!((mean - 0.050).abs() < 0.004, "{mean}");
        assert!(cv2 > 2.5 && cv2 < 6.0, "{cv2}");
        let (_, _, s) = stats(&trace("mixed"));
        let spin = s.arrivals.iter().filter(|a| a.work.is_spin()).count() as f64;
        let share = spin / s.arrivals.len() as f64;
        assert!((share - 0.2).abs() < 0.02, "{share}");
        let (mean, _, s) = stats(&trace("cpu-overload"));
        assert!(s.arrivals.iter().all(|a| a.work.is_spin()));
        assert!((mean - 0.004).abs() < 0.0003, "{mean}");
    }
}
