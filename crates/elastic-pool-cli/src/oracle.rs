//! The oracle: clairvoyant Erlang-C sizing, per 0.5 s tick, from the trace's true rate.
//!
//! For each tick the oracle takes the largest true λ over the tick (it knows the future) and
//! the fewest workers `c*` whose M/M/c p99 queue wait meets the SLO
//! (`elastic_pool::erlang::workers_for_wait`, tail 1%). For tasks that spin on a core it never
//! asks for more than the machine's cores: past that, threads only move the wait into the OS
//! run queue. Its worker-seconds `Σ c*·tick` are the yardstick every contender's cost is
//! divided by; run as a contender, it holds exactly `c*` workers.

use elastic_pool::erlang::workers_for_wait;

use crate::trace::{TaskKind, TaskSpec, Trace};

/// The oracle's tick, seconds (the controller's nominal tick).
pub const TICK_S: f64 = 0.5;
/// The tail the SLO allows: p99.
pub const TAIL: f64 = 0.01;
/// Search bound for `c*`.
pub const CAP: usize = 65_536;

/// The oracle's size for every tick of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Oracle {
    /// Tick length, seconds.
    pub tick_s: f64,
    /// `c*` per tick, from t = 0.
    pub workers: Vec<usize>,
}

/// `c*` for arrival rate `lambda` of `task`, SLO `slo_s`, on `ncpu` cores.
pub fn size(lambda: f64, task: &TaskSpec, slo_s: f64, ncpu: usize) -> usize {
    let c = workers_for_wait(lambda, task.mean_s, slo_s, TAIL, CAP);
    match task.kind {
        TaskKind::Spin => c.min(ncpu.max(1)),
        TaskKind::Sleep | TaskKind::Mixed { .. } => c,
    }
}

impl Oracle {
    /// Plans `trace` on `ncpu` cores.
    pub fn plan(trace: &Trace, ncpu: usize) -> Oracle {
        let n = (trace.duration_s() / TICK_S).ceil() as usize;
        let workers = (0..n)
            .map(|k| {
                let t0 = k as f64 * TICK_S;
                let t1 = (t0 + TICK_S).min(trace.duration_s());
                trace
                    .max_rates(t0, t1)
                    .map(|(p, lambda)| size(lambda, &p.task, trace.slo_s, ncpu))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        Oracle {
            tick_s: TICK_S,
            workers,
        }
    }

    /// `c*` at time `t` (0 past the end).
    pub fn at(&self, t: f64) -> usize {
        if t < 0.0 {
            return 0;
        }
        self.workers
            .get((t / self.tick_s) as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The largest `c*` of the ticks overlapping `[t0, t1)`.
    pub fn max_over(&self, t0: f64, t1: f64) -> usize {
        let a = (t0.max(0.0) / self.tick_s) as usize;
        let b = ((t1 / self.tick_s).ceil() as usize).min(self.workers.len());
        self.workers
            .get(a..b.max(a))
            .and_then(|s| s.iter().copied().max())
            .unwrap_or_else(|| self.at(t0))
    }

    /// The largest `c*` of the whole trace (what `static-peak` holds).
    pub fn peak(&self) -> usize {
        self.workers.iter().copied().max().unwrap_or(0)
    }

    /// The smallest `c*` of any tick with load.
    pub fn floor(&self) -> usize {
        self.workers
            .iter()
            .copied()
            .filter(|&c| c > 0)
            .min()
            .unwrap_or(1)
    }

    /// `∫ c* dt` over `[t0, t1)`, worker-seconds.
    pub fn worker_seconds(&self, t0: f64, t1: f64) -> f64 {
        self.workers
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let a = k as f64 * self.tick_s;
                let b = a + self.tick_s;
                let overlap = (b.min(t1) - a.max(t0)).max(0.0);
                c as f64 * overlap
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{BuiltIn, Dist};

    fn sleep50() -> TaskSpec {
        TaskSpec {
            kind: TaskKind::Sleep,
            mean_s: 0.050,
            dist: Dist::Exponential,
        }
    }

    #[test]
    fn known_erlang_c_figures() {
        // S = 50 ms, T = 20 ms, p99 (control.md): 20 → 4, 100 → 10, 200 → 16, 400 → 27, 800 → 48.
        for (lambda, want) in [
            (20.0, 4),
            (100.0, 10),
            (200.0, 16),
            (400.0, 27),
            (800.0, 48),
        ] {
            assert_eq!(size(lambda, &sleep50(), 0.020, 2), want, "λ = {lambda}");
        }
        assert_eq!(size(0.0, &sleep50(), 0.020, 2), 0);
    }

    #[test]
    fn spin_tasks_never_get_more_than_the_cores() {
        let spin = TaskSpec {
            kind: TaskKind::Spin,
            ..sleep50()
        };
        assert_eq!(size(200.0, &spin, 0.020, 2), 2);
        assert_eq!(size(200.0, &spin, 0.020, 64), 16);
    }

    #[test]
    fn the_step_trace_plan() {
        let t = BuiltIn::find("step").unwrap().load(2);
        let o = Oracle::plan(&t, 2);
        assert_eq!(o.workers.len(), 300);
        assert_eq!(o.at(10.0), 4);
        assert_eq!(o.at(29.6), 4);
        assert_eq!(o.at(30.0), 16);
        assert_eq!(o.at(89.9), 16);
        assert_eq!(o.at(90.0), 4);
        assert_eq!(o.peak(), 16);
        assert_eq!(o.floor(), 4);
        assert_eq!(o.max_over(25.0, 31.0), 16);
        // 4 workers for 30 s and 60 s, 16 for 60 s.
        assert!((o.worker_seconds(0.0, 150.0) - (4.0 * 90.0 + 16.0 * 60.0)).abs() < 1e-9);
        assert!((o.worker_seconds(10.0, 150.0) - (4.0 * 80.0 + 16.0 * 60.0)).abs() < 1e-9);
        let spike = Oracle::plan(&BuiltIn::find("spike").unwrap().load(2), 2);
        assert_eq!(spike.peak(), 27);
    }
}
